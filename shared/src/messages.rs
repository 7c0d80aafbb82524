//! Typed bodies of the messages that cross the queue, defined once for producer and consumer.

use serde::{Deserialize, Serialize};

use crate::domain::{Order, OrderId, OrderStatus, UserId};

/// Name of the SQS message attribute that carries the trace id.
pub const TRACE_ID_ATTRIBUTE: &str = "trace_id";

/// Sent after an order commits; the consumer settles its payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPlaced {
    /// The order to settle.
    pub order_id: OrderId,
    /// Its owner, for notifications.
    pub user_id: UserId,
    /// The trace id of the request that placed it.
    pub trace_id: String,
}

/// Which change an [`OrderEvent`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderEventKind {
    /// PENDING -> PROCESSING.
    OrderProcessing,
    /// PROCESSING -> PAID.
    OrderPaid,
    /// PROCESSING -> FAILED.
    OrderFailed,
    /// PENDING -> CANCELLED.
    OrderCancelled,
}

impl OrderEventKind {
    /// The event announcing that an order reached `status`, if that status is announced.
    pub fn for_status(status: OrderStatus) -> Option<Self> {
        match status {
            OrderStatus::Processing => Some(Self::OrderProcessing),
            OrderStatus::Paid => Some(Self::OrderPaid),
            OrderStatus::Failed => Some(Self::OrderFailed),
            OrderStatus::Cancelled => Some(Self::OrderCancelled),
            OrderStatus::Pending => None,
        }
    }
}

/// Pushed to the order owner's WebSocket connections (SPEC section 5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEvent {
    /// What happened.
    pub event: OrderEventKind,
    /// The order.
    pub order_id: OrderId,
    /// Its new status.
    pub status: OrderStatus,
    /// Its total, two places.
    pub total_amount: String,
    /// Why payment failed (only on `OrderFailed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The trace id of the request or message that caused the change.
    pub trace_id: String,
    /// When the change happened (RFC 3339 UTC).
    pub timestamp: String,
}

impl OrderEvent {
    /// The event for an order that just reached its current status; `None` for PENDING.
    pub fn for_order(order: &Order, reason: Option<String>, trace_id: &str) -> Option<Self> {
        Some(OrderEvent {
            event: OrderEventKind::for_status(order.status)?,
            order_id: order.id.clone(),
            status: order.status,
            total_amount: order.total_amount.to_string(),
            reason,
            trace_id: trace_id.to_owned(),
            timestamp: order
                .updated_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        })
    }
}
