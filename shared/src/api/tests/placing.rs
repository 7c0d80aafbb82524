//! `POST /orders`: placement, idempotency, refusals, locks and the enqueue after commit.

use super::*;

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
async fn without_a_client_trace_id_the_x_ray_root_is_the_trace_id_and_the_header_goes_to_the_queue()
{
    let app = app();
    let header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

    let (status, body, response) = call(Endpoint::CreateOrder)
        .user("alice")
        .header("x-amzn-trace-id", header.into())
        .json(order_body("k1", &[("cheap", 1)]))
        .send(&app)
        .await;

    assert_eq!(status, StatusCode::CREATED, "{body}");
    let root = "1-5759e988-bd862e3fe1be46a994272793";
    assert_eq!(response.headers()["x-trace-id"], root);
    assert_eq!(app.queue.sent()[0].trace_id, root);
    assert_eq!(app.queue.trace_headers(), vec![Some(header.to_owned())]);
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
        // Unknown members are refused, in the body, in a line and in a hold (docs/decisions.md).
        (
            call(Endpoint::CreateOrder).user("a").json(json!({"idempotency_key": "k", "items": [{"product_id": "cheap", "quantity": 1}], "coupon": "FREE"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_ERROR",
        ),
        (
            call(Endpoint::CreateOrder).user("a").json(json!({"idempotency_key": "k", "items": [{"product_id": "cheap", "quantity": 1, "unit_price": "0.01"}]})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_ERROR",
        ),
        (
            call(Endpoint::CreateHold).user("a").json(json!({"product_id": "cheap", "quantity": 1, "ttl": 99999})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_ERROR",
        ),
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
async fn a_held_product_lock_gives_lock_conflict_and_no_order() {
    let app = app_with(|config| config.locks.enabled = true);
    use crate::ports::StockLocks;
    assert!(
        app.store
            .try_lock(
                &crate::domain::StockShard::first(ProductId::new("dear")),
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
                &crate::domain::StockShard::first(ProductId::new("dear")),
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
