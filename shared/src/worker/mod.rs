//! The asynchronous entry points, thin adapters from an event to a use case and back: the SQS
//! consumer (a batch to [`ProcessPayment`](crate::application::ProcessPayment) per message, and
//! back to batch item failures) and the reconciler's schedule (a run of
//! [`ReconcileOrders`](crate::application::ReconcileOrders), and back to its report). Both run
//! with a [`Worker`]: the ports, wired once per cold start.

pub mod consumer;
pub mod reconciler;

use std::sync::Arc;
use std::time::Duration;

use crate::adapters::dynamodb::DynamoStore;
use crate::adapters::payments::SimulatedPayments;
use crate::adapters::sqs::SqsOrderQueue;
use crate::app::{AwsNotifier, BootError, aws_notifier, order_queue};
use crate::config::Config;
use crate::function::Footprint;
use crate::ports::SystemClock;

/// The ports the consumer and the reconciler use.
pub struct Worker<S, P, N, Q, C = SystemClock> {
    /// Orders and stock.
    pub store: S,
    /// The payment provider.
    pub payments: P,
    /// Order events to WebSocket connections.
    pub notifier: N,
    /// The order queue (the reconciler re-enqueues).
    pub queue: Q,
    /// The time.
    pub clock: C,
    /// `RECONCILE_AFTER_SECONDS`: how long an order may stay PENDING or PROCESSING unnoticed.
    pub reconcile_after: Duration,
    /// `CANCEL_WINDOW_SECONDS`: added to `reconcile_after` for PENDING orders, whose message is
    /// delayed by that window on purpose.
    pub cancel_window: Duration,
}

/// The production wiring. The consumer has no queue (it only receives, through the event source)
/// and the reconciler no notifier: each is `None` where the footprint leaves it out.
pub type AwsWorker =
    Worker<DynamoStore, SimulatedPayments, Option<AwsNotifier>, Option<SqsOrderQueue>>;

impl AwsWorker {
    /// Builds only the clients `footprint` uses, once per cold start. No network call happens here.
    pub async fn connect(config: &Config, footprint: &Footprint) -> Result<Arc<Self>, BootError> {
        let sdk = crate::aws::sdk_config(config).await;
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.tables.clone());
        let queue = order_queue(&sdk, config, footprint)?;
        let notifier = footprint.pushes.then(|| aws_notifier(&sdk, &store, config));
        Ok(Arc::new(Worker {
            store,
            payments: SimulatedPayments::from_settings(&config.payments),
            notifier,
            queue,
            clock: SystemClock,
            reconcile_after: config.reconcile_after,
            cancel_window: config.cancel_window,
        }))
    }
}

/// A worker over the in-memory fakes, for the consumer's unit tests.
#[cfg(test)]
pub(crate) type TestWorker = Worker<
    crate::adapters::in_memory::InMemoryStore,
    crate::adapters::in_memory::ScriptedPayments,
    crate::adapters::in_memory::RecordingNotifier,
    crate::adapters::in_memory::RecordingQueue,
    crate::adapters::in_memory::FixedClock,
>;

#[cfg(test)]
impl TestWorker {
    /// Empty fakes, an approving provider, a fixed clock, 60 s before reconciling.
    pub(crate) fn with_fakes() -> Self {
        Worker {
            store: Default::default(),
            payments: Default::default(),
            notifier: Default::default(),
            queue: Default::default(),
            clock: Default::default(),
            reconcile_after: Duration::from_secs(60),
            cancel_window: Duration::ZERO,
        }
    }
}
