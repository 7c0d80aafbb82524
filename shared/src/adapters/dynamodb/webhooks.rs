//! Payment webhook answers (keyed by the provider's idempotency key) and the outcome waiting for
//! an order that did not exist when its webhook came (keyed by the order id), in one table.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use chrono::Utc;

use super::sdk_failure;
use super::{DynamoStore, items};
use crate::domain::{IdempotencyKey, OrderId};
use crate::ports::{PendingSettlement, StoreError, WebhookRecord, WebhookStore};

impl DynamoStore {
    async fn get_webhook_item(&self, key: items::Item) -> Result<Option<items::Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.tables.webhooks)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_failure)?;
        Ok(output.item)
    }
}

impl WebhookStore for DynamoStore {
    async fn get_webhook(&self, key: &IdempotencyKey) -> Result<Option<WebhookRecord>, StoreError> {
        self.get_webhook_item(items::webhook_key(key))
            .await?
            .map(WebhookRecord::try_from)
            .transpose()
    }

    async fn record_webhook(
        &self,
        record: &WebhookRecord,
        pending: Option<&PendingSettlement>,
    ) -> Result<bool, StoreError> {
        let now = Utc::now();
        let put = Put::builder()
            .table_name(&self.tables.webhooks)
            .set_item(Some(items::webhook_item(record, now)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(StoreError::unavailable)?;
        let mut actions = vec![TransactWriteItem::builder().put(put).build()];
        if let Some(pending) = pending {
            // `if_not_exists` everywhere: a second webhook for the same missing order keeps the
            // first outcome, as the order would have kept the first settlement.
            let mut update = Update::builder()
                .table_name(&self.tables.webhooks)
                .set_key(Some(items::pending_settlement_key(&pending.order_id)))
                .update_expression(
                    "SET order_id = if_not_exists(order_id, :order), \
                     outcome = if_not_exists(outcome, :outcome), \
                     reason = if_not_exists(reason, :reason), \
                     idempotency_key = if_not_exists(idempotency_key, :key), \
                     created_at = if_not_exists(created_at, :now), \
                     expires_at = if_not_exists(expires_at, :expires)",
                );
            for (name, value) in items::pending_settlement_values(pending, now) {
                update = update.expression_attribute_values(name, value);
            }
            let update = update.build().map_err(StoreError::unavailable)?;
            actions.push(TransactWriteItem::builder().update(update).build());
        }
        match self.transact(actions).await {
            Ok(()) => Ok(true),
            // A concurrent delivery of the same key recorded its answer first.
            Err(refused) if refused.first_condition_failed() => Ok(false),
            Err(refused) => Err(refused.into_store_error()),
        }
    }

    async fn pending_settlement(
        &self,
        order_id: &OrderId,
    ) -> Result<Option<PendingSettlement>, StoreError> {
        self.get_webhook_item(items::pending_settlement_key(order_id))
            .await?
            .map(PendingSettlement::try_from)
            .transpose()
    }
}
