//! Retried and duplicated requests: one order, one decrement.

use std::collections::HashSet;

use reqwest::StatusCode;

use crate::both_lock_modes;
use crate::support::{count_status, spawn};

/// 50 concurrent requests with one key: one 201, the rest replay it with 200, stock drops once.
async fn fifty_concurrent_requests_with_one_key(locks: bool) {
    let stack = spawn(locks).await;
    let product = stack.product("10.00", 100).await;

    let replies = stack
        .orders_at_once(50, |_| "alice".to_owned(), "retry-storm", &[(&product, 3)])
        .await;

    let created = count_status(&replies, StatusCode::CREATED);
    let replayed = count_status(&replies, StatusCode::OK);
    let others: Vec<_> = replies
        .iter()
        .filter(|r| !matches!(r.status, StatusCode::CREATED | StatusCode::OK))
        .map(|r| (r.status, r.code().to_owned()))
        .collect();
    println!("locks={locks}: 201={created} 200={replayed} other={others:?}");
    assert_eq!(created, 1);
    assert_eq!(
        replayed, 49,
        "every duplicate replays the winner: {others:?}"
    );
    let ids: HashSet<_> = replies
        .iter()
        .map(|r| r.body["data"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "every reply names the same order");
    assert_eq!(stack.all_orders("alice").await.len(), 1);
    assert_eq!(stack.stock(&product).await, 97);
}
both_lock_modes!(fifty_concurrent_requests_with_one_key);

/// A sequential retry replays; the same key with another basket is refused; the header carries a key too.
async fn replay_and_reuse(locks: bool) {
    let stack = spawn(locks).await;
    let product = stack.product("1.00", 10).await;

    let first = stack.order("alice", "k1", &[(product.as_str(), 1)]).await;
    let again = stack.order("alice", "k1", &[(product.as_str(), 1)]).await;
    let reused = stack.order("alice", "k1", &[(product.as_str(), 2)]).await;
    let header = stack
        .reply(
            stack
                .client
                .post(format!("{}/orders", stack.stack.http_url()))
                .bearer_auth(stack.token("alice"))
                .header("Idempotency-Key", "from-header")
                .json(&serde_json::json!({"items": [{"product_id": product, "quantity": 1}]})),
        )
        .await;

    assert_eq!(
        (first.status, again.status),
        (StatusCode::CREATED, StatusCode::OK)
    );
    assert_eq!(first.body["data"]["id"], again.body["data"]["id"]);
    assert_eq!(
        (reused.status, reused.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "IDEMPOTENCY_KEY_REUSED")
    );
    assert_eq!(
        (
            header.status,
            header.body["data"]["idempotency_key"].as_str()
        ),
        (StatusCode::CREATED, Some("from-header"))
    );
    assert_eq!(stack.stock(&product).await, 8);
}
both_lock_modes!(replay_and_reuse);
