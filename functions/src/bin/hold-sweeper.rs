//! Scheduled Lambda (EventBridge, every minute): expires ACTIVE holds whose window closed and
//! gives their stock back.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    order_functions::run_hold_sweeper().await
}
