//! The webhooks table's items: the first answer to a delivery, and the outcome waiting for an
//! order that did not exist yet.

use std::collections::HashMap;
use std::str::FromStr;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::{Fields, Item, number, status, string, timestamp};
use crate::domain::{IdempotencyKey, OrderId, OrderStatus, PaymentOutcome};
use crate::ports::{PendingSettlement, StoreError, WebhookRecord};

/// How long webhook answers and pending outcomes are kept: providers retry for up to three days.
const WEBHOOK_TTL_SECONDS: i64 = 7 * 24 * 60 * 60;

/// The key of a webhook answer.
pub(in crate::adapters::dynamodb) fn webhook_key(key: &IdempotencyKey) -> Item {
    HashMap::from([("pk".to_owned(), string(format!("key#{}", key.as_str())))])
}

/// The key of the outcome waiting for an order.
pub(in crate::adapters::dynamodb) fn pending_settlement_key(order_id: &OrderId) -> Item {
    HashMap::from([("pk".to_owned(), string(format!("order#{order_id}")))])
}

/// A webhook answer item.
pub(in crate::adapters::dynamodb) fn webhook_item(
    record: &WebhookRecord,
    now: DateTime<Utc>,
) -> Item {
    let mut item = webhook_key(&record.idempotency_key);
    item.extend([
        ("fingerprint".to_owned(), string(&record.fingerprint)),
        ("order_id".to_owned(), string(record.order_id.as_str())),
        ("created_at".to_owned(), timestamp(now)),
        (
            "expires_at".to_owned(),
            number(now.timestamp() + WEBHOOK_TTL_SECONDS),
        ),
    ]);
    if let Some(order_status) = record.order_status {
        item.insert("order_status".to_owned(), status(order_status));
    }
    item
}

/// The attribute values of a pending outcome (written with `if_not_exists`, so the first stays).
pub(in crate::adapters::dynamodb) fn pending_settlement_values(
    pending: &PendingSettlement,
    now: DateTime<Utc>,
) -> [(&'static str, AttributeValue); 6] {
    let (outcome, reason) = match &pending.outcome {
        PaymentOutcome::Approved => ("success", String::new()),
        PaymentOutcome::Declined { reason } => ("failure", reason.clone()),
    };
    [
        (":order", string(pending.order_id.as_str())),
        (":outcome", string(outcome)),
        (":reason", string(reason)),
        (":key", string(pending.idempotency_key.as_str())),
        (":now", timestamp(now)),
        (":expires", number(now.timestamp() + WEBHOOK_TTL_SECONDS)),
    ]
}

impl TryFrom<Item> for WebhookRecord {
    type Error = StoreError;

    fn try_from(item: Item) -> Result<Self, StoreError> {
        let fields = Fields::new(&item, "webhook answer");
        let pk = fields.string("pk")?;
        let key = pk
            .strip_prefix("key#")
            .ok_or_else(|| fields.corrupt("pk", "not a webhook answer key"))?;
        Ok(WebhookRecord {
            idempotency_key: IdempotencyKey::parse(key).map_err(|e| fields.corrupt("pk", e))?,
            fingerprint: fields.string("fingerprint")?.to_owned(),
            order_id: OrderId::new(fields.string("order_id")?),
            order_status: match item.get("order_status") {
                Some(_) => Some(
                    OrderStatus::from_str(fields.string("order_status")?)
                        .map_err(|e| fields.corrupt("order_status", e))?,
                ),
                None => None,
            },
        })
    }
}

impl TryFrom<Item> for PendingSettlement {
    type Error = StoreError;

    fn try_from(item: Item) -> Result<Self, StoreError> {
        let fields = Fields::new(&item, "pending settlement");
        let outcome = match fields.string("outcome")? {
            "success" => PaymentOutcome::Approved,
            "failure" => PaymentOutcome::Declined {
                reason: fields.string("reason")?.to_owned(),
            },
            other => return Err(fields.corrupt("outcome", format!("unknown outcome {other:?}"))),
        };
        let key = fields.string("idempotency_key")?;
        Ok(PendingSettlement {
            order_id: OrderId::new(fields.string("order_id")?),
            outcome,
            idempotency_key: IdempotencyKey::parse(key)
                .map_err(|e| fields.corrupt("idempotency_key", e))?,
        })
    }
}
