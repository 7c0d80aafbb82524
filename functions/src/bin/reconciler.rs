//! Scheduled Lambda (EventBridge, every minute): re-enqueues orders left PENDING or PROCESSING
//! longer than `RECONCILE_AFTER_SECONDS`.

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};
use shared::Config;
use shared::worker::AwsWorker;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = Config::from_env()?;
    shared::telemetry::init(config.log_format);
    let worker = AwsWorker::connect(&config).await?;
    // The scheduled event's content carries nothing the run needs.
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<Value>| {
        let worker = Arc::clone(&worker);
        async move {
            let report = shared::worker::reconciler::run(&worker).await?;
            Ok::<Value, Error>(
                json!({ "requeued": report.requeued, "enqueue_failures": report.enqueue_failures }),
            )
        }
    }))
    .await
}
