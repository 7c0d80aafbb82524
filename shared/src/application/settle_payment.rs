//! Settling a payment: PENDING or PROCESSING -> PAID, or -> FAILED with the stock back, as one
//! conditional write on the status read. The consumer (after its charge) and the payment webhook
//! both call this, so a simulated payment racing a webhook ends in exactly one terminal status,
//! and only the writer that won pushes the event.

use crate::domain::{Order, OrderStatus, PaymentOutcome};
use crate::messages::OrderEvent;
use crate::metrics::{self, BusinessMetric};
use crate::ports::{Clock, Notifier, OrderReader, OrderSettler, WebhookStore};

use super::AppError;

/// Writers racing on one order settle it within this many reads: each lost race means another
/// writer moved it (PENDING -> PROCESSING at most once, then to a terminal status).
const SETTLE_ATTEMPTS: u32 = 4;

/// What settling did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// This call moved the order to the terminal status it carries (and pushed the event).
    Settled(Order),
    /// Nothing to do: the order was terminal already (settled by another writer, or cancelled).
    AlreadyDone(Order),
}

impl Settlement {
    /// The order as it stands after the call.
    pub fn order(&self) -> &Order {
        match self {
            Settlement::Settled(order) | Settlement::AlreadyDone(order) => order,
        }
    }
}

/// The ports settling uses.
pub struct SettlePayment<'a, S, N, C> {
    /// Orders, the status moves, and outcomes waiting for their order.
    pub store: &'a S,
    /// Order events to the owner.
    pub notifier: &'a N,
    /// The time.
    pub clock: &'a C,
}

impl<S, N, C> SettlePayment<'_, S, N, C>
where
    S: OrderReader + OrderSettler,
    N: Notifier,
    C: Clock,
{
    /// Settles `order` (as last read) with `outcome`.
    pub async fn run(
        &self,
        mut order: Order,
        outcome: &PaymentOutcome,
        trace_id: &str,
    ) -> Result<Settlement, AppError> {
        let (next, reason) = match outcome {
            PaymentOutcome::Approved => (OrderStatus::Paid, None),
            PaymentOutcome::Declined { reason } => (OrderStatus::Failed, Some(reason.as_str())),
        };
        for _ in 0..SETTLE_ATTEMPTS {
            let Some(settled) = order.transitioned(next, self.clock.now()) else {
                return Ok(Settlement::AlreadyDone(order));
            };
            if self.store.settle(&settled, order.status).await? {
                tracing::info!(order_id = %settled.id, status = %settled.status, "order settled");
                metrics::count(match next {
                    OrderStatus::Paid => BusinessMetric::PaymentsPaid,
                    _ => BusinessMetric::PaymentsFailed,
                });
                metrics::settle_lag(settled.updated_at - settled.created_at);
                if let Some(event) =
                    OrderEvent::for_order(&settled, reason.map(str::to_owned), trace_id)
                {
                    self.notifier.notify(&settled.user_id, &event).await;
                }
                return Ok(Settlement::Settled(settled));
            }
            // Another writer moved it: read what won and go again from there.
            order = self.store.get_order(&order.id).await?.ok_or_else(|| {
                AppError::internal(format!("order {} vanished while settling", order.id))
            })?;
        }
        Err(AppError::internal(format!(
            "order {} kept changing while settling",
            order.id
        )))
    }
}

impl<S, N, C> SettlePayment<'_, S, N, C>
where
    S: OrderReader + OrderSettler + WebhookStore,
    N: Notifier,
    C: Clock,
{
    /// Applies the outcome of a webhook that came before `order` existed, if one is waiting.
    /// `None` when none is.
    pub async fn apply_pending(
        &self,
        order: Order,
        trace_id: &str,
    ) -> Result<Option<Settlement>, AppError> {
        let Some(pending) = self.store.pending_settlement(&order.id).await? else {
            return Ok(None);
        };
        tracing::info!(order_id = %order.id, webhook = pending.idempotency_key.as_str(), "applying a webhook that came before its order");
        self.run(order, &pending.outcome, trace_id).await.map(Some)
    }
}
