//! Input abuse through the real stack that no other module covers: a pagination cursor carried
//! from one user's listing to another's, as handed out and as forged by hand.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{Reply, TestStack, spawn};

async fn list(stack: &TestStack, user: &str, query: &str) -> Reply {
    stack
        .send(
            "GET",
            &format!("/orders?{query}"),
            Some(&stack.token(user)),
            None,
        )
        .await
}

fn ids(reply: &Reply) -> Vec<String> {
    reply.body["data"]
        .as_array()
        .map(|orders| {
            orders
                .iter()
                .map(|o| o["id"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn forge(key: &Value) -> String {
    URL_SAFE_NO_PAD.encode(key.to_string())
}

/// Alice pages through her orders with `limit=1`; Bob presents her `next_cursor`, and cursors
/// forged from it, on his own `GET /orders`. A cursor is checked against its owner before any
/// query: Alice's is 422 `VALIDATION_ERROR` on `cursor` for Bob, and a forgery that passes the
/// check (her key under his user id) only ever pages through Bob's own partition of the index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_from_another_user_never_shows_their_orders() {
    let stack = spawn(true).await;
    let product = stack.product("1.00", 100).await;
    let mut alices = vec![];
    for key in ["a1", "a2", "a3"] {
        let placed = stack
            .order_retrying("alice", key, &[(product.as_str(), 1)])
            .await;
        assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.body);
        alices.push(placed.body["data"]["id"].as_str().unwrap().to_owned());
    }
    let bobs = stack
        .order_retrying("bob", "b1", &[(product.as_str(), 1)])
        .await;
    assert_eq!(bobs.status, StatusCode::CREATED, "{}", bobs.body);
    let bobs = bobs.body["data"]["id"].as_str().unwrap().to_owned();

    let first = list(&stack, "alice", "limit=1").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let second = list(&stack, "alice", &format!("limit=1&cursor={cursor}")).await;
    assert_eq!(
        second.status,
        StatusCode::OK,
        "her own cursor works for her"
    );
    assert_eq!(ids(&second).len(), 1);

    // Alice's cursor, as handed out, in Bob's hands.
    for query in [
        format!("cursor={cursor}"),
        format!("limit=1&cursor={cursor}"),
    ] {
        let reply = list(&stack, "bob", &query).await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR"),
            "{query}: {}",
            reply.body
        );
        assert!(reply.body["details"]["cursor"].is_array(), "{}", reply.body);
        assert!(ids(&reply).is_empty(), "{}", reply.body);
    }

    let key: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&cursor).unwrap()).unwrap();
    assert_eq!(
        key["user_id"]["S"], "alice",
        "the cursor is her index key: {key}"
    );
    // Forged: her key with Bob as owner (passes the owner check); her key with one attribute
    // dropped or an extra one; her order id alone, as a table key.
    let mut as_bob = key.clone();
    as_bob["user_id"]["S"] = "bob".into();
    let reply = list(&stack, "bob", &format!("cursor={}", forge(&as_bob))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    for order in reply.body["data"].as_array().unwrap() {
        assert_eq!(order["user_id"], "bob", "{}", reply.body);
        assert!(!alices.contains(&order["id"].as_str().unwrap().to_owned()));
    }
    let mut no_owner = key.clone();
    no_owner.as_object_mut().unwrap().remove("user_id");
    let mut extra = key.clone();
    extra["status"] = serde_json::json!({"S": "PAID"});
    let table_key = serde_json::json!({"id": key["id"].clone()});
    let mut empty_owner = key.clone();
    empty_owner["user_id"]["S"] = "".into();
    for (case, forged) in [
        ("her key, no owner", no_owner),
        ("her key, an extra attribute", extra),
        ("her order id as a table key", table_key),
        ("her key, an empty owner", empty_owner),
    ] {
        let reply = list(&stack, "bob", &format!("cursor={}", forge(&forged))).await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR"),
            "{case}: {}",
            reply.body
        );
    }

    // Bob's own listing is unaffected, and shows only his order.
    let own = list(&stack, "bob", "limit=50").await;
    assert_eq!(ids(&own), vec![bobs]);
}
