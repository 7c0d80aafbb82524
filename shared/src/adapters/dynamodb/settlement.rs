//! Payment settlement: PENDING -> PROCESSING -> PAID | FAILED (a webhook may settle PENDING
//! directly), each move conditional on the current status; FAILED gives the stock back in the same transaction. Also the reconciler's
//! query for orders that stayed unsettled too long.

use aws_sdk_dynamodb::types::{TransactWriteItem, Update};

use super::index::STATUS_UPDATED as STATUS_UPDATED_INDEX;
use super::sdk_failure;
use super::transactions::merged_lines;
use super::{DynamoStore, condition_held, items};
use crate::domain::{Order, OrderStatus};
use crate::ports::{OrderSettler, StoreError, UnsettledOrders};

/// Moves an order to its new status, only from the expected one.
const STATUS_MOVE: &str = "SET #status = :to, updated_at = :now";
/// The guard of every status move: two racing writers, one winner.
const STATUS_GUARD: &str = "#status = :from";

impl DynamoStore {
    /// The move of `order` to its current status, as a transaction action, guarded by `from`.
    fn status_change(&self, order: &Order, from: OrderStatus) -> Result<Update, StoreError> {
        Update::builder()
            .table_name(&self.tables.orders)
            .set_key(Some(items::order_key(&order.id)))
            .update_expression(STATUS_MOVE)
            .condition_expression(STATUS_GUARD)
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":to", items::status(order.status))
            .expression_attribute_values(":from", items::status(from))
            .expression_attribute_values(":now", items::timestamp(order.updated_at))
            .build()
            .map_err(StoreError::unavailable)
    }

    /// The same move as a single UpdateItem; `Ok(false)` when the guard failed.
    async fn change_status(&self, order: &Order, from: OrderStatus) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.orders)
            .set_key(Some(items::order_key(&order.id)))
            .update_expression(STATUS_MOVE)
            .condition_expression(STATUS_GUARD)
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":to", items::status(order.status))
            .expression_attribute_values(":from", items::status(from))
            .expression_attribute_values(":now", items::timestamp(order.updated_at))
            .send()
            .await;
        condition_held(result)
    }
}

impl OrderSettler for DynamoStore {
    async fn start_processing(&self, processing: &Order) -> Result<bool, StoreError> {
        self.change_status(processing, OrderStatus::Pending).await
    }

    async fn settle(&self, settled: &Order, from: OrderStatus) -> Result<bool, StoreError> {
        if settled.status != OrderStatus::Failed {
            return self.change_status(settled, from).await;
        }
        // FAILED: the status change and every restore in one transaction, so the units come back
        // exactly once, and only if this writer won the move out of `from`.
        let mut actions = vec![
            TransactWriteItem::builder()
                .update(self.status_change(settled, from)?)
                .build(),
        ];
        for (product_id, quantity) in merged_lines(&settled.items) {
            actions.push(self.stock_restore(&product_id, quantity, settled.updated_at)?);
        }
        match self.transact(actions).await {
            Ok(()) => Ok(true),
            Err(refused) if refused.first_condition_failed() => Ok(false),
            Err(refused) => Err(refused.into_store_error()),
        }
    }
}

impl UnsettledOrders for DynamoStore {
    async fn unsettled(
        &self,
        status: OrderStatus,
        before: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<Vec<Order>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.tables.orders)
            .index_name(STATUS_UPDATED_INDEX)
            .key_condition_expression("#status = :s AND updated_at < :before")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":s", items::status(status))
            .expression_attribute_values(":before", items::timestamp(before))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(sdk_failure)?;
        output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(Order::try_from)
            .collect()
    }
}
