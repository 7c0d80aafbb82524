//! Lambda for the WebSocket API's `$connect` route.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    order_functions::run_ws(shared::ws::WsRoute::Connect).await
}
