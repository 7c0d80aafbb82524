//! Bearer tokens at the edges (RFC 7519 NumericDates, `nbf`, claim types) and the 401's
//! `WWW-Authenticate` challenge (RFC 6750), through the real stack.

use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestStack, spawn, spawn_with};

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

    // 30 s of clock skew is allowed on exp and nbf (shared::auth::LEEWAY_SECONDS).
    let just_past = signed(json!({"sub": "alice", "exp": now - 5.0}));
    let reply = list_orders(&stack, Some(&just_past)).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "inside the leeway: {}",
        reply.body
    );

    let expired = signed(json!({"sub": "alice", "exp": now - 61.0}));
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

const PUBLIC_KEY: &str = include_str!("../../shared/src/api/testdata/rs256-test-public.pem");
const PRIVATE_KEY: &str = include_str!("../../shared/src/api/testdata/rs256-test-private.pem");

/// A stack verifying RS256 with a public key, issuer and audience configured (the HS256 secret
/// it also has is ignored): every confusion and every wrong claim is 401 `UNAUTHENTICATED` and
/// reads nothing; the one good token is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_rs256_issuer_and_audience_configured_every_other_token_is_401() {
    let stack = spawn_with(true, |options| {
        options.config.auth.jwt_public_key = Some(PUBLIC_KEY.to_owned());
        options.config.auth.jwt_issuer = Some("https://issuer.example".to_owned());
        options.config.auth.jwt_audience = Some("orders-api".to_owned());
    })
    .await;
    let now = Utc::now().timestamp() as f64;
    let rs256 = |claims: Value| {
        jsonwebtoken::encode(
            &Header::new(Algorithm::RS256),
            &claims,
            &EncodingKey::from_rsa_pem(PRIVATE_KEY.as_bytes()).unwrap(),
        )
        .unwrap()
    };
    let claims =
        |iss: &str, aud: &str| json!({"sub": "alice", "exp": now + 600.0, "iss": iss, "aud": aud});
    let good = rs256(claims("https://issuer.example", "orders-api"));
    let hs256_with_public_key = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims("https://issuer.example", "orders-api"),
        &EncodingKey::from_secret(PUBLIC_KEY.as_bytes()),
    )
    .unwrap();

    let cases = [
        (
            "HS256 keyed with the public key's PEM",
            hs256_with_public_key,
            "algorithm",
        ),
        (
            "HS256 with the stack's own secret",
            signed(claims("https://issuer.example", "orders-api")),
            "algorithm",
        ),
        (
            "wrong issuer",
            rs256(claims("https://evil.example", "orders-api")),
            "issuer",
        ),
        (
            "wrong audience",
            rs256(claims("https://issuer.example", "another-api")),
            "audience",
        ),
        (
            "no issuer or audience",
            rs256(json!({"sub": "alice", "exp": now + 600.0})),
            "required claim",
        ),
        (
            "nbf beyond the leeway",
            rs256(
                json!({"sub": "alice", "exp": now + 600.0, "nbf": now + 120.0, "iss": "https://issuer.example", "aud": "orders-api"}),
            ),
            "nbf",
        ),
        (
            "exp beyond the leeway",
            rs256(
                json!({"sub": "alice", "exp": now - 120.0, "iss": "https://issuer.example", "aud": "orders-api"}),
            ),
            "expired",
        ),
    ];
    for (case, token, reason) in &cases {
        let reply = list_orders(&stack, Some(token)).await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
            "{case}: {}",
            reply.body
        );
        assert!(
            reply.body["message"].as_str().unwrap().contains(reason),
            "{case}: {}",
            reply.body
        );
        assert_eq!(
            challenge(&reply),
            "Bearer error=\"invalid_token\"",
            "{case}"
        );
    }
    let reply = list_orders(&stack, Some(&good)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}
