//! Every error code the synchronous API can produce, through the real stack, with stock checked
//! unchanged after each refusal.

use chrono::Utc;
use reqwest::StatusCode;
use serde_json::{Value, json};
use shared::api::auth::mint_hs256;

use crate::both_lock_modes;
use crate::support::{TestStack, order_body, spawn, spawn_with};

struct Case {
    name: &'static str,
    request: reqwest::RequestBuilder,
    status: StatusCode,
    code: &'static str,
}

fn post_orders(stack: &TestStack, token: Option<&str>) -> reqwest::RequestBuilder {
    let request = stack
        .client
        .post(format!("{}/orders", stack.stack.http_url()));
    match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

async fn rejected_requests_change_nothing(locks: bool) {
    let stack = spawn(locks).await;
    let product = stack.product("2.50", 10).await;
    let alice = stack.token("alice");
    let p = product.as_str();
    let lines = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| json!({"product_id": format!("{p}-{i}"), "quantity": 1}))
            .collect()
    };
    let with_quantity =
        |q: Value| json!({"idempotency_key": "k", "items": [{"product_id": p, "quantity": q}]});
    let expired = mint_hs256(
        stack.stack.config().auth.jwt_secret.as_deref().unwrap(),
        "alice",
        None,
        Utc::now() - chrono::Duration::minutes(5),
    );
    let foreign = mint_hs256(
        "some-other-secret",
        "alice",
        None,
        Utc::now() + chrono::Duration::minutes(5),
    );
    let placed = stack.order("bob", "bobs", &[(p, 1)]).await;
    let bobs_order = placed.body["data"]["id"].as_str().unwrap().to_owned();
    let stock_before = stack.stock(&product).await;

    let cases = vec![
        Case {
            name: "malformed JSON",
            request: post_orders(&stack, Some(&alice))
                .header("content-type", "application/json")
                .body("{\"items\": [".to_owned()),
            status: StatusCode::BAD_REQUEST,
            code: "MALFORMED_REQUEST",
        },
        Case {
            name: "wrong content type",
            request: post_orders(&stack, Some(&alice))
                .header("content-type", "text/plain")
                .body(order_body("k", &[(p, 1)]).to_string()),
            status: StatusCode::BAD_REQUEST,
            code: "MALFORMED_REQUEST",
        },
        Case {
            name: "body too large",
            request: post_orders(&stack, Some(&alice))
                .json(&json!({"idempotency_key": "k", "items": [], "pad": "x".repeat(100_000)})),
            status: StatusCode::BAD_REQUEST,
            code: "MALFORMED_REQUEST",
        },
        Case {
            name: "101 items",
            request: post_orders(&stack, Some(&alice))
                .json(&json!({"idempotency_key": "k", "items": lines(101)})),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "VALIDATION_ERROR",
        },
        Case {
            name: "99 items (over the 98-line transaction budget)",
            request: post_orders(&stack, Some(&alice))
                .json(&json!({"idempotency_key": "k", "items": lines(99)})),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "VALIDATION_ERROR",
        },
        Case {
            name: "quantity 0",
            request: post_orders(&stack, Some(&alice)).json(&with_quantity(json!(0))),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "VALIDATION_ERROR",
        },
        Case {
            name: "quantity -1",
            request: post_orders(&stack, Some(&alice)).json(&with_quantity(json!(-1))),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "VALIDATION_ERROR",
        },
        Case {
            name: "quantity 1.5",
            request: post_orders(&stack, Some(&alice)).json(&with_quantity(json!(1.5))),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "VALIDATION_ERROR",
        },
        Case {
            name: "quantity 10001",
            request: post_orders(&stack, Some(&alice)).json(&with_quantity(json!(10_001))),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "VALIDATION_ERROR",
        },
        Case {
            name: "duplicate product lines",
            request: post_orders(&stack, Some(&alice)).json(&order_body("k", &[(p, 1), (p, 2)])),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "VALIDATION_ERROR",
        },
        Case {
            name: "key of 256 chars",
            request: post_orders(&stack, Some(&alice))
                .json(&order_body(&"k".repeat(256), &[(p, 1)])),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "VALIDATION_ERROR",
        },
        Case {
            name: "unknown product",
            request: post_orders(&stack, Some(&alice))
                .json(&order_body("k", &[(p, 1), ("no-such-product", 1)])),
            status: StatusCode::NOT_FOUND,
            code: "NOT_FOUND",
        },
        Case {
            name: "more than the stock",
            request: post_orders(&stack, Some(&alice)).json(&order_body("k", &[(p, 11)])),
            status: StatusCode::CONFLICT,
            code: "INSUFFICIENT_STOCK",
        },
        Case {
            name: "no token",
            request: post_orders(&stack, None).json(&order_body("k", &[(p, 1)])),
            status: StatusCode::UNAUTHORIZED,
            code: "UNAUTHENTICATED",
        },
        Case {
            name: "expired token",
            request: post_orders(&stack, Some(&expired)).json(&order_body("k", &[(p, 1)])),
            status: StatusCode::UNAUTHORIZED,
            code: "UNAUTHENTICATED",
        },
        Case {
            name: "token signed with another secret",
            request: post_orders(&stack, Some(&foreign)).json(&order_body("k", &[(p, 1)])),
            status: StatusCode::UNAUTHORIZED,
            code: "UNAUTHENTICATED",
        },
        Case {
            name: "another user's order",
            request: stack
                .client
                .get(format!("{}/orders/{bobs_order}", stack.stack.http_url()))
                .bearer_auth(&alice),
            status: StatusCode::NOT_FOUND,
            code: "NOT_FOUND",
        },
        Case {
            name: "cancel another user's order",
            request: stack
                .client
                .post(format!(
                    "{}/orders/{bobs_order}/cancel",
                    stack.stack.http_url()
                ))
                .bearer_auth(&alice),
            status: StatusCode::NOT_FOUND,
            code: "NOT_FOUND",
        },
        Case {
            name: "non-admin product write",
            request: stack
                .client
                .put(format!("{}/products/{p}", stack.stack.http_url()))
                .bearer_auth(&alice)
                .json(&json!({"stock": 1000})),
            status: StatusCode::FORBIDDEN,
            code: "FORBIDDEN",
        },
        Case {
            name: "price with three decimals",
            request: stack
                .client
                .put(format!("{}/products/{p}", stack.stack.http_url()))
                .bearer_auth(stack.admin_token())
                .json(&json!({"price": "2.505"})),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "VALIDATION_ERROR",
        },
        Case {
            name: "negative stock",
            request: stack
                .client
                .put(format!("{}/products/{p}", stack.stack.http_url()))
                .bearer_auth(stack.admin_token())
                .json(&json!({"stock": -5})),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "VALIDATION_ERROR",
        },
        Case {
            name: "bad status filter",
            request: stack
                .client
                .get(format!("{}/orders?status=SHIPPED", stack.stack.http_url()))
                .bearer_auth(&alice),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "VALIDATION_ERROR",
        },
        Case {
            name: "forged cursor",
            request: stack
                .client
                .get(format!(
                    "{}/orders?cursor=not-a-cursor",
                    stack.stack.http_url()
                ))
                .bearer_auth(&alice),
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "VALIDATION_ERROR",
        },
    ];

    for case in cases {
        let reply = stack.reply(case.request).await;
        assert_eq!(
            (reply.status, reply.code()),
            (case.status, case.code),
            "{}: {}",
            case.name,
            reply.body
        );
        assert!(
            reply.body["message"].is_string(),
            "{}: error bodies carry a message",
            case.name
        );
        assert!(reply.headers.contains_key("x-trace-id"), "{}", case.name);
        assert_eq!(
            stack.stock(&product).await,
            stock_before,
            "{} changed stock",
            case.name
        );
    }
    assert!(
        stack.all_orders("alice").await.is_empty(),
        "no refused request left an order"
    );
}
both_lock_modes!(rejected_requests_change_nothing);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_answers_429_with_retry_after() {
    let stack = spawn_with(true, |o| o.config.rate_limit_per_minute = 3).await;
    let token = stack.token("alice");
    let mut statuses = vec![];
    for _ in 0..5 {
        statuses.push(stack.send("GET", "/orders", Some(&token), None).await);
    }
    let limited: Vec<_> = statuses
        .iter()
        .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    // Two windows can meet inside five calls at a minute boundary: at least one call is refused.
    assert!(
        !limited.is_empty() && limited.len() <= 2,
        "{:?}",
        statuses.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let retry_after: u64 = limited[0].headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=62).contains(&retry_after));
    assert_eq!(limited[0].code(), "RATE_LIMITED");
    assert_eq!(
        stack.list_orders("bob").await.status,
        StatusCode::OK,
        "other users are not affected"
    );
}

