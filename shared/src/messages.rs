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

/// Pushed to the order owner's WebSocket connections (README.md, "WebSocket messages").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEvent {
    /// What happened.
    pub event: OrderEventKind,
    /// The order.
    pub order_id: OrderId,
    /// Its new status.
    pub status: OrderStatus,
    /// The order's version in that status ([`OrderStatus::version`]): pushes may arrive out of
    /// order, and a client keeps the highest version per order and ignores an event with a lower.
    pub version: u32,
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
            version: order.status.version(),
            total_amount: order.total_amount.to_string(),
            reason,
            trace_id: trace_id.to_owned(),
            timestamp: order
                .updated_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Map, Value};

    use super::*;

    /// Any JSON value: scalars, and arrays and objects nested a few levels deep.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,20}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(".{0,8}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Objects shaped almost like an [`OrderPlaced`]: each of its fields present or not, with any
    /// JSON (often a string) as its value, plus perhaps one field of another name.
    fn near_miss() -> impl Strategy<Value = Value> {
        let field = prop_oneof![3 => ".{0,12}".prop_map(Value::String), 1 => any_json()];
        (
            prop::option::of(field.clone()),
            prop::option::of(field.clone()),
            prop::option::of(field.clone()),
            prop::option::of(("[a-z_]{1,10}", any_json())),
        )
            .prop_map(|(order_id, user_id, trace_id, extra)| {
                let mut object = Map::new();
                for (name, value) in [
                    ("order_id", order_id),
                    ("user_id", user_id),
                    ("trace_id", trace_id),
                ] {
                    if let Some(value) = value {
                        object.insert(name.to_owned(), value);
                    }
                }
                if let Some((name, value)) = extra {
                    object.insert(name, value);
                }
                Value::Object(object)
            })
    }

    /// What the consumer does with a body: `serde_json::from_str::<OrderPlaced>`.
    fn decode(body: &str) -> Result<OrderPlaced, serde_json::Error> {
        serde_json::from_str(body)
    }

    proptest! {
        /// Any bytes (as the UTF-8 text an SQS body is) decode or are refused, never a panic;
        /// what decodes encodes back to a body that decodes to the same message.
        #[test]
        fn any_body_is_an_order_placed_or_refused(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let body = String::from_utf8_lossy(&bytes);
            if let Ok(placed) = decode(&body) {
                let again = decode(&serde_json::to_string(&placed).unwrap()).unwrap();
                prop_assert_eq!(again, placed);
            }
        }

        /// Any JSON, and objects that nearly are an `OrderPlaced`, decode exactly when all three
        /// fields are strings, and then to exactly those strings; anything else is refused.
        #[test]
        fn any_json_decodes_to_exactly_its_three_strings_or_is_refused(
            value in prop_oneof![
                any_json(),
                near_miss(),
                prop::collection::vec(".{0,6}".prop_map(Value::String), 2..5).prop_map(Value::Array),
            ],
        ) {
            let body = value.to_string();
            // serde's derive also takes a struct as a sequence of its fields in order: an array
            // of exactly three strings is the same message as the object (the producer never
            // writes it; it names nothing the object form could not, so it is left as is).
            let text = |name: &str, at: usize| match &value {
                Value::Array(fields) if fields.len() == 3 => fields[at].as_str().map(str::to_owned),
                Value::Object(_) => value.get(name).and_then(Value::as_str).map(str::to_owned),
                _ => None,
            };
            let expected = match (text("order_id", 0), text("user_id", 1), text("trace_id", 2)) {
                (Some(order_id), Some(user_id), Some(trace_id)) => Some(OrderPlaced {
                    order_id: OrderId::new(order_id),
                    user_id: UserId::new(user_id),
                    trace_id,
                }),
                _ => None,
            };
            prop_assert_eq!(decode(&body).ok(), expected, "{}", body);
        }

        /// Whatever its ids hold (quotes, backslashes, control characters, any Unicode), a
        /// message encoded by the producer decodes to itself.
        #[test]
        fn an_encoded_order_placed_round_trips(order_id in any::<String>(), user_id in any::<String>(), trace_id in any::<String>()) {
            let placed = OrderPlaced {
                order_id: OrderId::new(order_id),
                user_id: UserId::new(user_id),
                trace_id,
            };
            prop_assert_eq!(decode(&serde_json::to_string(&placed).unwrap()).unwrap(), placed);
        }
    }
}
