//! Receiving a payment webhook (its signature already verified): idempotent on the provider's
//! key, settling through [`SettlePayment`], and storing the outcome of an order that does not
//! exist yet so that placing it applies the outcome.
//!
//! The order might commit between this webhook's read and its write of the pending outcome. So
//! both sides write first and read second: the webhook stores the pending outcome, then reads the
//! order again; placing an order commits it, then reads the pending outcome. At least one of the
//! two sees the other's write, and `SettlePayment` makes applying it twice harmless.

use crate::domain::webhook::PaymentNotice;
use crate::domain::{OrderId, OrderStatus};
use crate::metrics::{self, BusinessMetric};
use crate::ports::{
    Clock, Notifier, OrderReader, OrderSettler, PendingSettlement, WebhookRecord, WebhookStore,
};

use super::{AppError, SettlePayment};

/// The answer to a delivery, the first one or its replay (identical by construction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookAnswer {
    /// The order the notice named.
    pub order_id: OrderId,
    /// Its status after the first delivery; `None` when it did not exist yet (stored for later).
    pub order_status: Option<OrderStatus>,
}

/// The ports receiving a webhook uses.
pub struct ReceivePaymentWebhook<'a, S, N, C> {
    /// Orders, their status moves, and webhook records.
    pub store: &'a S,
    /// Order events to the owner.
    pub notifier: &'a N,
    /// The time.
    pub clock: &'a C,
}

impl<S, N, C> ReceivePaymentWebhook<'_, S, N, C>
where
    S: OrderReader + OrderSettler + WebhookStore,
    N: Notifier,
    C: Clock,
{
    /// Handles one verified delivery.
    pub async fn run(
        &self,
        notice: &PaymentNotice,
        trace_id: &str,
    ) -> Result<WebhookAnswer, AppError> {
        let fingerprint = notice.fingerprint();
        if let Some(answer) = self.replay(notice, &fingerprint).await? {
            return Ok(answer);
        }
        let settle = SettlePayment {
            store: self.store,
            notifier: self.notifier,
            clock: self.clock,
        };
        let mut record = WebhookRecord {
            idempotency_key: notice.idempotency_key.clone(),
            fingerprint: fingerprint.clone(),
            order_id: notice.order_id.clone(),
            order_status: None,
        };
        match self.store.get_order(&notice.order_id).await? {
            Some(order) => {
                let settlement = settle.run(order, &notice.outcome, trace_id).await?;
                record.order_status = Some(settlement.order().status);
                if !self.store.record_webhook(&record, None).await? {
                    return self.replay_after_race(notice, &fingerprint).await;
                }
                metrics::count(BusinessMetric::WebhooksApplied);
            }
            None => {
                let pending = PendingSettlement {
                    order_id: notice.order_id.clone(),
                    outcome: notice.outcome.clone(),
                    idempotency_key: notice.idempotency_key.clone(),
                };
                if !self.store.record_webhook(&record, Some(&pending)).await? {
                    return self.replay_after_race(notice, &fingerprint).await;
                }
                tracing::info!(order_id = %notice.order_id, "webhook for an order that does not exist yet; stored");
                metrics::count(BusinessMetric::WebhooksEarly);
                // The order may have committed meanwhile without seeing the pending outcome.
                if let Some(order) = self.store.get_order(&notice.order_id).await? {
                    settle.apply_pending(order, trace_id).await?;
                }
            }
        }
        Ok(WebhookAnswer {
            order_id: record.order_id,
            order_status: record.order_status,
        })
    }

    /// The first answer to this key, when there was one with the same notice.
    async fn replay(
        &self,
        notice: &PaymentNotice,
        fingerprint: &str,
    ) -> Result<Option<WebhookAnswer>, AppError> {
        match self.store.get_webhook(&notice.idempotency_key).await? {
            None => Ok(None),
            Some(record) if record.fingerprint != fingerprint => {
                Err(AppError::IdempotencyKeyReused)
            }
            Some(record) => Ok(Some(WebhookAnswer {
                order_id: record.order_id,
                order_status: record.order_status,
            })),
        }
    }

    /// A concurrent delivery of the same key recorded its answer first: answer with it.
    async fn replay_after_race(
        &self,
        notice: &PaymentNotice,
        fingerprint: &str,
    ) -> Result<WebhookAnswer, AppError> {
        self.replay(notice, fingerprint).await?.ok_or_else(|| {
            AppError::internal(format!(
                "webhook {} was recorded by another delivery but cannot be read",
                notice.idempotency_key.as_str()
            ))
        })
    }
}
