//! The handler's CPU per `POST /orders`, apart from I/O: the whole handler
//! (`shared::api::handle`: JWT HS256 verification, rate limit (off), parsing, the domain, the
//! lock and placement calls, serialization) over the in-memory fakes, whose calls are synchronous
//! map operations, so what is timed is the handler's own work.
//!
//! Each iteration is one `block_on` of the handler on a current-thread tokio runtime (the request
//! is built outside the timed part, by `iter_batched`); `empty_block_on` times `block_on` of an
//! empty future on that runtime, which is what the per-iteration `block_on` adds.
//!
//! `cargo bench -p order-lambda-bench --bench create_order`, then `handler-cpu-report` writes
//! `handler-cpu.json` from the medians criterion leaves in `target/criterion/handler_cpu/`.

use std::hint::black_box;
use std::time::Duration;

use chrono::Utc;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::StatusCode;
use lambda_bench::handler_cpu::{CREATE_ORDER_NEW, CREATE_ORDER_REPLAY, EMPTY_BLOCK_ON, GROUP};
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayV2httpRequestContext, ApiGatewayV2httpRequestContextHttpDescription,
};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt};
use shared::api::handle;
use shared::app::FakeApp;
use shared::auth::mint_hs256;
use shared::domain::{MAX_STOCK, Money, Product, ProductId};
use shared::{Config, Endpoint};

type BenchApp = FakeApp;

const SECRET: &str = "local-dev-secret";
const PRODUCT: &str = "bench-beans";

/// The production defaults (locks on) with the rate limit off, over the fakes, and one product
/// whose stock outlasts any number of iterations.
fn app() -> BenchApp {
    let config = Config {
        rate_limit_per_minute: 0,
        ..Config::default()
    };
    let app = BenchApp::over_fakes(&config).expect("the development settings are valid");
    app.store.insert_product(Product {
        id: ProductId::new(PRODUCT),
        name: "Bench beans".into(),
        price: Money::parse("14.90").unwrap(),
        stock: MAX_STOCK,
        stock_shards: 1,
        created_at: Utc::now(),
        updated_at: Utc::now(),
    });
    app
}

/// `POST /orders` as API Gateway hands it to the function, with a bearer token.
fn order_request(token: &str, key: &str) -> Request {
    let body = format!(
        r#"{{"idempotency_key": "{key}", "items": [{{"product_id": "{PRODUCT}", "quantity": 1}}]}}"#
    );
    let mut context = ApiGatewayV2httpRequestContext::default();
    let mut http_description = ApiGatewayV2httpRequestContextHttpDescription::default();
    http_description.source_ip = Some("203.0.113.9".into());
    context.http = http_description;
    http::Request::builder()
        .method("POST")
        .uri("https://api.test/orders")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("x-trace-id", "bench")
        .body(Body::Text(body))
        .unwrap()
        .with_request_context(RequestContext::ApiGatewayV2(context))
}

fn handler_cpu(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let app = app();
    let token = mint_hs256(
        SECRET,
        "bench-user",
        None,
        Utc::now() + chrono::Duration::hours(6),
    );
    let place = |key: &str| {
        runtime
            .block_on(handle(
                &app,
                Endpoint::CreateOrder,
                order_request(&token, key),
            ))
            .status()
    };
    // What is timed must be the success path: a refusal would be cheaper.
    assert_eq!(place("replayed"), StatusCode::CREATED);
    assert_eq!(place("replayed"), StatusCode::OK);

    let mut group = c.benchmark_group(GROUP);
    group.bench_function(EMPTY_BLOCK_ON, |b| {
        b.iter(|| runtime.block_on(async { black_box(()) }));
    });
    let mut next_key = 0_u64;
    group.bench_function(CREATE_ORDER_NEW, |b| {
        b.iter_batched(
            || {
                next_key += 1;
                order_request(&token, &format!("new-{next_key}"))
            },
            |request| runtime.block_on(handle(&app, Endpoint::CreateOrder, request)),
            BatchSize::SmallInput,
        );
    });
    group.bench_function(CREATE_ORDER_REPLAY, |b| {
        b.iter_batched(
            || order_request(&token, "replayed"),
            |request| runtime.block_on(handle(&app, Endpoint::CreateOrder, request)),
            BatchSize::SmallInput,
        );
    });
    group.finish();

    // Every timed new order was placed, and the replays placed nothing.
    assert_eq!(place(&format!("new-{}", next_key + 1)), StatusCode::CREATED);
    assert_eq!(app.store.order_count() as u64, next_key + 2);
}

criterion_group! {
    name = benches;
    // Short windows: the figures settle well within them (a few µs per iteration, so hundreds of
    // thousands of iterations), and `make bench` has a time budget.
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    targets = handler_cpu
}
criterion_main!(benches);
