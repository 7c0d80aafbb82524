//! Every token refusal of `crate::auth` is a 401 `UNAUTHENTICATED` at the API, with the
//! reason in the message and nothing read for the caller; a token inside the clock-skew leeway
//! is served.

use super::*;
use crate::auth::LEEWAY_SECONDS;
use crate::config::AuthSettings;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

const PUBLIC_KEY: &str = include_str!("../testdata/rs256-test-public.pem");
const PRIVATE_KEY: &str = include_str!("../testdata/rs256-test-private.pem");

fn signed(algorithm: Algorithm, key: &EncodingKey, claims: Value) -> String {
    jsonwebtoken::encode(&Header::new(algorithm), &claims, key).unwrap()
}

fn hs256(claims: Value) -> String {
    signed(
        Algorithm::HS256,
        &EncodingKey::from_secret(b"local-dev-secret"),
        claims,
    )
}

async fn list_orders(app: &TestApp, token: &str) -> (StatusCode, Value) {
    let (status, body, _) = call(Endpoint::ListOrders)
        .header("authorization", format!("Bearer {token}"))
        .send(app)
        .await;
    (status, body)
}

fn now() -> f64 {
    Utc::now().timestamp() as f64
}

#[tokio::test]
async fn tokens_outside_the_time_window_are_401_and_inside_the_leeway_are_served() {
    let app = app();
    let cases = [
        (
            "nbf beyond the leeway",
            json!({"sub": "alice", "exp": now() + 600.0, "nbf": now() + LEEWAY_SECONDS + 60.0}),
            "nbf",
        ),
        (
            "exp beyond the leeway",
            json!({"sub": "alice", "exp": now() - LEEWAY_SECONDS - 60.0}),
            "expired",
        ),
    ];
    for (case, claims, reason) in cases {
        let (status, body) = list_orders(&app, &hs256(claims)).await;
        assert_eq!(
            (status, body["error_code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("UNAUTHENTICATED")),
            "{case}: {body}"
        );
        assert!(
            body["message"].as_str().unwrap().contains(reason),
            "{case}: {body}"
        );
    }

    for (case, claims) in [
        (
            "exp just past",
            json!({"sub": "alice", "exp": now() - LEEWAY_SECONDS / 2.0}),
        ),
        (
            "nbf just ahead",
            json!({"sub": "alice", "exp": now() + 600.0, "nbf": now() + LEEWAY_SECONDS / 2.0}),
        ),
    ] {
        let (status, body) = list_orders(&app, &hs256(claims)).await;
        assert_eq!(status, StatusCode::OK, "{case}: {body}");
    }
}

#[tokio::test]
async fn algorithm_confusion_either_way_is_401() {
    let rs256_app = app_with(|config| {
        config.auth = AuthSettings {
            jwt_public_key: Some(PUBLIC_KEY.into()),
            ..AuthSettings::default()
        };
    });
    let claims = json!({"sub": "mallory", "exp": now() + 600.0, "role": "admin"});
    let hs_with_public_key = signed(
        Algorithm::HS256,
        &EncodingKey::from_secret(PUBLIC_KEY.as_bytes()),
        claims.clone(),
    );
    let rs256 = signed(
        Algorithm::RS256,
        &EncodingKey::from_rsa_pem(PRIVATE_KEY.as_bytes()).unwrap(),
        claims,
    );

    for (case, app, token) in [
        (
            "HS256 keyed with the public key",
            &rs256_app,
            &hs_with_public_key,
        ),
        ("RS256 where only HS256 is configured", &app(), &rs256),
    ] {
        let (status, body) = list_orders(app, token).await;
        assert_eq!(
            (
                status,
                body["error_code"].as_str(),
                body["message"].as_str()
            ),
            (
                StatusCode::UNAUTHORIZED,
                Some("UNAUTHENTICATED"),
                Some("authentication required: the token's algorithm is not accepted")
            ),
            "{case}: {body}"
        );
    }
    let (status, body) = list_orders(&rs256_app, &rs256).await;
    assert_eq!(status, StatusCode::OK, "the RS256 token itself: {body}");
}

#[tokio::test]
async fn a_wrong_issuer_or_audience_is_401_when_configured_and_ignored_otherwise() {
    let checked = app_with(|config| {
        config.auth.jwt_issuer = Some("https://issuer.example".into());
        config.auth.jwt_audience = Some("orders-api".into());
    });
    let token = |iss: &str, aud: &str| {
        hs256(json!({"sub": "alice", "exp": now() + 600.0, "iss": iss, "aud": aud}))
    };

    for (case, token) in [
        ("wrong issuer", token("https://evil.example", "orders-api")),
        (
            "wrong audience",
            token("https://issuer.example", "other-api"),
        ),
        (
            "no issuer",
            hs256(json!({"sub": "alice", "exp": now() + 600.0, "aud": "orders-api"})),
        ),
    ] {
        let (status, body) = list_orders(&checked, &token).await;
        assert_eq!(
            (status, body["error_code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("UNAUTHENTICATED")),
            "{case}: {body}"
        );
    }
    let (status, _) = list_orders(&checked, &token("https://issuer.example", "orders-api")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = list_orders(&app(), &token("https://evil.example", "other-api")).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "unconfigured, iss and aud are not checked"
    );
}
