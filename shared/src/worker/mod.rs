//! The asynchronous entry points, thin adapters from an event to a use case and back: the SQS
//! consumer (a batch to [`ProcessPayment`] per message, and back to batch item failures), and the
//! schedules of the reconciler ([`ReconcileOrders`]) and the hold sweeper ([`ExpireHolds`]), which
//! run the use case the [`Worker`] builds and answer with its report. A [`Worker`] holds the
//! ports, wired once per cold start.

pub mod consumer;

use std::sync::Arc;
use std::time::Duration;

use crate::adapters::dynamodb::DynamoStore;
use crate::adapters::payments::SimulatedPayments;
use crate::adapters::sqs::SqsOrderQueue;
use crate::application::{ExpireHolds, ProcessPayment, ReconcileOrders};
use crate::aws::{AwsNotifier, BootError};
use crate::config::Config;
use crate::function::Footprint;
use crate::ports::SystemClock;

/// The ports the consumer, the reconciler and the hold sweeper use.
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
    /// The cold-start half of a background function: the clients `footprint` uses, from
    /// [`aws::connect`](crate::aws::connect).
    pub async fn connect(config: &Config, footprint: &Footprint) -> Result<Arc<Self>, BootError> {
        let ports = crate::aws::connect(config, footprint).await?;
        Ok(Arc::new(Worker {
            store: ports.require_store("a background function")?,
            payments: SimulatedPayments::from_settings(&config.payments),
            notifier: ports.notifier,
            queue: ports.queue,
            clock: SystemClock,
            reconcile_after: config.reconcile_after,
            cancel_window: config.cancel_window,
        }))
    }
}

/// The use cases over these ports, each built here and nowhere else.
impl<S, P, N, Q, C> Worker<S, P, N, Q, C> {
    /// One order's payment: what the consumer runs per message.
    pub fn process_payment(&self) -> ProcessPayment<'_, S, P, N, C> {
        ProcessPayment {
            store: &self.store,
            payments: &self.payments,
            notifier: &self.notifier,
            clock: &self.clock,
        }
    }

    /// One reconciler run: what its schedule runs.
    pub fn reconcile(&self) -> ReconcileOrders<'_, S, Q, C> {
        ReconcileOrders {
            store: &self.store,
            queue: &self.queue,
            clock: &self.clock,
            reconcile_after: self.reconcile_after,
            cancel_window: self.cancel_window,
        }
    }

    /// One sweep of expired holds: what the hold sweeper's schedule runs.
    pub fn expire_holds(&self) -> ExpireHolds<'_, S, C> {
        ExpireHolds {
            store: &self.store,
            clock: &self.clock,
        }
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
