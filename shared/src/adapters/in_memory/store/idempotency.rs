//! Idempotency keys in the in-memory store: the order a key placed is its record.

use super::InMemoryStore;
use crate::domain::{IdempotencyKey, OrderId, UserId};
use crate::ports::{IdempotencyRecord, IdempotencyStore, StoreError};

impl IdempotencyStore for InMemoryStore {
    async fn get_idempotency_record(
        &self,
        user_id: &UserId,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let tables = self.tables()?;
        let id = OrderId::for_key(user_id, key);
        Ok(tables
            .orders
            .get(&id)
            .filter(|order| order.user_id == *user_id)
            .map(|order| IdempotencyRecord {
                order: order.clone(),
                request_fingerprint: tables.fingerprints.get(&id).cloned(),
            }))
    }
}
