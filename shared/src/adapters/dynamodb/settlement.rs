//! Payment settlement: PENDING -> PROCESSING -> PAID | FAILED (a webhook may settle PENDING
//! directly), each move conditional on the current status; FAILED gives the stock back (`stock_journal`).

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};

use super::stock_journal::Owner;
use super::transactions::stock_parts;
use super::{DynamoStore, condition_held, items, sdk_failure};
use crate::domain::{Order, OrderStatus};
use crate::ports::{OrderSettler, StoreError};

/// Moves an order to PROCESSING (the claim, which also sets its `claim_token`). No index key
/// changes and both indexes project keys only, so it writes the order item alone.
const UNSETTLED_MOVE: &str = "SET #status = :to, updated_at = :now";
/// Moves an order to PAID or FAILED: removing `unsettled_shard` takes it out of
/// `unsettled-orders`.
const SETTLED_MOVE: &str = "SET #status = :to, updated_at = :now REMOVE unsettled_shard";
/// The guard of every status move: two racing writers, one winner.
const STATUS_GUARD: &str = "#status = :from";

/// The update expression and values of the move of `order` to its status, from `from`.
fn status_move(
    order: &Order,
    from: OrderStatus,
) -> (&'static str, HashMap<String, AttributeValue>) {
    let values = HashMap::from([
        (":to".to_owned(), items::status(order.status)),
        (":from".to_owned(), items::status(from)),
        (":now".to_owned(), items::timestamp(order.updated_at)),
    ]);
    let update = if order.status.is_terminal() {
        SETTLED_MOVE
    } else {
        UNSETTLED_MOVE
    };
    (update, values)
}

impl DynamoStore {
    /// The move of `order` to its current status, as a transaction action, guarded by `from`.
    fn status_change(&self, order: &Order, from: OrderStatus) -> Result<Update, StoreError> {
        let (update, values) = status_move(order, from);
        Update::builder()
            .table_name(&self.tables.orders)
            .set_key(Some(items::order_key(&order.id)))
            .update_expression(update)
            .condition_expression(STATUS_GUARD)
            .expression_attribute_names("#status", "status")
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(StoreError::unavailable)
    }

    /// The same move as a single UpdateItem; `Ok(false)` when the guard failed.
    async fn change_status(&self, order: &Order, from: OrderStatus) -> Result<bool, StoreError> {
        let (update, values) = status_move(order, from);
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.orders)
            .set_key(Some(items::order_key(&order.id)))
            .update_expression(update)
            .condition_expression(STATUS_GUARD)
            .expression_attribute_names("#status", "status")
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        condition_held(result)
    }
}

/// The order's attribute naming the claim that moved it to PROCESSING: a claim whose answer was
/// lost meets its own write on the SDK's retry and tells it from another delivery's by it.
const CLAIM_TOKEN: &str = "claim_token";

impl OrderSettler for DynamoStore {
    async fn start_processing(&self, processing: &Order) -> Result<bool, StoreError> {
        let (update, mut values) = status_move(processing, OrderStatus::Pending);
        let token = uuid::Uuid::new_v4().simple().to_string();
        values.insert(":claim".to_owned(), items::string(&token));
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.orders)
            .set_key(Some(items::order_key(&processing.id)))
            .update_expression(format!("{update}, #claim = :claim"))
            .condition_expression(STATUS_GUARD)
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#claim", CLAIM_TOKEN)
            .set_expression_attribute_values(Some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) => match error.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(failed)) => Ok(failed
                    .item()
                    .and_then(|old| old.get(CLAIM_TOKEN)?.as_s().ok())
                    .is_some_and(|found| *found == token)),
                _ => Err(sdk_failure(error)),
            },
        }
    }

    async fn settle(&self, settled: &Order, from: OrderStatus) -> Result<bool, StoreError> {
        if settled.status != OrderStatus::Failed {
            return self.change_status(settled, from).await;
        }
        // FAILED: the units come back exactly once, and only if this writer won the move out of
        // `from` (restore intents, the move, then the intents applied: `stock_journal`). The move
        // is one UpdateItem (`write_all`).
        let head = vec![
            TransactWriteItem::builder()
                .update(self.status_change(settled, from)?)
                .build(),
        ];
        let parts = stock_parts(&settled.items);
        let owner = Owner::Order(settled.id.clone());
        match self
            .commit_with_restores(head, &parts, &owner, settled.updated_at)
            .await?
        {
            None => Ok(true),
            Some(refused) if refused.first_condition_failed() => Ok(false),
            Some(refused) => Err(refused.into_store_error()),
        }
    }
}