/// A lock item held by someone else (as a crashed or slow request leaves it) makes orders for
/// that product wait out the budget and answer 409 LOCK_CONFLICT; with `STOCK_LOCKS=off` the
/// same lock item is ignored.
async fn held_lock_item_gives_lock_conflict(locks: bool) {
    use aws_sdk_dynamodb::types::AttributeValue;
    let stack = spawn(locks).await;
    let product = stack.product("1.00", 5).await;
    let lease_until = (Utc::now() + chrono::Duration::minutes(5)).timestamp_millis();
    stack
        .dynamodb()
        .await
        .put_item()
        .table_name(&stack.stack.config().tables.locks)
        .item("product_id", AttributeValue::S(product.clone()))
        .item("token", AttributeValue::S("someone-else".into()))
        .item("lease_until_ms", AttributeValue::N(lease_until.to_string()))
        .item(
            "expires_at",
            AttributeValue::N((lease_until / 1000 + 60).to_string()),
        )
        .send()
        .await
        .unwrap();

    let reply = stack.order("alice", "k", &[(product.as_str(), 1)]).await;

    if locks {
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::CONFLICT, "LOCK_CONFLICT"),
            "{}",
            reply.body
        );
        assert_eq!(reply.body["details"]["product_id"], product.as_str());
        assert_eq!(stack.stock(&product).await, 5);
    } else {
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        assert_eq!(stack.stock(&product).await, 4);
    }
}
both_lock_modes!(held_lock_item_gives_lock_conflict);

