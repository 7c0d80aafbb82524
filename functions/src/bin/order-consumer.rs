//! Lambda on the order queue (SQS event source, `ReportBatchItemFailures`): settles payments.

use std::sync::Arc;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::Config;
use shared::worker::AwsWorker;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = Config::from_env()?;
    shared::telemetry::init(config.log_format);
    let worker = AwsWorker::connect(&config).await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let worker = Arc::clone(&worker);
        async move {
            Ok::<SqsBatchResponse, Error>(
                shared::worker::consumer::handle(&worker, event.payload).await,
            )
        }
    }))
    .await
}
