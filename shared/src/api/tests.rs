//! Handler tests through [`super::handle`] against the in-memory fakes: every endpoint, every
//! error code the synchronous API can produce, and "nothing half-written" after each refusal.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use http::StatusCode;
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayV2httpRequestContext, ApiGatewayV2httpRequestContextHttpDescription,
};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{Value, json};

use super::auth::mint_hs256;
use super::{Endpoint, handle};
use crate::adapters::in_memory::{FixedClock, InMemoryStore, RecordingNotifier, RecordingQueue};
use crate::app::App;
use crate::config::{Config, LockSettings};
use crate::domain::{Money, OrderId, OrderStatus, Product, ProductId};

type TestApp = App<InMemoryStore, RecordingQueue, RecordingNotifier, FixedClock>;

fn app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let defaults = Config::default();
    let mut config = Config {
        rate_limit_per_minute: 0,
        locks: LockSettings {
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            attempts: 2,
            ..defaults.locks.clone()
        },
        ..defaults
    };
    adjust(&mut config);
    let app = App::new(
        InMemoryStore::default(),
        RecordingQueue::default(),
        RecordingNotifier::default(),
        FixedClock::default(),
        &config,
    )
    .unwrap();
    for (id, price, stock) in [
        ("cheap", "0.10", 10),
        ("dear", "999.99", 5),
        ("last", "5.00", 1),
    ] {
        app.store.insert_product(Product {
            id: ProductId::new(id),
            name: id.to_uppercase(),
            price: Money::parse(price).unwrap(),
            stock,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        });
    }
    app
}

fn app() -> TestApp {
    app_with(|_| {})
}

fn token(sub: &str, role: Option<&str>) -> String {
    mint_hs256(
        "local-dev-secret",
        sub,
        role,
        Utc::now() + chrono::Duration::hours(1),
    )
}

struct Call {
    endpoint: Endpoint,
    body: Option<String>,
    headers: Vec<(&'static str, String)>,
    path: HashMap<String, String>,
    query: HashMap<String, String>,
}

fn call(endpoint: Endpoint) -> Call {
    Call {
        endpoint,
        body: None,
        headers: vec![],
        path: HashMap::new(),
        query: HashMap::new(),
    }
}

impl Call {
    fn user(self, sub: &str) -> Self {
        self.header("authorization", format!("Bearer {}", token(sub, None)))
    }
    fn admin(self) -> Self {
        self.header(
            "authorization",
            format!("Bearer {}", token("boss", Some("admin"))),
        )
    }
    fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
    fn json(self, body: Value) -> Self {
        self.raw(body.to_string())
    }
    fn raw(mut self, body: String) -> Self {
        self.body = Some(body);
        self.header("content-type", "application/json".into())
    }
    fn id(mut self, id: &str) -> Self {
        self.path.insert("id".into(), id.into());
        self
    }
    fn query(mut self, name: &str, value: &str) -> Self {
        self.query.insert(name.into(), value.into());
        self
    }

    async fn send(self, app: &TestApp) -> (StatusCode, Value, Response<Body>) {
        let mut builder = http::Request::builder()
            .method(self.endpoint.route_key().split(' ').next().unwrap())
            .uri("https://api.test/");
        for (name, value) in &self.headers {
            builder = builder.header(*name, value);
        }
        let body = self.body.map_or(Body::Empty, Body::Text);
        let mut context = ApiGatewayV2httpRequestContext::default();
        let mut http_description = ApiGatewayV2httpRequestContextHttpDescription::default();
        http_description.source_ip = Some("203.0.113.9".into());
        context.http = http_description;
        let request: Request = builder
            .body(body)
            .unwrap()
            .with_path_parameters(self.path)
            .with_query_string_parameters(self.query)
            .with_request_context(RequestContext::ApiGatewayV2(context));
        let response = handle(app, self.endpoint, request).await;
        let json = match response.body() {
            Body::Text(text) => serde_json::from_str(text).unwrap(),
            _ => Value::Null,
        };
        (response.status(), json, response)
    }
}

fn order_body(key: &str, items: &[(&str, i64)]) -> Value {
    json!({ "idempotency_key": key, "items": items.iter().map(|(p, q)| json!({"product_id": p, "quantity": q})).collect::<Vec<_>>() })
}

fn stocks(app: &TestApp) -> (Option<u32>, Option<u32>, Option<u32>) {
    (
        app.store.stock("cheap"),
        app.store.stock("dear"),
        app.store.stock("last"),
    )
}

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
}

