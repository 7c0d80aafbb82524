//! Lambda for the WebSocket API's `$disconnect` route.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    order_functions::run_ws(shared::ws::WsRoute::Disconnect).await
}
