//! The asynchronous side of the stack: the payment consumer behind the SQS event source on the
//! order queue, and the reconciler and the hold sweeper on their schedules, running the same
//! consumer and use cases (built by `shared::worker::Worker`) as their Lambdas.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use shared::Config;
use shared::metrics::Metrics;
use shared::worker::{AwsWorker, consumer};

use crate::event_source::{EventSourceOptions, SqsHandler, spawn_sqs_event_source};
use crate::schedule::{ScheduledJob, spawn_schedule};
use crate::server::ServerTask;
use crate::settings::LocalSettings;

/// Bounds of the reconciler's period. It runs every `RECONCILE_AFTER_SECONDS`, so an unsettled
/// order is noticed within twice that; at most a minute apart (EventBridge's finest `rate`), and at
/// least a second apart so that a tiny setting in a test does not spin.
const RECONCILE_PERIOD_MIN: Duration = Duration::from_secs(1);
const RECONCILE_PERIOD_MAX: Duration = Duration::from_secs(60);

/// The running consumer, reconciler and hold sweeper.
pub(crate) struct WorkerTasks {
    event_source: ServerTask,
    reconciler: ServerTask,
    sweeper: ServerTask,
}

impl WorkerTasks {
    /// Connects the worker's ports and starts both; `config` must name the order queue's URL.
    pub(crate) async fn start(
        config: &Config,
        order_queue_arn: &str,
        local: &LocalSettings,
        metrics: &Metrics,
    ) -> anyhow::Result<Self> {
        let queue_url = config
            .order_queue_url
            .clone()
            .context("the order queue's URL is not known")?;
        let worker = AwsWorker::connect(config, &shared::Footprint::everything())
            .await
            .context("connecting the consumer and the reconciler to DynamoDB and SQS")?;
        let sqs = aws_sdk_sqs::Client::new(&shared::aws::sdk_config(config).await);

        let consumer_worker = Arc::clone(&worker);
        let consumer_metrics = metrics.clone();
        let handler: SqsHandler = Arc::new(move |event| {
            let worker = Arc::clone(&consumer_worker);
            let metrics = consumer_metrics.clone();
            Box::pin(async move { metrics.measure(consumer::handle(&worker, event)).await })
        });
        let (event_source, _) = spawn_sqs_event_source(
            sqs,
            queue_url,
            order_queue_arn.to_owned(),
            config.aws_region.clone(),
            EventSourceOptions {
                max_concurrency: local.consumer_max_concurrency,
                ..EventSourceOptions::default()
            },
            handler,
        );

        let sweeper_worker = Arc::clone(&worker);
        let sweeper_metrics = metrics.clone();
        let sweep: ScheduledJob = Arc::new(move || {
            let worker = Arc::clone(&sweeper_worker);
            let metrics = sweeper_metrics.clone();
            Box::pin(async move {
                match metrics.measure(worker.expire_holds().run()).await {
                    Ok(report) if report.expired > 0 || report.lost_races > 0 => {
                        tracing::info!(?report, "hold sweeper run");
                    }
                    Ok(_) => {}
                    Err(error) => tracing::error!(%error, "hold sweeper run failed"),
                }
            })
        });
        let sweeper = spawn_schedule("hold-sweeper", local.hold_sweep_interval, sweep);

        let reconciler_metrics = metrics.clone();
        let job: ScheduledJob = Arc::new(move || {
            let worker = Arc::clone(&worker);
            let metrics = reconciler_metrics.clone();
            Box::pin(async move {
                match metrics.measure(worker.reconcile().run()).await {
                    Ok(report) if report.did_something() => {
                        tracing::info!(?report, "reconciler run");
                    }
                    Ok(_) => {}
                    Err(error) => tracing::error!(%error, "reconciler run failed"),
                }
            })
        });
        let reconciler = spawn_schedule("reconciler", reconcile_period(config), job);

        Ok(WorkerTasks {
            event_source,
            reconciler,
            sweeper,
        })
    }

    /// Stops polling and scheduling; an invocation or run in progress finishes within `grace`.
    pub(crate) async fn stop(self, grace: Duration) {
        tokio::join!(
            self.event_source.stop(grace),
            self.reconciler.stop(grace),
            self.sweeper.stop(grace)
        );
    }
}

fn reconcile_period(config: &Config) -> Duration {
    config
        .reconcile_after
        .clamp(RECONCILE_PERIOD_MIN, RECONCILE_PERIOD_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn period_for(reconcile_after: Duration) -> Duration {
        reconcile_period(&Config {
            reconcile_after,
            ..Config::default()
        })
    }

    #[test]
    fn the_reconciler_runs_every_reconcile_after_within_one_second_and_one_minute() {
        assert_eq!(period_for(Duration::from_secs(20)), Duration::from_secs(20));
        assert_eq!(
            period_for(Duration::from_secs(600)),
            Duration::from_secs(60)
        );
        assert_eq!(period_for(Duration::ZERO), Duration::from_secs(1));
    }
}
