//! Lambda for `GET /health`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    order_functions::run_http::<shared::api::routes::Health>().await
}
