//! Lambda for the WebSocket API's `$default` route.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    order_functions::run_ws(shared::ws::WsRoute::Default).await
}
