//! Scheduled Lambda (EventBridge, every minute): re-enqueues orders left PENDING or PROCESSING
//! longer than `RECONCILE_AFTER_SECONDS`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    order_functions::run_reconciler().await
}
