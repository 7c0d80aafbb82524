//! The narrow capabilities handlers depend on, one file per aggregate and re-exported here, with
//! what they all share (store errors, pages, the clock); the adapters implement them.

mod catalog;
mod connections;
mod holds;
mod idempotency;
mod orders;
mod payments;
mod queue;
mod rate_limits;
mod secrets;
mod webhooks;

pub use catalog::{
    JournalSweep, PlaceOrderError, ProductCatalog, StockJournal, StockLocks, StockReserver,
    StockTaken, UnsentOrder,
};
pub use connections::{
    Connection, ConnectionPusher, ConnectionStore, Delivery, Notifier, PushError,
};
pub use holds::{HoldStore, PlaceHoldError};
pub use idempotency::{IdempotencyRecord, IdempotencyStore};
pub use orders::{OrderQuery, OrderReader, OrderSettler, UnsettledOrders};
pub use payments::{PaymentError, PaymentGateway, PaymentOutcome};
pub use queue::{DeadLetter, DeadLetters, OrderQueue, QueueError};
pub use rate_limits::{RATE_SPAN_MS, RateCounter, RateDecision};
pub use secrets::{SecretError, SecretFuture, SecretSource, SecretVersion, SecretVersions};
pub use webhooks::{PendingSettlement, WebhookRecord, WebhookStore};

use std::future::Future;

use chrono::{DateTime, Utc};

/// A failure of a backing store, kept with its cause.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or refused the call (throttling, network, 5xx).
    #[error("the store is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// An item in the store does not map to the domain: a bug or a hand edit, never the client's fault.
    #[error("stored item is corrupt: {0}")]
    Corrupt(String),
    /// The store refused a request as malformed (DynamoDB's `ValidationException`: a key over
    /// its size limit, a wrong attribute type). Input is parsed before any call, so this is a
    /// request we built wrong, a fault of ours (500), never a reason to retry (503).
    #[error("the store refused the request as invalid")]
    Rejected(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A pagination cursor that this store did not hand out.
    #[error("the cursor is not valid")]
    InvalidCursor,
}

impl StoreError {
    /// Wraps any SDK error as [`StoreError::Unavailable`], keeping it as the source.
    pub fn unavailable(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unavailable(Box::new(cause))
    }
}

/// One page of a listing and the opaque cursor of the next, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Pass back as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Reachability of a backing service, for `/health`.
pub trait Reachable: Send + Sync {
    /// The parts of the service that do not answer a cheap call right now: a store names its
    /// tables (by [`Table::default_name`](crate::function::Table::default_name)), a queue itself.
    /// Empty when every part answers.
    fn unreachable(&self) -> impl Future<Output = Vec<&'static str>> + Send;
}

/// The time, injected so tests never sleep to see a lease or a window expire.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A port outside the function's [`Footprint`](crate::function::Footprint) is wired as `None`: the
/// function builds no client for it and has no permission to use it, so reaching it is a bug in
/// the footprint, reported as a failure of that port rather than a call to AWS.
#[derive(Debug, thiserror::Error)]
#[error("{0} is not in this function's footprint")]
pub struct NotWired(pub &'static str);

impl<R: Reachable> Reachable for Option<R> {
    async fn unreachable(&self) -> Vec<&'static str> {
        match self {
            Some(service) => service.unreachable().await,
            None => vec!["not wired"],
        }
    }
}
