//! Lambda on the order queue (SQS event source, `ReportBatchItemFailures`): settles payments.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    order_functions::run_order_consumer().await
}
