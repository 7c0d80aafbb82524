//! The application: the ports wired together once per cold start, shared by every request.

use std::sync::Arc;

use crate::adapters::apigw::ApiGatewayPusher;
use crate::adapters::dynamodb::DynamoStore;
use crate::adapters::sqs::SqsOrderQueue;
use crate::application::PlaceOrder;
use crate::auth::{AuthError, Authenticator};
use crate::config::{Config, ConfigError, LockSettings};
use crate::function::Footprint;
use crate::notify::ConnectionNotifier;
use crate::ports::{
    Clock, HoldStore, IdempotencyStore, Notifier, OrderQueue, OrderReader, OrderSettler,
    ProductCatalog, RateCounter, Reachable, StockLocks, StockReserver, SystemClock, WebhookStore,
};

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
    /// The payment provider's signing secret; `None` in a function that receives no webhooks.
    pub webhook_secret: Option<String>,
    /// How long a new order waits before the payment pipeline sees it.
    pub cancel_window: std::time::Duration,
}

/// The production wiring: DynamoDB and SQS through the AWS SDK. The queue and the notifier are
/// `None` in a function whose footprint leaves them out.
pub type AwsApp = App<DynamoStore, Option<SqsOrderQueue>, Option<AwsNotifier>>;

/// Order events pushed through API Gateway's management API to connections stored in DynamoDB.
pub type AwsNotifier = ConnectionNotifier<DynamoStore, ApiGatewayPusher>;

/// Why an instance could not start.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// A setting is missing or unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The JWT settings are unusable.
    #[error(transparent)]
    Auth(#[from] AuthError),
}

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
        Ok(Self::with_authenticator(
            store, queue, notifier, clock, auth, config,
        ))
    }

    /// Wires ports with a token verifier built elsewhere, and the settings of `config`.
    fn with_authenticator(
        store: S,
        queue: Q,
        notifier: N,
        clock: C,
        auth: Authenticator,
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
            webhook_secret: config.webhook_secret.clone(),
            cancel_window: config.cancel_window,
        }
    }
}

impl<S, Q, N, C> App<S, Q, N, C> {
    /// Order placement over these ports with these settings: what `POST /orders` runs, and what
    /// the load tests' ceiling runs without the HTTP path.
    pub fn place_order(&self) -> PlaceOrder<'_, S, Q, N, C> {
        PlaceOrder {
            store: &self.store,
            queue: &self.queue,
            notifier: &self.notifier,
            clock: &self.clock,
            locks: &self.locks,
            cancel_window: self.cancel_window,
        }
    }
}

impl AwsApp {
    /// The cold-start half of an HTTP function: builds only the clients `footprint` uses (the
    /// local gateway passes [`Footprint::everything`]). No network call happens here.
    pub async fn connect(config: &Config, footprint: &Footprint) -> Result<Arc<Self>, BootError> {
        let auth = authenticator(config, footprint)?;
        if footprint.verifies_webhooks {
            config.require_webhook_secret()?;
        }
        let sdk = crate::aws::sdk_config(config).await;
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.tables.clone());
        let queue = order_queue(&sdk, config, footprint)?;
        let notifier = footprint.pushes.then(|| aws_notifier(&sdk, &store, config));
        Ok(Arc::new(App::with_authenticator(
            store,
            queue,
            notifier,
            SystemClock,
            auth,
            config,
        )))
    }
}

/// The token verifier of a function: none for one that does not authenticate; otherwise the
/// configured key, and never the published development secret outside an emulator.
pub(crate) fn authenticator(
    config: &Config,
    footprint: &Footprint,
) -> Result<Authenticator, BootError> {
    if !footprint.authenticates {
        return Ok(Authenticator::refusing_every_token());
    }
    config
        .auth
        .refuse_development_secret(config.aws_endpoint_url.as_deref())?;
    Ok(Authenticator::from_settings(&config.auth)?)
}

/// The order queue at `ORDER_QUEUE_URL`, for a footprint that uses it.
pub(crate) fn order_queue(
    sdk: &aws_config::SdkConfig,
    config: &Config,
    footprint: &Footprint,
) -> Result<Option<SqsOrderQueue>, BootError> {
    if !footprint.order_queue {
        return Ok(None);
    }
    let url = config.require_order_queue_url()?;
    let queue = SqsOrderQueue::new(aws_sdk_sqs::Client::new(sdk), url.to_owned());
    if !footprint.reconciles {
        return Ok(Some(queue));
    }
    let dead_letters = config.require_order_dlq_url()?;
    Ok(Some(queue.with_dead_letters(dead_letters.to_owned())))
}

/// The notifier every function that changes an order uses; without `WS_MANAGEMENT_ENDPOINT` it
/// only logs (a deployment without the WebSocket API).
pub(crate) fn aws_notifier(
    sdk: &aws_config::SdkConfig,
    store: &DynamoStore,
    config: &Config,
) -> AwsNotifier {
    let pusher = config
        .ws_management_endpoint
        .as_deref()
        .map(|endpoint| ApiGatewayPusher::new(sdk, endpoint));
    ConnectionNotifier::new(store.clone(), pusher)
}