#[tokio::test]
async fn placing_an_order_snapshots_prices_computes_the_total_takes_stock_and_enqueues() {
    let app = app();
    let (status, body, response) = call(Endpoint::CreateOrder)
        .user("alice")
        .header("x-trace-id", "trace-123".into())
        .json(order_body("k1", &[("cheap", 3), ("dear", 2)]))
        .send(&app)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["data"]["total_amount"], "2000.28");
    assert_eq!(body["data"]["status"], "PENDING");
    assert_eq!(body["data"]["items"][1]["unit_price"], "999.99");
    assert_eq!(response.headers()["x-trace-id"], "trace-123");
    assert_eq!(stocks(&app), (Some(7), Some(3), Some(1)));
    let sent = app.queue.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].order_id.as_str(), sent[0].trace_id.as_str()),
        (body["data"]["id"].as_str().unwrap(), "trace-123")
    );
}

#[tokio::test]
async fn same_key_and_payload_replays_with_200_and_takes_stock_once() {
    let app = app();
    let first = call(Endpoint::CreateOrder)
        .user("alice")
        .json(order_body("k1", &[("dear", 1)]))
        .send(&app)
        .await;
    let again = call(Endpoint::CreateOrder)
        .user("alice")
        .json(order_body("k1", &[("dear", 1)]))
        .send(&app)
        .await;
    assert_eq!((first.0, again.0), (StatusCode::CREATED, StatusCode::OK));
    assert_eq!(first.1["data"]["id"], again.1["data"]["id"]);
    assert_eq!(app.store.stock("dear"), Some(4));
    assert_eq!(app.queue.sent().len(), 1);
}

#[tokio::test]
async fn the_key_may_come_from_the_idempotency_key_header() {
    let app = app();
    let body = json!({"items": [{"product_id": "cheap", "quantity": 1}]});
    let first = call(Endpoint::CreateOrder)
        .user("alice")
        .header("idempotency-key", "hdr-1".into())
        .json(body.clone())
        .send(&app)
        .await;
    let again = call(Endpoint::CreateOrder)
        .user("alice")
        .header("idempotency-key", "hdr-1".into())
        .json(body)
        .send(&app)
        .await;
    assert_eq!((first.0, again.0), (StatusCode::CREATED, StatusCode::OK));
    assert_eq!(first.1["data"]["idempotency_key"], "hdr-1");
}

#[tokio::test]
async fn same_key_with_another_payload_is_422_and_changes_nothing() {
    let app = app();
    call(Endpoint::CreateOrder)
        .user("alice")
        .json(order_body("k1", &[("dear", 1)]))
        .send(&app)
        .await;
    let (status, body, _) = call(Endpoint::CreateOrder)
        .user("alice")
        .json(order_body("k1", &[("dear", 2)]))
        .send(&app)
        .await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("IDEMPOTENCY_KEY_REUSED")
        )
    );
    assert_eq!(app.store.stock("dear"), Some(4));
}

