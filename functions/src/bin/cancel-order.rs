//! Lambda for `POST /orders/{id}/cancel`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    order_functions::run_http::<shared::api::routes::CancelOrder>().await
}
