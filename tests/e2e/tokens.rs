//! Bearer tokens at the edges (RFC 7519 NumericDates, `nbf`, claim types) and the 401's
//! `WWW-Authenticate` challenge (RFC 6750), through the real stack.

use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestStack, spawn};

fn signed(claims: Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(shared::config::DEVELOPMENT_JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

async fn list_orders(stack: &TestStack, token: Option<&str>) -> crate::support::Reply {
    stack.send("GET", "/orders", token, None).await
}

fn challenge(reply: &crate::support::Reply) -> &str {
    reply
        .headers
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_edges_are_answered_precisely() {
    let stack = spawn(true).await;
    let now = Utc::now().timestamp() as f64;

    let missing = list_orders(&stack, None).await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED")
    );
    assert_eq!(challenge(&missing), "Bearer");

    let not_yet = signed(json!({"sub": "alice", "exp": now + 600.0, "nbf": now + 120.0}));
    let reply = list_orders(&stack, Some(&not_yet)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    assert_eq!(challenge(&reply), "Bearer error=\"invalid_token\"");
    assert!(
        reply.body["message"].as_str().unwrap().contains("nbf"),
        "{}",
        reply.body
    );

    let fractional = signed(json!({"sub": "alice", "exp": now + 600.75, "nbf": now - 0.5}));
    let reply = list_orders(&stack, Some(&fractional)).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "a fractional NumericDate is valid: {}",
        reply.body
    );

    let role = signed(json!({"sub": "alice", "exp": now + 600.0, "role": {"name": "admin"}}));
    let reply = list_orders(&stack, Some(&role)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(
        reply.body["message"]
            .as_str()
            .unwrap()
            .contains("role is not a string"),
        "{}",
        reply.body
    );

    let expired = signed(json!({"sub": "alice", "exp": now - 1.0}));
    let reply = list_orders(&stack, Some(&expired)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(
        reply.body["message"].as_str().unwrap().contains("expired"),
        "{}",
        reply.body
    );

    let forged = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "alice", "exp": now + 600.0}),
        &EncodingKey::from_secret(b"someone-else"),
    )
    .unwrap();
    let reply = list_orders(&stack, Some(&forged)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(
        reply.body["message"]
            .as_str()
            .unwrap()
            .contains("badly signed"),
        "{}",
        reply.body
    );
    assert_eq!(challenge(&reply), "Bearer error=\"invalid_token\"");
}