/// When DynamoDB and SQS stop answering, health is 503 degraded and requests are 503
/// SERVICE_UNAVAILABLE rather than hanging or 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_backends_give_503() {
    let backend = spawn(true).await;
    let endpoint = backend.stack.aws_endpoint();
    let stack = spawn_with(true, |o| o.config.aws_endpoint_url = Some(endpoint)).await;
    let product = stack.product("1.00", 5).await;
    backend.stack.shutdown().await;

    let health = stack.send("GET", "/health", None, None).await;
    let read = stack
        .send("GET", &format!("/products/{product}"), None, None)
        .await;
    let order = stack.order("alice", "k", &[(product.as_str(), 1)]).await;

    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health.body["status"], "degraded");
    assert_eq!(
        (read.status, read.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE")
    );
    assert_eq!(
        (order.status, order.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE")
    );
}

/// Stored data that does not map to the domain is a fault of ours: 500 INTERNAL_ERROR with the
/// request's trace id in `details` (the cause goes to the log), not a 503 that invites retries;
/// and an order for that product changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_stored_data_gives_500_with_the_trace_id() {
    let stack = spawn(true).await;
    let product = stack.product("1.00", 5).await;
    let dynamodb = stack.dynamodb().await;
    dynamodb
        .update_item()
        .table_name(&stack.stack.config().tables.products)
        .key(
            "id",
            aws_sdk_dynamodb::types::AttributeValue::S(product.clone()),
        )
        .update_expression("SET price = :bad")
        .expression_attribute_values(
            ":bad",
            aws_sdk_dynamodb::types::AttributeValue::S("not money".into()),
        )
        .send()
        .await
        .unwrap();

    let request = stack
        .client
        .get(format!("{}/products/{product}", stack.stack.http_url()))
        .header("x-trace-id", "corrupt-read-1");
    let read = stack.reply(request).await;
    assert_eq!(
        (read.status, read.code()),
        (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR"),
        "{}",
        read.body
    );
    assert_eq!(read.body["details"]["trace_id"], "corrupt-read-1");
    assert!(
        !read.body["message"].as_str().unwrap().contains("price"),
        "the cause stays in the log: {}",
        read.body
    );

    let order = stack.order("alice", "k", &[(product.as_str(), 1)]).await;
    assert_eq!(
        (order.status, order.code()),
        (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR")
    );
    assert!(order.body["details"]["trace_id"].is_string());
    assert!(stack.all_orders("alice").await.is_empty());
}

/// Hostile bodies and headers: deeply nested JSON, invalid UTF-8, a NUL-laden body, a
/// header far over API Gateway's 10 KB: each refused with a 4xx, never a 5xx, nothing written,
/// and the stack serves the next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_and_headers_are_refused_and_change_nothing() {
    let stack = spawn(false).await;
    let product = stack.product("2.50", 10).await;
    let alice = stack.token("alice");
    let nested = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    let deep_object = format!(
        r#"{{"idempotency_key":"k","items":{}1{}}}"#,
        r#"{"a":"#.repeat(5_000),
        "}".repeat(5_000)
    );
    let mut invalid_utf8 = br#"{"idempotency_key":"k","items":[{"product_id":""#.to_vec();
    invalid_utf8.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28]);
    invalid_utf8.extend_from_slice(br#"","quantity":1}]}"#);
    let with_nul = format!(
        "{{\"idempotency_key\":\"k\u{0}\",\"items\":[{{\"product_id\":\"{product}\",\"quantity\":1}}]}}"
    );
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("20,000 nested arrays", nested.into_bytes()),
        ("5,000 nested objects", deep_object.into_bytes()),
        ("invalid UTF-8", invalid_utf8),
        ("a NUL in the key", with_nul.into_bytes()),
    ];
    for (name, body) in bodies {
        let reply = stack
            .reply(
                post_orders(&stack, Some(&alice))
                    .header("content-type", "application/json")
                    .body(body),
            )
            .await;
        println!("{name}: {} {}", reply.status, reply.code());
        assert!(reply.status.is_client_error(), "{name}: {}", reply.status);
        assert!(
            matches!(reply.code(), "MALFORMED_REQUEST" | "VALIDATION_ERROR"),
            "{name}: {}",
            reply.body
        );
    }
    let huge = format!("Bearer {}", "a".repeat(64 * 1024));
    let response = post_orders(&stack, None)
        .header("authorization", huge)
        .json(&order_body("k", &[(product.as_str(), 1)]))
        .send()
        .await;
    match response {
        Ok(response) => {
            println!("64 KiB header: {}", response.status());
            assert!(response.status().is_client_error(), "{}", response.status());
        }
        // Refusing the connection outright is an answer too, as long as the stack lives on.
        Err(error) => println!("64 KiB header: connection refused ({error})"),
    }
    assert_eq!(stack.stock(&product).await, 10, "nothing written");
    assert!(stack.all_orders("alice").await.is_empty());
    let fine = stack
        .order("alice", "after", &[(product.as_str(), 1)])
        .await;
    assert_eq!(fine.status, StatusCode::CREATED, "{}", fine.body);
}
