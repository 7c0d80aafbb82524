//! Webhook answers and pending settlements in the in-memory store: the first of each is kept.

use super::InMemoryStore;
use crate::domain::{IdempotencyKey, OrderId};
use crate::ports::{PendingSettlement, StoreError, WebhookRecord, WebhookStore};

impl WebhookStore for InMemoryStore {
    async fn get_webhook(&self, key: &IdempotencyKey) -> Result<Option<WebhookRecord>, StoreError> {
        Ok(self.tables()?.webhooks.get(key.as_str()).cloned())
    }

    async fn record_webhook(
        &self,
        record: &WebhookRecord,
        pending: Option<&PendingSettlement>,
    ) -> Result<bool, StoreError> {
        let mut tables = self.tables()?;
        if tables
            .webhooks
            .contains_key(record.idempotency_key.as_str())
        {
            return Ok(false);
        }
        tables
            .webhooks
            .insert(record.idempotency_key.as_str().to_owned(), record.clone());
        if let Some(pending) = pending {
            tables
                .pending
                .entry(pending.order_id.clone())
                .or_insert_with(|| pending.clone());
        }
        Ok(true)
    }

    async fn pending_settlement(
        &self,
        order_id: &OrderId,
    ) -> Result<Option<PendingSettlement>, StoreError> {
        Ok(self.tables()?.pending.get(order_id).cloned())
    }
}
