//! Test support: pieces of the local stack that integration tests drive on their own, without a
//! whole [`Stack`](crate::Stack). Not used by the stack itself.

use std::sync::Arc;
use std::time::Duration;

use crate::emulators::Emulators;
use crate::event_source::spawn_sqs_event_source;
use crate::partitions::PartitionLimits;
use crate::server::ServerTask;
use crate::settings::LocalSettings;

pub use crate::event_source::{EventSourceOptions, Scaling, SqsHandler};

/// How long a stop waits for in-flight work.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The embedded AWS endpoint alone (rustack-sqs and Dynoxide behind one URL), with no table, queue
/// or gateway. Dropping it aborts its servers.
pub struct EmbeddedAws {
    emulators: Emulators,
}

impl EmbeddedAws {
    /// Starts the emulators on port-0 listeners; queue ARNs and URLs carry `region`.
    pub async fn start(region: &str) -> anyhow::Result<Self> {
        Ok(EmbeddedAws {
            emulators: Emulators::start(region, 0, false, None, Arc::default(), None).await?,
        })
    }

    /// [`EmbeddedAws::start`] under the AWS conditions `settings` ask for: their latency,
    /// transaction conflicts and partition limits (`AWS_CONDITIONS` and the variables beside it;
    /// ports and data directory are not read).
    pub async fn with_conditions(region: &str, settings: &LocalSettings) -> anyhow::Result<Self> {
        Ok(EmbeddedAws {
            emulators: Emulators::start(
                region,
                0,
                false,
                settings.partition_limits(),
                Arc::new(settings.conditions()),
                None,
            )
            .await?,
        })
    }

    /// [`EmbeddedAws::start`] with the partition limit on: each partition key value takes
    /// `write_units` write units per second (`PARTITION_LIMIT=on`, `PARTITION_WRITE_UNITS`) and
    /// AWS's 3,000 read units.
    pub async fn with_partition_limit(region: &str, write_units: u32) -> anyhow::Result<Self> {
        let limits = PartitionLimits {
            write_units: f64::from(write_units),
            read_units: f64::from(LocalSettings::default().partition_read_units),
            scale: 1.0,
        };
        Ok(EmbeddedAws {
            emulators: Emulators::start(region, 0, false, Some(limits), Arc::default(), None)
                .await?,
        })
    }

    /// The endpoint URL that answers SQS and DynamoDB.
    pub fn endpoint(&self) -> &str {
        self.emulators.endpoint()
    }

    /// The endpoint's fault rules (`/_local/faults`).
    pub fn faults(&self) -> std::sync::Arc<crate::Faults> {
        self.emulators.faults()
    }

    /// Stops the endpoint and the queues.
    pub async fn stop(self) {
        self.emulators.stop(STOP_GRACE).await;
    }
}

/// Lambda's SQS event source mapping over `handler` on one queue, with the options the stack uses for
/// the order consumer. Dropping it aborts the pollers.
pub struct SqsEventSource {
    task: ServerTask,
    scaling: Arc<Scaling>,
}

impl SqsEventSource {
    /// Starts polling `queue_url`; records name `queue_arn` and `region` as their source.
    pub fn start(
        client: aws_sdk_sqs::Client,
        queue_url: String,
        queue_arn: String,
        region: String,
        handler: SqsHandler,
    ) -> Self {
        Self::start_with(
            client,
            queue_url,
            queue_arn,
            region,
            EventSourceOptions::default(),
            handler,
        )
    }

    /// [`SqsEventSource::start`] with other polling and scaling options.
    pub fn start_with(
        client: aws_sdk_sqs::Client,
        queue_url: String,
        queue_arn: String,
        region: String,
        options: EventSourceOptions,
        handler: SqsHandler,
    ) -> Self {
        let (task, scaling) =
            spawn_sqs_event_source(client, queue_url, queue_arn, region, options, handler);
        SqsEventSource { task, scaling }
    }

    /// The pollers: how many run now, and the most that ran at once.
    pub fn scaling(&self) -> &Scaling {
        &self.scaling
    }

    /// Stops polling; an invocation in flight finishes and its batch is settled first.
    pub async fn stop(self) {
        self.task.stop(STOP_GRACE).await;
    }
}
