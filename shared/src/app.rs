//! The application: the ports wired together once per cold start, shared by every request.

use std::sync::Arc;

use crate::adapters::dynamodb::DynamoStore;
use crate::adapters::sqs::SqsOrderQueue;
use crate::application::{CancelOrder, PlaceHold, PlaceOrder, ReceivePaymentWebhook, WaitBudget};
use crate::auth::Authenticator;
pub use crate::aws::{AwsNotifier, BootError};
use crate::config::{Config, LockSettings};
use crate::function::Footprint;
use crate::ports::{
    Clock, HoldStore, IdempotencyStore, Notifier, OrderQueue, OrderReader, OrderSettler,
    ProductCatalog, RateCounter, Reachable, StockLocks, StockReserver, SystemClock, WebhookStore,
};
use crate::secrets::RotatingSecret;

/// Every store capability the HTTP API uses; one adapter (DynamoDB, or the in-memory fake) has them all.
pub trait Store:
    ProductCatalog
    + OrderReader
    + IdempotencyStore
    + StockReserver
    + StockLocks
    + RateCounter
    + Reachable
    + HoldStore
    + WebhookStore
    + OrderSettler
{
}
impl<T> Store for T where
    T: ProductCatalog
        + OrderReader
        + IdempotencyStore
        + StockReserver
        + StockLocks
        + RateCounter
        + Reachable
        + HoldStore
        + WebhookStore
        + OrderSettler
{
}

/// The ports and settings one Lambda instance (or the local gateway) serves requests with.
pub struct App<S, Q, N, C = SystemClock> {
    /// Tables.
    pub store: S,
    /// The order queue.
    pub queue: Q,
    /// Order events to the owner's WebSocket connections.
    pub notifier: N,
    /// The time.
    pub clock: C,
    /// Token verification.
    pub auth: Authenticator,
    /// Lock use and its retry budget.
    pub locks: LockSettings,
    /// Requests per subject and minute; 0 disables.
    pub rate_limit_per_minute: u32,
    /// How long a hold keeps its units.
    pub hold_ttl: std::time::Duration,
    /// The payment provider's signing secret (rotating when read from Secrets Manager); `None` in
    /// a function that receives no webhooks.
    pub webhook_secret: Option<Arc<RotatingSecret>>,
    /// How long a new order waits before the payment pipeline sees it.
    pub cancel_window: std::time::Duration,
}

/// The wiring of unit tests and benchmarks: the in-memory fakes and a fixed clock.
#[cfg(any(test, feature = "fakes"))]
pub type FakeApp = App<
    crate::adapters::in_memory::InMemoryStore,
    crate::adapters::in_memory::RecordingQueue,
    crate::adapters::in_memory::RecordingNotifier,
    crate::adapters::in_memory::FixedClock,
>;

#[cfg(any(test, feature = "fakes"))]
impl FakeApp {
    /// Empty fakes and a fixed clock, with `config`'s settings.
    pub fn over_fakes(config: &Config) -> Result<Self, BootError> {
        Self::new(
            Default::default(),
            Default::default(),
            Default::default(),
            Default::default(),
            config,
        )
    }
}

/// The production wiring: DynamoDB and SQS through the AWS SDK. The queue and the notifier are
/// `None` in a function whose footprint leaves them out.
pub type AwsApp = App<DynamoStore, Option<SqsOrderQueue>, Option<AwsNotifier>>;

impl<S: Store, Q: OrderQueue + Reachable, N: Notifier, C: Clock> App<S, Q, N, C> {
    /// Wires ports that were built elsewhere (tests, fakes), verifying tokens with `config.auth`.
    pub fn new(
        store: S,
        queue: Q,
        notifier: N,
        clock: C,
        config: &Config,
    ) -> Result<Self, BootError> {
        let auth = Authenticator::from_settings(&config.auth)?;
        let webhook_secret = config
            .webhook_secret
            .as_deref()
            .map(|value| Arc::new(RotatingSecret::fixed(value)));
        Ok(Self::with_authenticator(
            store,
            queue,
            notifier,
            clock,
            auth,
            webhook_secret,
            config,
        ))
    }

    /// Wires ports with a token verifier and a webhook secret built elsewhere, and the settings
    /// of `config`.
    fn with_authenticator(
        store: S,
        queue: Q,
        notifier: N,
        clock: C,
        auth: Authenticator,
        webhook_secret: Option<Arc<RotatingSecret>>,
        config: &Config,
    ) -> Self {
        App {
            store,
            queue,
            notifier,
            clock,
            auth,
            locks: config.locks.clone(),
            rate_limit_per_minute: config.rate_limit_per_minute,
            hold_ttl: config.hold_ttl,
            webhook_secret,
            cancel_window: config.cancel_window,
        }
    }
}

/// The use cases over these ports, each built here and nowhere else.
impl<S, Q, N, C> App<S, Q, N, C> {
    /// Order placement over these ports with these settings: what `POST /orders` runs (with the
    /// invocation's [`WaitBudget`]), and what the load tests' ceiling runs without the HTTP path.
    pub fn place_order(&self) -> PlaceOrder<'_, S, Q, N, C> {
        PlaceOrder {
            store: &self.store,
            queue: &self.queue,
            notifier: &self.notifier,
            clock: &self.clock,
            locks: &self.locks,
            cancel_window: self.cancel_window,
            budget: WaitBudget::UNLIMITED,
        }
    }

    /// A hold on a product's stock for this app's hold time: what `POST /holds` runs (with the
    /// invocation's [`WaitBudget`]).
    pub fn place_hold(&self) -> PlaceHold<'_, S, C> {
        PlaceHold {
            store: &self.store,
            clock: &self.clock,
            ttl: self.hold_ttl,
            budget: WaitBudget::UNLIMITED,
        }
    }

    /// An owner's or an admin's cancellation: what `POST /orders/{id}/cancel` runs.
    pub fn cancel_order(&self) -> CancelOrder<'_, S, N, C> {
        CancelOrder {
            store: &self.store,
            notifier: &self.notifier,
            clock: &self.clock,
        }
    }

    /// A payment provider's webhook, once its signature holds: what `POST /payments/webhook` runs.
    pub fn receive_payment_webhook(&self) -> ReceivePaymentWebhook<'_, S, N, C> {
        ReceivePaymentWebhook {
            store: &self.store,
            notifier: &self.notifier,
            clock: &self.clock,
        }
    }
}

impl AwsApp {
    /// The cold-start half of an HTTP function: the clients `footprint` uses, from
    /// [`aws::connect`](crate::aws::connect) (the local gateway passes [`Footprint::everything`]).
    pub async fn connect(config: &Config, footprint: &Footprint) -> Result<Arc<Self>, BootError> {
        let ports = crate::aws::connect(config, footprint).await?;
        let store = ports.require_store("an HTTP function")?;
        Ok(Arc::new(App::with_authenticator(
            store,
            ports.queue,
            ports.notifier,
            SystemClock,
            ports.auth,
            ports.webhook_secret,
            config,
        )))
    }
}
