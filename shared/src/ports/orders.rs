//! Orders once placed: reading them, moving them through payment, and finding those the
//! reconciler should settle.

use std::future::Future;

use chrono::{DateTime, Utc};

use super::{Page, StoreError};
use crate::domain::{Order, OrderId, OrderStatus, UserId};

/// Which of a user's orders to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderQuery {
    /// Whose orders.
    pub user_id: UserId,
    /// Only orders in this status.
    pub status: Option<OrderStatus>,
    /// Page size, 1..=50.
    pub limit: u32,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

/// Reads orders.
pub trait OrderReader: Send + Sync {
    /// One order, `None` when unknown.
    fn get_order(
        &self,
        id: &OrderId,
    ) -> impl Future<Output = Result<Option<Order>, StoreError>> + Send;
    /// A user's orders, newest first.
    fn list_orders(
        &self,
        query: &OrderQuery,
    ) -> impl Future<Output = Result<Page<Order>, StoreError>> + Send;
}

/// Moves orders through payment; every move is conditional on the current status.
pub trait OrderSettler: Send + Sync {
    /// PENDING -> PROCESSING (`processing` is the order after the move). `Ok(false)` when the
    /// order was no longer PENDING because of another writer, so nothing changed; a move of this
    /// call's own whose answer was lost is `Ok(true)`.
    fn start_processing(
        &self,
        processing: &Order,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// `from` (PENDING or PROCESSING) -> PAID, or -> FAILED with every item's stock restored in
    /// the same transaction (`settled` is the order after the move). `Ok(false)` when the stored
    /// status was no longer `from`, so nothing changed.
    fn settle(
        &self,
        settled: &Order,
        from: OrderStatus,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Finds orders that should have been settled by now (the reconciler's query).
pub trait UnsettledOrders: Send + Sync {
    /// Up to `limit` orders in `status` whose last change is older than `before`, oldest placed
    /// first.
    fn unsettled(
        &self,
        status: OrderStatus,
        before: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Order>, StoreError>> + Send;
}
