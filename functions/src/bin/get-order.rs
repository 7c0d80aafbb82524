//! Lambda for `GET /orders/{id}`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    order_functions::run_http::<shared::api::routes::GetOrder>().await
}
