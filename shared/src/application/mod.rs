//! The use cases, between the ports and the entry points (HTTP handlers, the payment consumer,
//! the reconciler, the sweeper). Each takes typed input and returns a typed outcome: an enum of
//! what can happen, idempotent replay included, decided here once. Entry points only translate: a
//! request or a message into the input, the outcome or the error into their own terms
//! (`api::outcome` for HTTP, `worker::consumer` for SQS batch item failures).
//!
//! - [`PlaceOrder`]: from items or from a hold; the stock-lock algorithm lives with it (`locks`),
//!   its waits end inside the invocation's time ([`WaitBudget`]).
//! - [`CancelOrder`]: PENDING -> CANCELLED with stock back.
//! - [`ProcessPayment`]: what the consumer does with an order's message: apply a webhook that
//!   came first, or claim, charge and settle; a duplicate or a redelivery resumes or does nothing.
//! - [`SettlePayment`]: PENDING or PROCESSING -> PAID | FAILED, one implementation for
//!   [`ProcessPayment`] and the webhook; [`ReceivePaymentWebhook`] wraps it with the webhook's
//!   idempotency and the outcome stored for an order that does not exist yet.
//! - [`ReconcileOrders`]: no order stays unsettled: messages never sent, dead letters, and orders
//!   unchanged for too long are sent to the order queue again.
//! - [`PlaceHold`] and [`ExpireHolds`]: stock set aside for a checkout window, and given back.

mod budget;
mod cancel_order;
mod expire_holds;
mod locks;
mod payment_webhook;
mod place_hold;
mod place_order;
mod process_payment;
mod reconcile;
mod settle_payment;
mod stock_patience;

pub use budget::WaitBudget;
pub use cancel_order::{CancelOrder, Cancelled};
pub use expire_holds::{ExpireHolds, SweepReport};
pub use payment_webhook::{ReceivePaymentWebhook, WebhookAnswer};
pub use place_hold::PlaceHold;
pub use place_order::{PlaceOrder, Placed};
pub use process_payment::{ProcessPayment, ProcessPaymentError};
pub use reconcile::{ReconcileOrders, ReconcileReport};
pub use settle_payment::{SettlePayment, Settlement};

use crate::domain::{HoldId, HoldStatus, OrderStatus, ProductId};
use crate::ports::StoreError;

/// Everything a use case can refuse or fail with. The business refusals come first; the last two
/// are faults: [`AppError::Unavailable`] (a backend is down, retry later) and
/// [`AppError::Internal`] (a fault of ours, such as stored data that does not map to the domain).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Unknown id, or another user's resource.
    #[error("{what} not found")]
    NotFound {
        /// `order`, `product`, `hold`.
        what: &'static str,
        /// The id asked for.
        id: String,
    },
    /// Not enough units of a product.
    #[error("insufficient stock for product {product_id}")]
    InsufficientStock {
        /// The product.
        product_id: ProductId,
        /// Units asked for.
        requested: u32,
        /// Units available when checked.
        available: u32,
    },
    /// A product's lock (or its item, under transaction conflicts) could not be taken within the
    /// retry budget.
    #[error("product {product_id} is busy; retry")]
    LockConflict {
        /// The contended product.
        product_id: ProductId,
    },
    /// The same key is being processed right now.
    #[error("a request with this idempotency key is in progress; retry")]
    IdempotencyInProgress,
    /// Same idempotency key, different payload.
    #[error("this idempotency key was used with a different request")]
    IdempotencyKeyReused,
    /// Cancel of an order that left PENDING.
    #[error("order is {status} and can no longer be cancelled")]
    NotCancellable {
        /// Its current status.
        status: OrderStatus,
    },
    /// A checkout from a hold that is consumed, expired, or past its window.
    #[error("hold {hold_id} is not active")]
    HoldNotActive {
        /// The hold.
        hold_id: HoldId,
        /// Its stored status (ACTIVE when only its time is up).
        status: HoldStatus,
    },
    /// The caller already has the most ACTIVE holds allowed on this product.
    #[error("you already hold product {product_id} {limit} times; check out or let a hold expire")]
    HoldLimitReached {
        /// The product.
        product_id: ProductId,
        /// The limit.
        limit: u32,
    },
    /// A backing service failed; nothing was half-written.
    #[error("a backing service is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A fault of ours; the cause is logged, never shown.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => AppError::Unavailable(Box::new(error)),
            StoreError::Corrupt(_) | StoreError::Rejected(_) | StoreError::InvalidCursor => {
                AppError::Internal(Box::new(error))
            }
        }
    }
}

impl AppError {
    /// A fault of ours described in words (an invariant the store broke).
    pub(crate) fn internal(message: String) -> Self {
        AppError::Internal(message.into())
    }
}

#[cfg(test)]
mod tests;
