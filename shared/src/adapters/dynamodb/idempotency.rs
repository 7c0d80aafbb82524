//! Idempotency records: one item per (user, key), written by the order transaction, read on replay.

use super::DynamoStore;
use super::items;
use super::sdk_failure;
use crate::domain::{IdempotencyKey, UserId};
use crate::ports::{IdempotencyRecord, IdempotencyStore, StoreError};

impl IdempotencyStore for DynamoStore {
    async fn get_idempotency_record(
        &self,
        user_id: &UserId,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        // Strongly consistent: a replay right after the first request's commit must see its record.
        // A record past `expires_at` that TTL has not removed yet still replays, because the
        // transaction's `attribute_not_exists` would refuse the key anyway.
        let output = self
            .client
            .get_item()
            .table_name(&self.tables.idempotency)
            .set_key(Some(items::idempotency_key(user_id, key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_failure)?;
        output.item.map(IdempotencyRecord::try_from).transpose()
    }
}