#[tokio::test]
async fn keys_are_scoped_per_user() {
    let app = app();
    let a = call(Endpoint::CreateOrder)
        .user("alice")
        .json(order_body("same", &[("cheap", 1)]))
        .send(&app)
        .await;
    let b = call(Endpoint::CreateOrder)
        .user("bob")
        .json(order_body("same", &[("cheap", 2)]))
        .send(&app)
        .await;
    assert_eq!((a.0, b.0), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(app.store.stock("cheap"), Some(7));
}

#[tokio::test]
async fn insufficient_stock_is_409_with_product_requested_and_available() {
    let app = app();
    let (status, body, _) = call(Endpoint::CreateOrder)
        .user("alice")
        .json(order_body("k", &[("cheap", 1), ("last", 2)]))
        .send(&app)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error_code"], "INSUFFICIENT_STOCK");
    assert_eq!(
        body["details"],
        json!({"product_id": "last", "requested": 2, "available": 1})
    );
    assert_eq!(stocks(&app), (Some(10), Some(5), Some(1)));
    assert_eq!(app.store.order_count(), 0);
}

#[tokio::test]
async fn rejected_order_requests_leave_stock_untouched() {
    let app = app();
    let long_key = "k".repeat(256);
    let too_many: Vec<(String, i64)> = (0..=crate::domain::MAX_ORDER_LINES)
        .map(|i| (format!("p{i}"), 1))
        .collect();
    let too_many: Vec<(&str, i64)> = too_many.iter().map(|(p, q)| (p.as_str(), *q)).collect();
    let cases: Vec<(Call, StatusCode, &str)> = vec![
        (call(Endpoint::CreateOrder).user("a").raw("{not json".into()), StatusCode::BAD_REQUEST, "MALFORMED_REQUEST"),
        (
            call(Endpoint::CreateOrder).user("a").header("content-type", "text/plain".into()),
            StatusCode::BAD_REQUEST,
            "MALFORMED_REQUEST",
        ),
        (call(Endpoint::CreateOrder).user("a").raw(format!("{{\"pad\": \"{}\"}}", "x".repeat(70_000))), StatusCode::BAD_REQUEST, "MALFORMED_REQUEST"),
        (call(Endpoint::CreateOrder).user("a").json(order_body("k", &too_many)), StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR"),
        (call(Endpoint::CreateOrder).user("a").json(order_body("k", &[("cheap", 0)])), StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR"),
        (call(Endpoint::CreateOrder).user("a").json(order_body("k", &[("cheap", -2)])), StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR"),
        (
            call(Endpoint::CreateOrder).user("a").json(json!({"idempotency_key": "k", "items": [{"product_id": "cheap", "quantity": 1.5}]})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_ERROR",
        ),
        (call(Endpoint::CreateOrder).user("a").json(order_body(&long_key, &[("cheap", 1)])), StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR"),
        (call(Endpoint::CreateOrder).user("a").json(order_body("k", &[("ghost", 1)])), StatusCode::NOT_FOUND, "NOT_FOUND"),
        (call(Endpoint::CreateOrder).json(order_body("k", &[("cheap", 1)])), StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
    ];
    for (i, (request, status, code)) in cases.into_iter().enumerate() {
        let (got, body, _) = request.send(&app).await;
        assert_eq!(
            (got, body["error_code"].as_str()),
            (status, Some(code)),
            "case {i}: {body}"
        );
        assert_eq!(
            stocks(&app),
            (Some(10), Some(5), Some(1)),
            "case {i} changed stock"
        );
    }
    assert_eq!(app.store.order_count(), 0);
    assert!(app.queue.sent().is_empty());
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
async fn another_users_order_is_404_but_admins_see_it() {
    let app = app();
    let (_, created, _) = call(Endpoint::CreateOrder)
        .user("alice")
        .json(order_body("k", &[("cheap", 1)]))
        .send(&app)
        .await;
    let id = created["data"]["id"].as_str().unwrap();
    let (status, body, _) = call(Endpoint::GetOrder)
        .user("mallory")
        .id(id)
        .send(&app)
        .await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::NOT_FOUND, Some("NOT_FOUND"))
    );
    let (status, _, _) = call(Endpoint::CancelOrder)
        .user("mallory")
        .id(id)
        .send(&app)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        call(Endpoint::GetOrder)
            .user("alice")
            .id(id)
            .send(&app)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        call(Endpoint::GetOrder).admin().id(id).send(&app).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn cancel_restores_stock_exactly_once_and_repeats_with_200() {
    let app = app();
    let (_, created, _) = call(Endpoint::CreateOrder)
        .user("alice")
        .json(order_body("k", &[("dear", 2)]))
        .send(&app)
        .await;
    let id = created["data"]["id"].as_str().unwrap();
    for _ in 0..2 {
        let (status, body, _) = call(Endpoint::CancelOrder)
            .user("alice")
            .id(id)
            .send(&app)
            .await;
        assert_eq!(
            (status, body["data"]["status"].as_str()),
            (StatusCode::OK, Some("CANCELLED"))
        );
        assert!(body["data"]["cancelled_at"].is_string());
    }
    assert_eq!(app.store.stock("dear"), Some(5));
}

#[tokio::test]
async fn cancel_after_processing_is_422_and_keeps_stock() {
    let app = app();
    let (_, created, _) = call(Endpoint::CreateOrder)
        .user("alice")
        .json(order_body("k", &[("dear", 2)]))
        .send(&app)
        .await;
    let id = created["data"]["id"].as_str().unwrap();
    app.store
        .set_status(&OrderId::new(id), OrderStatus::Processing);
    let (status, body, _) = call(Endpoint::CancelOrder)
        .user("alice")
        .id(id)
        .send(&app)
        .await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("ORDER_NOT_CANCELLABLE")
        )
    );
    assert_eq!(body["details"]["status"], "PROCESSING");
    assert_eq!(app.store.stock("dear"), Some(3));
}

#[tokio::test]
async fn list_orders_pages_newest_first_and_filters_by_status() {
    let app = app();
    let mut ids = vec![];
    for i in 0..5 {
        let (_, body, _) = call(Endpoint::CreateOrder)
            .user("alice")
            .json(order_body(&format!("k{i}"), &[("cheap", 1)]))
            .send(&app)
            .await;
        ids.push(body["data"]["id"].as_str().unwrap().to_owned());
        app.clock.advance(Duration::from_secs(1));
    }
    call(Endpoint::CancelOrder)
        .user("alice")
        .id(&ids[1])
        .send(&app)
        .await;
    call(Endpoint::CreateOrder)
        .user("bob")
        .json(order_body("k0", &[("cheap", 1)]))
        .send(&app)
        .await;

    let (_, first, _) = call(Endpoint::ListOrders)
        .user("alice")
        .query("limit", "2")
        .send(&app)
        .await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second, _) = call(Endpoint::ListOrders)
        .user("alice")
        .query("limit", "3")
        .query("cursor", cursor)
        .send(&app)
        .await;
    let seen: Vec<&str> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["data"].as_array().unwrap())
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    let newest_first: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(seen, newest_first);
    assert!(second["next_cursor"].is_null());

    let (_, cancelled, _) = call(Endpoint::ListOrders)
        .user("alice")
        .query("status", "CANCELLED")
        .send(&app)
        .await;
    assert_eq!(cancelled["data"].as_array().unwrap().len(), 1);
    assert_eq!(cancelled["data"][0]["id"], ids[1].as_str());
}

#[tokio::test]
async fn list_orders_rejects_bad_parameters_and_foreign_user_ids() {
    let app = app();
    for (name, value) in [
        ("limit", "0"),
        ("limit", "51"),
        ("limit", "x"),
        ("status", "SHIPPED"),
        ("cursor", "bogus"),
    ] {
        let (status, body, _) = call(Endpoint::ListOrders)
            .user("alice")
            .query(name, value)
            .send(&app)
            .await;
        assert_eq!(
            (status, body["error_code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("VALIDATION_ERROR")),
            "{name}={value}"
        );
    }
    assert_eq!(
        call(Endpoint::ListOrders)
            .user("alice")
            .query("user_id", "bob")
            .send(&app)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(Endpoint::ListOrders)
            .admin()
            .query("user_id", "bob")
            .send(&app)
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn products_are_managed_by_admins_only() {
    let app = app();
    let new = json!({"name": "Kettle", "price": "39.00", "stock": 4});
    let (status, body, _) = call(Endpoint::CreateProduct)
        .user("alice")
        .json(new.clone())
        .send(&app)
        .await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::FORBIDDEN, Some("FORBIDDEN"))
    );
    assert_eq!(
        call(Endpoint::CreateProduct)
            .json(new.clone())
            .send(&app)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );

    let (status, created, _) = call(Endpoint::CreateProduct)
        .admin()
        .json(new)
        .send(&app)
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["data"]["id"].as_str().unwrap();
    let (status, updated, _) = call(Endpoint::UpdateProduct)
        .admin()
        .id(id)
        .json(json!({"price": "35.50"}))
        .send(&app)
        .await;
    assert_eq!(
        (
            status,
            updated["data"]["price"].as_str(),
            updated["data"]["stock"].as_u64()
        ),
        (StatusCode::OK, Some("35.50"), Some(4))
    );
    let (status, body, _) = call(Endpoint::UpdateProduct)
        .admin()
        .id(id)
        .json(json!({"price": "1.999"}))
        .send(&app)
        .await;
    assert_eq!(
        (status, body["details"]["price"].is_array()),
        (StatusCode::UNPROCESSABLE_ENTITY, true)
    );
    assert_eq!(
        call(Endpoint::DeleteProduct)
            .admin()
            .id(id)
            .send(&app)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(Endpoint::GetProduct).id(id).send(&app).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(Endpoint::DeleteProduct)
            .admin()
            .id(id)
            .send(&app)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn products_list_and_get_show_live_stock_to_anyone() {
    let app = app();
    call(Endpoint::CreateOrder)
        .user("alice")
        .json(order_body("k", &[("dear", 2)]))
        .send(&app)
        .await;
    let (status, body, _) = call(Endpoint::GetProduct).id("dear").send(&app).await;
    assert_eq!(
        (status, body["data"]["stock"].as_u64()),
        (StatusCode::OK, Some(3))
    );
    let (_, page1, _) = call(Endpoint::ListProducts)
        .query("limit", "2")
        .send(&app)
        .await;
    let (_, page2, _) = call(Endpoint::ListProducts)
        .query("cursor", page1["next_cursor"].as_str().unwrap())
        .send(&app)
        .await;
    assert_eq!(
        page1["data"].as_array().unwrap().len() + page2["data"].as_array().unwrap().len(),
        3
    );
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after_until_the_next_minute() {
    let app = app_with(|c| c.rate_limit_per_minute = 2);
    for _ in 0..2 {
        assert_eq!(
            call(Endpoint::ListOrders).user("alice").send(&app).await.0,
            StatusCode::OK
        );
    }
    let (status, body, response) = call(Endpoint::ListOrders).user("alice").send(&app).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("RATE_LIMITED"))
    );
    assert_eq!(response.headers()["retry-after"], "30");
    assert_eq!(
        call(Endpoint::ListOrders).user("bob").send(&app).await.0,
        StatusCode::OK,
        "limits are per user"
    );
    app.clock.advance(Duration::from_secs(30));
    assert_eq!(
        call(Endpoint::ListOrders).user("alice").send(&app).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_held_product_lock_gives_lock_conflict_and_no_order() {
    let app = app();
    use crate::ports::StockLocks;
    assert!(
        app.store
            .try_lock(
                &ProductId::new("dear"),
                "someone",
                crate::ports::Clock::now(&app.clock),
                Duration::from_secs(60)
            )
            .await
            .unwrap()
    );
    let (status, body, _) = call(Endpoint::CreateOrder)
        .user("alice")
        .json(order_body("k", &[("dear", 1)]))
        .send(&app)
        .await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::CONFLICT, Some("LOCK_CONFLICT"))
    );
    assert_eq!(body["details"]["product_id"], "dear");
    assert_eq!(app.store.stock("dear"), Some(5));
    let unlocked = app_with(|c| c.locks.enabled = false);
    assert!(
        unlocked
            .store
            .try_lock(
                &ProductId::new("dear"),
                "someone",
                crate::ports::Clock::now(&unlocked.clock),
                Duration::from_secs(60)
            )
            .await
            .unwrap()
    );
    let (status, _, _) = call(Endpoint::CreateOrder)
        .user("alice")
        .json(order_body("k", &[("dear", 1)]))
        .send(&unlocked)
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "STOCK_LOCKS=off ignores lock items"
    );
}

#[tokio::test]
async fn a_failed_enqueue_still_answers_201_because_the_order_is_committed() {
    let app = app();
    app.queue.set_down(true);
    let (status, _, _) = call(Endpoint::CreateOrder)
        .user("alice")
        .json(order_body("k", &[("cheap", 1)]))
        .send(&app)
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(app.store.order_count(), 1);
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
        created_at: Utc::now(),
        updated_at: Utc::now(),
    });
    let events: [(Endpoint, &str, StatusCode); 10] = [
        (
            Endpoint::Health,
            include_str!("../../../events/health.json"),
            StatusCode::OK,
        ),
        (
            Endpoint::ListProducts,
            include_str!("../../../events/list-products.json"),
            StatusCode::OK,
        ),
        (
            Endpoint::GetProduct,
            include_str!("../../../events/get-product.json"),
            StatusCode::OK,
        ),
        (
            Endpoint::CreateProduct,
            include_str!("../../../events/create-product.json"),
            StatusCode::CREATED,
        ),
        (
            Endpoint::CreateOrder,
            include_str!("../../../events/create-order.json"),
            StatusCode::CREATED,
        ),
        (
            Endpoint::UpdateProduct,
            include_str!("../../../events/update-product.json"),
            StatusCode::OK,
        ),
        (
            Endpoint::ListOrders,
            include_str!("../../../events/list-orders.json"),
            StatusCode::OK,
        ),
        (
            Endpoint::GetOrder,
            include_str!("../../../events/get-order.json"),
            StatusCode::NOT_FOUND,
        ),
        (
            Endpoint::CancelOrder,
            include_str!("../../../events/cancel-order.json"),
            StatusCode::NOT_FOUND,
        ),
        (
            Endpoint::DeleteProduct,
            include_str!("../../../events/delete-product.json"),
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
