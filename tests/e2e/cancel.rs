//! Cancelling: PENDING only, stock back exactly once however many cancels race.

use futures::future::join_all;
use reqwest::StatusCode;

use crate::both_lock_modes;
use crate::support::spawn;

/// 10 concurrent cancels of one order: all answer 200 CANCELLED, stock restored once.
async fn ten_concurrent_cancels_restore_stock_once(locks: bool) {
    let stack = spawn(locks).await;
    let product = stack.product("5.00", 20).await;
    let placed = stack
        .order("alice", "to-cancel", &[(product.as_str(), 4)])
        .await;
    let id = placed.body["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(stack.stock(&product).await, 16);

    let token = stack.token("alice");
    let path = format!("/orders/{id}/cancel");
    let replies = join_all((0..10).map(|_| stack.send("POST", &path, Some(&token), None))).await;

    for reply in &replies {
        assert_eq!(
            (reply.status, reply.body["data"]["status"].as_str()),
            (StatusCode::OK, Some("CANCELLED")),
            "{}",
            reply.body
        );
    }
    assert_eq!(stack.stock(&product).await, 20, "restored exactly once");
    let again = stack
        .send("POST", &format!("/orders/{id}/cancel"), Some(&token), None)
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(stack.stock(&product).await, 20);
}
both_lock_modes!(ten_concurrent_cancels_restore_stock_once);

/// A PROCESSING order (as the payment consumer leaves it) is not cancellable and keeps its stock.
async fn processing_order_is_not_cancellable(locks: bool) {
    let stack = spawn(locks).await;
    let product = stack.product("5.00", 20).await;
    let placed = stack.order("alice", "k", &[(product.as_str(), 2)]).await;
    let id = placed.body["data"]["id"].as_str().unwrap().to_owned();
    stack
        .dynamodb()
        .await
        .update_item()
        .table_name(&stack.stack.config().tables.orders)
        .key("id", aws_sdk_dynamodb::types::AttributeValue::S(id.clone()))
        .update_expression("SET #s = :p")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(
            ":p",
            aws_sdk_dynamodb::types::AttributeValue::S("PROCESSING".into()),
        )
        .send()
        .await
        .unwrap();

    let reply = stack
        .send(
            "POST",
            &format!("/orders/{id}/cancel"),
            Some(&stack.token("alice")),
            None,
        )
        .await;

    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "ORDER_NOT_CANCELLABLE")
    );
    assert_eq!(stack.stock(&product).await, 18);
}
both_lock_modes!(processing_order_is_not_cancellable);

/// With `CANCEL_WINDOW_SECONDS` set, the payment consumer sees a new order only after the window
/// (SQS `DelaySeconds`), so a buyer's cancel inside it succeeds; an order left alone is paid after
/// the window, and the cancelled one's delayed message changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_inside_the_window_succeeds_and_the_rest_is_paid_after_it() {
    let stack = crate::support::spawn_pipeline(true, |options| {
        options.config.cancel_window = std::time::Duration::from_secs(2);
        options.config.payments.success_rate = 1.0;
    })
    .await;
    let product = stack.product("5.00", 20).await;
    let token = stack.token("alice");
    let cancelled = stack
        .order("alice", "window-1", &[(product.as_str(), 3)])
        .await;
    let kept = stack
        .order("alice", "window-2", &[(product.as_str(), 2)])
        .await;
    let (cancelled, kept) = (
        cancelled.body["data"]["id"].as_str().unwrap().to_owned(),
        kept.body["data"]["id"].as_str().unwrap().to_owned(),
    );

    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let reply = stack
        .send(
            "POST",
            &format!("/orders/{cancelled}/cancel"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (reply.status, reply.body["data"]["status"].as_str()),
        (StatusCode::OK, Some("CANCELLED")),
        "{}",
        reply.body
    );
    let status = |id: String| {
        let token = token.clone();
        let stack = &stack;
        async move {
            let reply = stack
                .send("GET", &format!("/orders/{id}"), Some(&token), None)
                .await;
            reply.body["data"]["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }
    };
    assert_eq!(
        status(kept.clone()).await,
        "PENDING",
        "still inside the window"
    );

    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    while status(kept.clone()).await != "PAID" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the kept order was never paid"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // The cancelled order's message has been delivered by now too; it stays cancelled.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(status(cancelled).await, "CANCELLED");
    assert_eq!(stack.stock(&product).await, 18);
}
