//! The business metrics an HTTP call counts: `POST /orders` placed, replayed and refused by the
//! `error_code` the client got; a webhook refused for its signature.

use super::*;
use crate::metrics::{BusinessMetric, collect};

#[tokio::test]
async fn orders_are_counted_placed_replayed_and_refused_by_the_error_code_the_client_got() {
    let app = app();
    let order = |key: &'static str, items: &'static [(&'static str, i64)]| {
        call(Endpoint::CreateOrder)
            .user("alice")
            .json(order_body(key, items))
    };

    let ((), tally) = collect(async {
        assert_eq!(
            order("k1", &[("last", 1)]).send(&app).await.0,
            StatusCode::CREATED
        );
        assert_eq!(
            order("k1", &[("last", 1)]).send(&app).await.0,
            StatusCode::OK
        );
        let (status, body, _) = order("k2", &[("last", 1)]).send(&app).await;
        assert_eq!(
            (status, &body["error_code"]),
            (StatusCode::CONFLICT, &json!("INSUFFICIENT_STOCK"))
        );
        let (status, body, _) = order("k3", &[("cheap", 0)]).send(&app).await;
        assert_eq!(body["error_code"], "VALIDATION_ERROR", "{status}");
    })
    .await;

    assert_eq!(tally.count(BusinessMetric::OrdersPlaced), 1);
    assert_eq!(tally.count(BusinessMetric::OrdersReplayed), 1);
    assert_eq!(tally.refusals("INSUFFICIENT_STOCK"), 1);
    assert_eq!(tally.refusals("VALIDATION_ERROR"), 1);
    assert_eq!(tally.count(BusinessMetric::OrdersRefused), 2);
}

#[tokio::test]
async fn a_webhook_with_a_bad_signature_is_counted_refused_and_other_refusals_are_not_orders() {
    let app = app();

    let ((), tally) = collect(async {
        let (status, _, _) = call(Endpoint::PaymentWebhook)
            .header(crate::domain::webhook::SIGNATURE_HEADER, "t=1,v1=00".into())
            .raw("{}".into())
            .send(&app)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _, _) = call(Endpoint::GetOrder)
            .user("alice")
            .id("nope")
            .send(&app)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    })
    .await;

    assert_eq!(tally.count(BusinessMetric::WebhooksRefused), 1);
    assert_eq!(tally.count(BusinessMetric::OrdersRefused), 0);
}
