//! The application: the ports wired together once per cold start, shared by every request.

use std::sync::Arc;

use crate::adapters::apigw::ApiGatewayPusher;
use crate::adapters::dynamodb::DynamoStore;
use crate::adapters::sqs::SqsOrderQueue;
use crate::api::auth::{AuthError, Authenticator};
use crate::config::{Config, LockSettings};
use crate::notify::ConnectionNotifier;
use crate::ports::{
    Clock, IdempotencyStore, Notifier, OrderQueue, OrderReader, ProductCatalog, RateCounter,
    Reachable, StockLocks, StockReserver, SystemClock,
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
}

/// The production wiring: DynamoDB and SQS through the AWS SDK.
pub type AwsApp = App<DynamoStore, SqsOrderQueue, AwsNotifier>;

/// Order events pushed through API Gateway's management API to connections stored in DynamoDB.
pub type AwsNotifier = ConnectionNotifier<DynamoStore, ApiGatewayPusher>;

/// Why an instance could not start.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// The JWT settings are unusable.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The order queue's URL could not be resolved.
    #[error("cannot resolve the URL of queue {name}")]
    QueueUrl {
        /// The queue name.
        name: String,
        /// What SQS said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl<S: Store, Q: OrderQueue + Reachable, N: Notifier, C: Clock> App<S, Q, N, C> {
    /// Wires ports that were built elsewhere (tests, fakes).
    pub fn new(
        store: S,
        queue: Q,
        notifier: N,
        clock: C,
        config: &Config,
    ) -> Result<Self, BootError> {
        Ok(App {
            store,
            queue,
            notifier,
            clock,
            auth: Authenticator::from_config(config)?,
            locks: config.locks.clone(),
            rate_limit_per_minute: config.rate_limit_per_minute,
        })
    }
}

impl AwsApp {
    /// Builds the SDK clients once and resolves the queue URL: the cold-start half of every function.
    pub async fn connect(config: &Config) -> Result<Arc<Self>, BootError> {
        let sdk = crate::aws::sdk_config(config).await;
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.tables.clone());
        let queue = SqsOrderQueue::connect(aws_sdk_sqs::Client::new(&sdk), config).await?;
        let notifier = aws_notifier(&sdk, &store, config);
        Ok(Arc::new(App::new(
            store,
            queue,
            notifier,
            SystemClock,
            config,
        )?))
    }
}

/// The notifier every function that changes an order uses; without `WS_MANAGEMENT_ENDPOINT` it
/// only logs (a deployment without the WebSocket API).
pub fn aws_notifier(
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
