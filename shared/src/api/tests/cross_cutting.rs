//! What every endpoint shares: health, tokens, rate limit, outages, the sample events.

use super::*;

#[tokio::test]
async fn health_reports_each_service_and_503_when_one_is_down() {
    let app = app();
    let (status, body, _) = call(Endpoint::Health).send(&app).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    app.queue.set_down(true);
    let (status, body, _) = call(Endpoint::Health).send(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        json!({"status": "degraded", "services": {"dynamodb": "ok", "sqs": "unreachable"}})
    );
    app.queue.set_down(false);
    app.store.set_down(true);
    let (status, body, _) = call(Endpoint::Health).send(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["services"]["dynamodb"], "unreachable");
    let every_table: Vec<&str> = crate::function::Table::ALL
        .iter()
        .map(|table| table.default_name())
        .collect();
    assert_eq!(body["unreachable_tables"], json!(every_table));
}

#[tokio::test]
async fn expired_and_foreign_tokens_are_401() {
    let app = app();
    let expired = mint_hs256(
        "local-dev-secret",
        "alice",
        None,
        Utc::now() - chrono::Duration::minutes(1),
    );
    let foreign = mint_hs256(
        "not-our-secret",
        "alice",
        None,
        Utc::now() + chrono::Duration::minutes(5),
    );
    for token in [expired, foreign] {
        let (status, body, _) = call(Endpoint::ListOrders)
            .header("authorization", format!("Bearer {token}"))
            .send(&app)
            .await;
        assert_eq!(
            (status, body["error_code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("UNAUTHENTICATED"))
        );
    }
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after_until_the_oldest_bucket_has_left_the_span() {
    let app = app_with(|c| c.rate_limit_per_minute = 2);
    let alice = || call(Endpoint::ListOrders).user("alice");
    assert_eq!(alice().send(&app).await.0, StatusCode::OK);
    app.clock.advance(Duration::from_secs(20));
    assert_eq!(alice().send(&app).await.0, StatusCode::OK);
    let (status, body, response) = alice().send(&app).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("RATE_LIMITED"))
    );
    // The first request's 2-second bucket counts until 62 s (`domain/rate_window.rs`).
    assert_eq!(response.headers()["retry-after"], "42");
    assert_eq!(body["details"]["retry_after_seconds"], 42);
    assert_eq!(
        call(Endpoint::ListOrders).user("bob").send(&app).await.0,
        StatusCode::OK,
        "limits are per user"
    );
    // A minute boundary changes nothing: only the age of the oldest counted bucket does.
    app.clock.advance(Duration::from_millis(41_500));
    let (status, _, response) = alice().send(&app).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "1", "0.5 s rounds up");
    app.clock.advance(Duration::from_millis(500));
    assert_eq!(alice().send(&app).await.0, StatusCode::OK);
    let (_, _, response) = alice().send(&app).await;
    assert_eq!(
        response.headers()["retry-after"],
        "20",
        "now the second request is the oldest"
    );
}

#[tokio::test]
async fn store_outage_is_503_service_unavailable() {
    let app = app();
    app.store.set_down(true);
    let (status, body, _) = call(Endpoint::GetProduct).id("dear").send(&app).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("SERVICE_UNAVAILABLE"))
    );
}

/// The `events/*.json` samples (also used with `cargo lambda invoke`) go through the same
/// deserialization the Lambda runtime uses and get the expected answers.
#[tokio::test]
async fn sample_events_deserialize_like_the_runtime_and_are_served() {
    let app = app();
    app.store.insert_product(Product {
        id: ProductId::new("espresso-beans"),
        name: "Espresso beans".into(),
        price: Money::parse("14.90").unwrap(),
        stock: 10,
        stock_shards: 1,
        created_at: Utc::now(),
        updated_at: Utc::now(),
    });
    let events: [(Endpoint, &str, StatusCode); 10] = [
        (
            Endpoint::Health,
            include_str!("../../../../events/health.json"),
            StatusCode::OK,
        ),
        (
            Endpoint::ListProducts,
            include_str!("../../../../events/list-products.json"),
            StatusCode::OK,
        ),
        (
            Endpoint::GetProduct,
            include_str!("../../../../events/get-product.json"),
            StatusCode::OK,
        ),
        (
            Endpoint::CreateProduct,
            include_str!("../../../../events/create-product.json"),
            StatusCode::CREATED,
        ),
        (
            Endpoint::CreateOrder,
            include_str!("../../../../events/create-order.json"),
            StatusCode::CREATED,
        ),
        (
            Endpoint::UpdateProduct,
            include_str!("../../../../events/update-product.json"),
            StatusCode::OK,
        ),
        (
            Endpoint::ListOrders,
            include_str!("../../../../events/list-orders.json"),
            StatusCode::OK,
        ),
        (
            Endpoint::GetOrder,
            include_str!("../../../../events/get-order.json"),
            StatusCode::NOT_FOUND,
        ),
        (
            Endpoint::CancelOrder,
            include_str!("../../../../events/cancel-order.json"),
            StatusCode::NOT_FOUND,
        ),
        (
            Endpoint::DeleteProduct,
            include_str!("../../../../events/delete-product.json"),
            StatusCode::NO_CONTENT,
        ),
    ];
    for (endpoint, event, expected) in events {
        let event: lambda_http::request::LambdaRequest = serde_json::from_str(event).unwrap();
        let response = handle(&app, endpoint, Request::from(event)).await;
        assert_eq!(
            response.status(),
            expected,
            "{}: {:?}",
            endpoint.function_name(),
            response.body()
        );
        assert_eq!(
            response.headers()["x-trace-id"],
            format!("sample-{}", endpoint.function_name())
        );
    }
    let (_, listed, _) = call(Endpoint::ListOrders).user("dev-user").send(&app).await;
    assert_eq!(listed["data"][0]["total_amount"], "29.80");
}

#[tokio::test]
async fn an_id_that_cannot_exist_is_404_without_asking_the_store() {
    let app = app();
    // A store that is down answers 503 to anything that reaches it.
    app.store.set_down(true);
    let impossible = [
        "x".repeat(129),
        "a\nb".to_owned(),
        "a\u{202E}b".to_owned(),
        " ".to_owned(),
    ];
    for endpoint in [
        Endpoint::GetProduct,
        Endpoint::UpdateProduct,
        Endpoint::DeleteProduct,
        Endpoint::GetOrder,
        Endpoint::CancelOrder,
        Endpoint::GetHold,
    ] {
        for id in &impossible {
            let (status, body, _) = call(endpoint)
                .admin()
                .id(id)
                .json(json!({"stock": 1}))
                .send(&app)
                .await;
            assert_eq!(
                (status, body["error_code"].as_str()),
                (StatusCode::NOT_FOUND, Some("NOT_FOUND")),
                "{endpoint:?} {id:?}: {body}"
            );
        }
        let (status, _, _) = call(endpoint)
            .admin()
            .id("possible")
            .json(json!({"stock": 1}))
            .send(&app)
            .await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{endpoint:?} reaches the store"
        );
    }
}
