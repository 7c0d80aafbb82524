//! Cancelling an order: PENDING -> CANCELLED with every item's stock back, in one transaction
//! conditional on PENDING, so a cancel racing the consumer or another cancel has one winner.

use crate::domain::{Caller, Order, OrderId, OrderStatus};
use crate::messages::OrderEvent;
use crate::ports::{Clock, Notifier, OrderReader, StockReserver};

use super::AppError;

/// What cancelling did; both answer with the cancelled order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancelled {
    /// This call cancelled it and gave the stock back.
    Now(Order),
    /// It was cancelled already (an earlier call, or a concurrent one that won); nothing changed.
    Already(Order),
}

/// The ports cancelling uses.
pub struct CancelOrder<'a, S, N, C> {
    /// Orders and the cancel transaction.
    pub store: &'a S,
    /// Order events to the owner.
    pub notifier: &'a N,
    /// The time.
    pub clock: &'a C,
}

impl<S, N, C> CancelOrder<'_, S, N, C>
where
    S: OrderReader + StockReserver,
    N: Notifier,
    C: Clock,
{
    /// Cancels `id` for `caller` (the owner or an admin; anyone else is told it does not exist).
    pub async fn run(
        &self,
        caller: &Caller,
        id: &OrderId,
        trace_id: &str,
    ) -> Result<Cancelled, AppError> {
        let not_found = || AppError::NotFound {
            what: "order",
            id: id.to_string(),
        };
        let order = match self.store.get_order(id).await? {
            Some(order) if caller.may_see(&order.user_id) => order,
            _ => return Err(not_found()),
        };
        let current = match order.cancelled(self.clock.now()) {
            Some(cancelled) if self.store.cancel_order(&cancelled).await? => {
                tracing::info!(order_id = %order.id, "order cancelled, stock restored");
                // Only the cancel that won the conditional write announces it.
                if let Some(event) = OrderEvent::for_order(&cancelled, None, trace_id) {
                    self.notifier.notify(&cancelled.user_id, &event).await;
                }
                return Ok(Cancelled::Now(cancelled));
            }
            // Lost a race (another cancel, or the consumer moved it on): report what won.
            Some(_) => self.store.get_order(id).await?.ok_or_else(not_found)?,
            None => order,
        };
        match current.status {
            OrderStatus::Cancelled => Ok(Cancelled::Already(current)),
            status => Err(AppError::NotCancellable { status }),
        }
    }
}
