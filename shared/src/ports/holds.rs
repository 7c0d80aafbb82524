//! Stock holds: placing one (its units taken), reading it, and expiring it with its units back.

use std::future::Future;

use chrono::{DateTime, Utc};

use super::StoreError;
use crate::domain::{Hold, HoldId};

/// Why placing a hold did not commit.
#[derive(Debug, thiserror::Error)]
pub enum PlaceHoldError {
    /// The product's stock is below the quantity (or the product is gone).
    #[error("insufficient stock")]
    InsufficientStock,
    /// The user already has the most ACTIVE holds allowed on this product.
    #[error("too many active holds on this product")]
    LimitReached,
    /// Another transaction touched the same items at the same time; safe to retry.
    #[error("the transaction conflicted with another one")]
    Conflict,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Stock holds.
pub trait HoldStore: Send + Sync {
    /// One hold, `None` when unknown.
    fn get_hold(
        &self,
        id: &HoldId,
    ) -> impl Future<Output = Result<Option<Hold>, StoreError>> + Send;
    /// One transaction: the product's `stock >= q` decrement, the hold (must not exist), and the
    /// user's count of ACTIVE holds on the product up by one on condition it stays `<= limit`.
    fn place_hold(
        &self,
        hold: &Hold,
        limit: u32,
    ) -> impl Future<Output = Result<(), PlaceHoldError>> + Send;
    /// One transaction: `expired` (the hold after the sweep) written on condition that the stored
    /// hold is ACTIVE and its time is up at `expired.updated_at`, its units back on the product,
    /// and the user's active-hold count down by one. `Ok(false)` when it was no longer ACTIVE (a
    /// checkout won), so nothing changed.
    fn expire_hold(&self, expired: &Hold) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Up to `limit` ACTIVE holds whose time was up at `now`, oldest end first.
    fn expired_holds(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Hold>, StoreError>> + Send;
}
