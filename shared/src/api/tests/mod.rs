//! Handler tests through [`super::handle`] against the in-memory fakes: every endpoint, every
//! error code the synchronous API can produce, and "nothing half-written" after each refusal.
//! This module holds the harness; the tests sit in one submodule per concern.

mod auth;
mod cross_cutting;
mod metrics;
mod orders;
mod placing;
mod products;

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

use super::{Endpoint, handle};
use crate::app::FakeApp;
use crate::auth::mint_hs256;
use crate::config::{Config, LockSettings};
use crate::domain::{Money, OrderId, OrderStatus, Product, ProductId};

type TestApp = FakeApp;

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
    let app = TestApp::over_fakes(&config).unwrap();
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
            stock_shards: 1,
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

/// Places `user`'s order of `items` under `key`; the order's id.
async fn placed(app: &TestApp, user: &str, key: &str, items: &[(&str, i64)]) -> String {
    let (_, body, _) = call(Endpoint::CreateOrder)
        .user(user)
        .json(order_body(key, items))
        .send(app)
        .await;
    body["data"]["id"].as_str().unwrap().to_owned()
}

fn stocks(app: &TestApp) -> (Option<u32>, Option<u32>, Option<u32>) {
    (
        app.store.stock("cheap"),
        app.store.stock("dear"),
        app.store.stock("last"),
    )
}
