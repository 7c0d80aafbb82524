//! Processing an order's payment: what happens to an order after it is placed, and what a
//! duplicate delivery does. The payment consumer runs it once per message.
//!
//! Load the order, then
//! - PENDING: apply the outcome of a webhook that came before the order, if one waits; else
//!   claim it (conditional PENDING -> PROCESSING; announce `OrderProcessing`), charge,
//!   settle (conditional PROCESSING -> PAID, or -> FAILED with stock restored in one transaction;
//!   announce the terminal event). Losing the claim to a cancel means there is nothing to do;
//!   losing it to another delivery's claim resumes as for PROCESSING (a claim whose answer was
//!   lost is told from another's by its `claim_token`, and won).
//! - PROCESSING: a redelivery after a crash, a duplicate, or the reconciler: resume at the charge
//!   (the provider is idempotent per order) and try to settle; only the writer that wins the
//!   conditional settle announces it, so a duplicate settles once and pushes one terminal event.
//! - PAID, FAILED, CANCELLED: done already; nothing changes.

use crate::domain::{Order, OrderId, OrderStatus};
use crate::messages::OrderEvent;
use crate::ports::{
    Clock, Notifier, OrderReader, OrderSettler, PaymentError, PaymentGateway, StoreError,
    WebhookStore,
};

use super::{AppError, SettlePayment, Settlement};

/// Why an order's payment could not be processed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessPaymentError {
    /// The order does not exist.
    #[error("order {0} does not exist")]
    UnknownOrder(String),
    /// DynamoDB failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The payment provider failed technically.
    #[error(transparent)]
    Payment(#[from] PaymentError),
    /// Settling failed: a store outage (retried) or a fault of ours.
    #[error(transparent)]
    Settle(#[from] AppError),
}

/// The ports processing a payment uses.
pub struct ProcessPayment<'a, S, P, N, C> {
    /// Orders, their status moves, and outcomes waiting for their order.
    pub store: &'a S,
    /// The payment provider.
    pub payments: &'a P,
    /// Order events to the owner.
    pub notifier: &'a N,
    /// The time.
    pub clock: &'a C,
}

impl<S, P, N, C> ProcessPayment<'_, S, P, N, C>
where
    S: OrderReader + OrderSettler + WebhookStore,
    P: PaymentGateway,
    N: Notifier,
    C: Clock,
{
    /// Takes order `order_id` as far as it goes: settled by this call, or found done already.
    pub async fn run(
        &self,
        order_id: &OrderId,
        trace_id: &str,
    ) -> Result<Settlement, ProcessPaymentError> {
        let order = self
            .store
            .get_order(order_id)
            .await?
            .ok_or_else(|| ProcessPaymentError::UnknownOrder(order_id.to_string()))?;
        let settle = SettlePayment {
            store: self.store,
            notifier: self.notifier,
            clock: self.clock,
        };
        let processing = match order.status {
            OrderStatus::Pending => {
                // A webhook that came before the order decides; no charge.
                if let Some(settled) = settle.apply_pending(order.clone(), trace_id).await? {
                    return Ok(settled);
                }
                match self.claim(&order, trace_id).await? {
                    Some(processing) => processing,
                    // Lost: to a cancel or a settlement (done), or to another delivery's claim (the
                    // store tells this claim's own write, whose answer was lost, from it). A
                    // PROCESSING order is resumed, as a redelivery resumes it, without its event (the
                    // winner announces it): acknowledging it could leave it PROCESSING with no message
                    // should the winner fail for good (an order from items is in no index).
                    None => match self.current(&order).await? {
                        current if current.status == OrderStatus::Processing => current,
                        current => return Ok(Settlement::AlreadyDone(current)),
                    },
                }
            }
            OrderStatus::Processing => order,
            _ => return Ok(Settlement::AlreadyDone(order)),
        };
        let outcome = self.payments.charge(&processing).await?;
        Ok(settle.run(processing, &outcome, trace_id).await?)
    }

    /// PENDING -> PROCESSING, announced; `None` when a cancel (or another delivery) got there first.
    async fn claim(
        &self,
        order: &Order,
        trace_id: &str,
    ) -> Result<Option<Order>, ProcessPaymentError> {
        let processing = order
            .transitioned(OrderStatus::Processing, self.clock.now())
            .expect("PENDING may become PROCESSING");
        if !self.store.start_processing(&processing).await? {
            return Ok(None);
        }
        if let Some(event) = OrderEvent::for_order(&processing, None, trace_id) {
            self.notifier.notify(&processing.user_id, &event).await;
        }
        Ok(Some(processing))
    }

    /// The order as stored now (as `order` if it is gone).
    async fn current(&self, order: &Order) -> Result<Order, ProcessPaymentError> {
        Ok(self
            .store
            .get_order(&order.id)
            .await?
            .unwrap_or_else(|| order.clone()))
    }
}
