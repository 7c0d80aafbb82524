//! What an idempotency key placed: the order item is the key's record. Its id is derived from the
//! user and the key, and it carries the first request's fingerprint, so one consistent read
//! answers a replay (docs/decisions.md, "The order is its own idempotency record").
//!
//! Orders placed before that kept the fingerprint in a separate item of the idempotency table,
//! which expires 24 hours after its order: it is read only for an order without a fingerprint.

use super::DynamoStore;
use super::items::{self, REQUEST_FINGERPRINT};
use super::sdk_failure;
use crate::domain::{IdempotencyKey, Order, OrderId, UserId};
use crate::ports::{IdempotencyRecord, IdempotencyStore, StoreError};

impl IdempotencyStore for DynamoStore {
    async fn get_idempotency_record(
        &self,
        user_id: &UserId,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        // Strongly consistent: a replay right after the first request's put must see it.
        let output = self
            .client
            .get_item()
            .table_name(&self.tables.orders)
            .set_key(Some(items::order_key(&OrderId::for_key(user_id, key))))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_failure)?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        let fingerprint = items::request_fingerprint(&item);
        let order = Order::try_from(item)?;
        // The id is a hash of the user and the key: another user's order there is not this key's.
        if order.user_id != *user_id {
            return Ok(None);
        }
        let request_fingerprint = match fingerprint {
            Some(fingerprint) => Some(fingerprint),
            None => self.legacy_fingerprint(user_id, key).await?,
        };
        Ok(Some(IdempotencyRecord {
            order,
            request_fingerprint,
        }))
    }
}

impl DynamoStore {
    /// The fingerprint of an order placed before orders carried it, from its separate record
    /// while that has not expired.
    async fn legacy_fingerprint(
        &self,
        user_id: &UserId,
        key: &IdempotencyKey,
    ) -> Result<Option<String>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.tables.idempotency)
            .set_key(Some(items::idempotency_key(user_id, key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_failure)?;
        Ok(output
            .item
            .and_then(|item| item.get(REQUEST_FINGERPRINT)?.as_s().ok().cloned()))
    }
}
