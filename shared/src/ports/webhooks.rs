//! Payment webhooks: the first answer to each delivery, and outcomes waiting for their order.

use std::future::Future;

use super::StoreError;
use crate::domain::{IdempotencyKey, OrderId, OrderStatus, PaymentOutcome};

/// The first answer to a webhook delivery, replayed to a redelivery. The answer is a function of
/// the order id and the status it reported, so storing those two replays it byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRecord {
    /// The provider's idempotency key.
    pub idempotency_key: IdempotencyKey,
    /// [`crate::domain::webhook::PaymentNotice::fingerprint`] of the first delivery.
    pub fingerprint: String,
    /// The order it named.
    pub order_id: OrderId,
    /// The order's status after the first delivery; `None` when the order did not exist yet.
    pub order_status: Option<OrderStatus>,
}

/// A webhook's outcome for an order that did not exist when it arrived, applied when it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSettlement {
    /// The order it is waiting for.
    pub order_id: OrderId,
    /// What the provider decided.
    pub outcome: PaymentOutcome,
    /// The delivery that brought it.
    pub idempotency_key: IdempotencyKey,
}

/// Webhook deliveries and the outcomes waiting for their order.
pub trait WebhookStore: Send + Sync {
    /// The first answer to this key, if any.
    fn get_webhook(
        &self,
        key: &IdempotencyKey,
    ) -> impl Future<Output = Result<Option<WebhookRecord>, StoreError>> + Send;
    /// Stores the answer (condition: the key is new) and, in the same transaction, `pending` when
    /// given (the first pending outcome of an order is kept). `Ok(false)` when the key was taken
    /// first by a concurrent delivery, so nothing changed.
    fn record_webhook(
        &self,
        record: &WebhookRecord,
        pending: Option<&PendingSettlement>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// The outcome waiting for `order_id`, if a webhook came before the order.
    fn pending_settlement(
        &self,
        order_id: &OrderId,
    ) -> impl Future<Output = Result<Option<PendingSettlement>, StoreError>> + Send;
}
