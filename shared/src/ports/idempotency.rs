//! Idempotency keys: what a user's key placed, so a retried request is answered, not repeated.

use std::future::Future;

use super::StoreError;
use crate::domain::{IdempotencyKey, Order, UserId};

/// What a user's idempotency key placed: the order, which is its own idempotency record (its id
/// is derived from the user and the key, and it carries the request's fingerprint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// The order the key created.
    pub order: Order,
    /// [`crate::domain::OrderRequest::fingerprint`] of the first request; `None` for an order
    /// placed before fingerprints lived on the order whose separate record has expired, so the
    /// request cannot be compared (docs/deploy.md, "Moving to the lean order items").
    pub request_fingerprint: Option<String>,
}

/// Looks up what an idempotency key placed.
pub trait IdempotencyStore: Send + Sync {
    /// The order a user's key placed, with its request's fingerprint, if any; read consistently.
    fn get_idempotency_record(
        &self,
        user_id: &UserId,
        key: &IdempotencyKey,
    ) -> impl Future<Output = Result<Option<IdempotencyRecord>, StoreError>> + Send;
}
