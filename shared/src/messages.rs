//! Typed bodies of the messages that cross the queue, defined once for producer and consumer.

use serde::{Deserialize, Serialize};

use crate::domain::{OrderId, UserId};

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
