//! The payment provider: charging an order.

use std::future::Future;

use crate::domain::Order;

pub use crate::domain::PaymentOutcome;

/// A technical failure of the payment provider: retried, never a business decision.
#[derive(Debug, thiserror::Error)]
#[error("the payment provider failed")]
pub struct PaymentError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Charges an order. Providers are called with the order id as idempotency key, so a charge
/// repeated after a crash or a duplicate message does not charge twice.
pub trait PaymentGateway: Send + Sync {
    /// Charges `order.total_amount`.
    fn charge(
        &self,
        order: &Order,
    ) -> impl Future<Output = Result<PaymentOutcome, PaymentError>> + Send;
}
