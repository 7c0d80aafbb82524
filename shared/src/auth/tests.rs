use super::*;
use chrono::Duration;

fn authenticator() -> Authenticator {
    Authenticator::from_settings(&AuthSettings::development()).unwrap()
}

#[test]
fn accepts_a_fresh_token_and_reads_the_role() {
    let token = mint_hs256(
        "local-dev-secret",
        "alice",
        Some("admin"),
        Utc::now() + Duration::hours(1),
    );
    let caller = authenticator()
        .verify_header(Some(&format!("Bearer {token}")))
        .unwrap();
    assert_eq!(caller.user_id.as_str(), "alice");
    assert!(caller.is_admin);
}

#[test]
fn refuses_expired_foreign_and_missing_tokens() {
    let expired = mint_hs256(
        "local-dev-secret",
        "alice",
        None,
        Utc::now() - Duration::seconds(5 + LEEWAY_SECONDS as i64),
    );
    let foreign = mint_hs256(
        "another-secret",
        "alice",
        None,
        Utc::now() + Duration::hours(1),
    );
    assert!(matches!(
        authenticator().verify(&expired),
        Err(AuthError::Expired)
    ));
    assert!(matches!(
        authenticator().verify(&foreign),
        Err(AuthError::Invalid(_))
    ));
    assert!(matches!(
        authenticator().verify("not.a.jwt"),
        Err(AuthError::Invalid(_))
    ));
    assert!(matches!(
        authenticator().verify_header(None),
        Err(AuthError::Missing)
    ));
    assert!(matches!(
        authenticator().verify_header(Some("Basic abc")),
        Err(AuthError::Missing)
    ));
}

/// Test-only key pair, generated with openssl for these tests and used nowhere else.
const TEST_PRIVATE_KEY: &str = include_str!("../api/testdata/rs256-test-private.pem");
const TEST_PUBLIC_KEY: &str = include_str!("../api/testdata/rs256-test-public.pem");

fn rs256_settings() -> AuthSettings {
    AuthSettings {
        jwt_public_key: Some(TEST_PUBLIC_KEY.into()),
        ..AuthSettings::default()
    }
}

fn rs256_token(claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        claims,
        &EncodingKey::from_rsa_pem(TEST_PRIVATE_KEY.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn in_an_hour() -> i64 {
    (Utc::now() + Duration::hours(1)).timestamp()
}

#[test]
fn accepts_rs256_tokens_when_a_public_key_is_configured() {
    let token = rs256_token(&serde_json::json!({ "sub": "carol", "exp": in_an_hour() }));

    let caller = Authenticator::from_settings(&rs256_settings())
        .unwrap()
        .verify(&token)
        .unwrap();

    assert_eq!(caller.user_id.as_str(), "carol");
    assert!(
        authenticator().verify(&token).is_err(),
        "without the public key RS256 is refused"
    );
    assert!(
        Authenticator::from_settings(&AuthSettings {
            jwt_public_key: Some("not a pem".into()),
            ..AuthSettings::default()
        })
        .is_err()
    );
}

#[test]
fn with_a_public_key_configured_an_hs256_token_is_refused_even_with_the_secret_set() {
    let hs256 = mint_hs256(
        crate::config::DEVELOPMENT_JWT_SECRET,
        "mallory",
        Some("admin"),
        Utc::now() + Duration::hours(1),
    );
    for settings in [
        rs256_settings(),
        AuthSettings {
            jwt_secret: Some(crate::config::DEVELOPMENT_JWT_SECRET.into()),
            ..rs256_settings()
        },
    ] {
        let verified = Authenticator::from_settings(&settings)
            .unwrap()
            .verify(&hs256);
        assert!(
            matches!(verified, Err(AuthError::Invalid(_))),
            "{verified:?}"
        );
    }
}

#[test]
fn without_any_key_there_is_no_authenticator() {
    assert!(matches!(
        Authenticator::from_settings(&AuthSettings::default()),
        Err(AuthError::NoKey)
    ));
}

#[test]
fn issuer_and_audience_are_required_when_configured_and_ignored_otherwise() {
    let settings = AuthSettings {
        jwt_issuer: Some("https://issuer.example".into()),
        jwt_audience: Some("orders-api".into()),
        ..rs256_settings()
    };
    let checked = Authenticator::from_settings(&settings).unwrap();
    let exp = in_an_hour();
    let good = rs256_token(&serde_json::json!({
        "sub": "carol", "exp": exp, "iss": "https://issuer.example", "aud": "orders-api"
    }));
    let wrong_issuer = rs256_token(&serde_json::json!({
        "sub": "carol", "exp": exp, "iss": "https://other.example", "aud": "orders-api"
    }));
    let wrong_audience = rs256_token(&serde_json::json!({
        "sub": "carol", "exp": exp, "iss": "https://issuer.example", "aud": "another-api"
    }));
    let neither = rs256_token(&serde_json::json!({ "sub": "carol", "exp": exp }));

    assert!(checked.verify(&good).is_ok());
    assert!(checked.verify(&wrong_issuer).is_err());
    assert!(checked.verify(&wrong_audience).is_err());
    assert!(checked.verify(&neither).is_err());
    let unchecked = Authenticator::from_settings(&rs256_settings()).unwrap();
    assert!(
        unchecked.verify(&good).is_ok(),
        "unconfigured claims are not checked"
    );
    assert!(unchecked.verify(&neither).is_ok());
}

#[test]
fn a_function_that_does_not_authenticate_refuses_every_token() {
    let token = mint_hs256(
        crate::config::DEVELOPMENT_JWT_SECRET,
        "alice",
        None,
        Utc::now() + Duration::hours(1),
    );
    assert!(
        Authenticator::refusing_every_token()
            .verify(&token)
            .is_err()
    );
}

fn hs256(claims: serde_json::Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(b"local-dev-secret"),
    )
    .unwrap()
}

#[test]
fn nbf_in_the_future_is_refused_and_fractional_dates_are_accepted() {
    let now = Utc::now().timestamp() as f64;
    let future = hs256(serde_json::json!({"sub": "a", "exp": now + 600.5, "nbf": now + 60.25}));
    assert!(matches!(
        authenticator().verify(&future),
        Err(AuthError::NotYetValid)
    ));
    let fractional = hs256(serde_json::json!({"sub": "a", "exp": now + 600.5, "nbf": now - 1.5}));
    assert_eq!(
        authenticator()
            .verify(&fractional)
            .unwrap()
            .user_id
            .as_str(),
        "a"
    );
    let expired = hs256(serde_json::json!({"sub": "a", "exp": now - LEEWAY_SECONDS - 0.5}));
    assert!(matches!(
        authenticator().verify(&expired),
        Err(AuthError::Expired)
    ));
    let no_exp = hs256(serde_json::json!({"sub": "a"}));
    assert!(matches!(
        authenticator().verify(&no_exp),
        Err(AuthError::BadClaim(_))
    ));
}

#[test]
fn a_wrongly_typed_claim_is_named() {
    let exp = Utc::now().timestamp() + 600;
    let role = hs256(serde_json::json!({"sub": "a", "exp": exp, "role": ["admin"]}));
    let refused = authenticator().verify(&role).unwrap_err();
    assert_eq!(refused.client_reason(), "the token's role is not a string");
    let sub = hs256(serde_json::json!({"sub": 7, "exp": exp}));
    assert_eq!(
        authenticator().verify(&sub).unwrap_err().client_reason(),
        "the token's sub is not a string"
    );
    let long = hs256(serde_json::json!({"sub": "u".repeat(129), "exp": exp}));
    assert_eq!(
        authenticator().verify(&long).unwrap_err().client_reason(),
        "the token's sub is not 1 to 128 printable characters"
    );
    let exp_text = hs256(serde_json::json!({"sub": "a", "exp": "tomorrow"}));
    assert_eq!(
        authenticator()
            .verify(&exp_text)
            .unwrap_err()
            .client_reason(),
        "the token's exp is not a number"
    );
}

#[test]
fn an_unsigned_token_or_one_without_a_subject_is_refused() {
    use base64::Engine;
    let b64 = |value: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
    };
    let exp = Utc::now().timestamp() + 600;
    let claims = serde_json::json!({"sub": "mallory", "exp": exp, "role": "admin"});
    // `alg: none` with no signature, and with the signature of a real token pasted on.
    let unsigned = format!(
        "{}.{}.",
        b64(serde_json::json!({"alg": "none"})),
        b64(claims.clone())
    );
    assert!(authenticator().verify(&unsigned).is_err(), "alg none");
    let real = hs256(serde_json::json!({"sub": "alice", "exp": exp}));
    let signature = real.rsplit('.').next().unwrap();
    let pasted = format!(
        "{}.{}.{signature}",
        b64(serde_json::json!({"alg": "none", "typ": "JWT"})),
        b64(claims.clone())
    );
    assert!(authenticator().verify(&pasted).is_err(), "alg none, signed");
    // An HS256 header over claims the signature does not cover.
    let swapped = format!(
        "{}.{}.{signature}",
        real.split('.').next().unwrap(),
        b64(claims)
    );
    assert!(matches!(
        authenticator().verify(&swapped),
        Err(AuthError::Invalid(_))
    ));
    let no_sub = hs256(serde_json::json!({"exp": exp}));
    assert!(matches!(
        authenticator().verify(&no_sub),
        Err(AuthError::NoSubject)
    ));
    let empty_sub = hs256(serde_json::json!({"sub": "", "exp": exp}));
    assert!(matches!(
        authenticator().verify(&empty_sub),
        Err(AuthError::NoSubject)
    ));
}

/// A fixed instant, so the tests stand exactly at the edges of the window.
const NOW: f64 = 1_900_000_000.0;

#[test]
fn exp_is_honoured_for_the_leeway_after_it_and_not_a_moment_longer() {
    let at = |exp: f64| {
        authenticator().verify_at(&hs256(serde_json::json!({"sub": "a", "exp": exp})), NOW)
    };

    assert!(at(NOW + 1.0).is_ok(), "not expired");
    assert!(at(NOW - 1.0).is_ok(), "just past, inside the leeway");
    assert!(
        at(NOW - LEEWAY_SECONDS + 0.5).is_ok(),
        "at the edge of the leeway"
    );
    assert!(matches!(at(NOW - LEEWAY_SECONDS), Err(AuthError::Expired)));
    assert!(matches!(
        at(NOW - LEEWAY_SECONDS - 1.0),
        Err(AuthError::Expired)
    ));
    assert!(matches!(at(NOW - 3600.0), Err(AuthError::Expired)));
}

#[test]
fn nbf_ahead_is_refused_beyond_the_leeway_and_accepted_within_it() {
    let at = |nbf: f64| {
        authenticator().verify_at(
            &hs256(serde_json::json!({"sub": "a", "exp": NOW + 600.0, "nbf": nbf})),
            NOW,
        )
    };

    assert!(at(NOW).is_ok());
    assert!(
        at(NOW + LEEWAY_SECONDS - 1.0).is_ok(),
        "clock skew inside the leeway"
    );
    assert!(
        at(NOW + LEEWAY_SECONDS).is_ok(),
        "at the edge of the leeway"
    );
    assert!(matches!(
        at(NOW + LEEWAY_SECONDS + 1.0),
        Err(AuthError::NotYetValid)
    ));
    assert!(matches!(at(NOW + 86_400.0), Err(AuthError::NotYetValid)));
}

#[test]
fn an_hs256_token_keyed_with_the_public_key_is_refused_when_rs256_is_configured() {
    // The classic confusion: the attacker knows the public key and signs HS256 with its PEM
    // bytes (and with its bare base64 body), hoping the verifier uses it as an HMAC secret.
    let claims = serde_json::json!({"sub": "mallory", "exp": in_an_hour(), "role": "admin"});
    let body: String = TEST_PUBLIC_KEY
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    for secret in [
        TEST_PUBLIC_KEY.as_bytes(),
        TEST_PUBLIC_KEY.trim().as_bytes(),
        body.as_bytes(),
    ] {
        let forged = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap();
        let verified = Authenticator::from_settings(&rs256_settings())
            .unwrap()
            .verify(&forged);
        assert!(
            matches!(&verified, Err(AuthError::Invalid(e)) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::InvalidAlgorithm)),
            "{verified:?}"
        );
    }
}

#[test]
fn an_rs256_token_is_refused_when_only_hs256_is_configured() {
    let token = rs256_token(&serde_json::json!({"sub": "carol", "exp": in_an_hour()}));

    let verified = authenticator().verify(&token);

    assert!(
        matches!(&verified, Err(AuthError::Invalid(_))),
        "{verified:?}"
    );
    assert_eq!(
        verified.unwrap_err().client_reason(),
        "the token's algorithm is not accepted"
    );
}

#[test]
fn a_wrong_issuer_or_audience_is_refused_when_configured_and_ignored_otherwise() {
    let exp = in_an_hour();
    let token = |iss: &str, aud: &str| {
        hs256(serde_json::json!({"sub": "a", "exp": exp, "iss": iss, "aud": aud}))
    };
    let checked = Authenticator::from_settings(&AuthSettings {
        jwt_issuer: Some("https://issuer.example".into()),
        jwt_audience: Some("orders-api".into()),
        ..AuthSettings::development()
    })
    .unwrap();

    assert!(
        checked
            .verify(&token("https://issuer.example", "orders-api"))
            .is_ok()
    );
    let reason = |t: String| checked.verify(&t).unwrap_err().client_reason();
    assert_eq!(
        reason(token("https://issuer.example.evil", "orders-api")),
        "the token's issuer is not accepted"
    );
    assert_eq!(
        reason(token("https://issuer.example", "orders-api-staging")),
        "the token's audience is not accepted"
    );
    assert_eq!(
        reason(hs256(
            serde_json::json!({"sub": "a", "exp": exp, "aud": "orders-api"})
        )),
        "the token lacks a required claim (iss or aud)"
    );
    // Unconfigured, neither claim is looked at, whatever it says.
    assert!(
        authenticator()
            .verify(&token("https://anyone.example", "anything"))
            .is_ok()
    );
}

/// A secret store that always answers the same two versions.
struct TwoVersions(crate::ports::SecretVersions);

impl crate::ports::SecretSource for TwoVersions {
    fn versions<'a>(&'a self, _id: &'a str) -> crate::ports::SecretFuture<'a> {
        let versions = self.0.clone();
        Box::pin(async move { Ok(versions) })
    }
}

#[tokio::test]
async fn a_rotating_secret_accepts_the_previous_version_until_the_overlap_ends() {
    use crate::ports::{SecretVersion, SecretVersions};
    use crate::secrets::Rotation;
    let rotated_at = DateTime::<Utc>::from_timestamp(NOW as i64, 0).unwrap();
    let source = Arc::new(TwoVersions(SecretVersions {
        current: SecretVersion {
            value: "new-secret".into(),
            created: rotated_at,
        },
        previous: Some(SecretVersion {
            value: "old-secret".into(),
            created: rotated_at - Duration::days(30),
        }),
    }));
    let rotation = Rotation {
        refresh_every: std::time::Duration::from_secs(300),
        overlap: std::time::Duration::from_secs(600),
    };
    let secret = RotatingSecret::load(source, "jwt", rotation, rotated_at)
        .await
        .unwrap();
    let authenticator =
        Authenticator::rotating(&AuthSettings::default(), Arc::new(secret)).unwrap();
    let signed = |secret: &str| {
        let expires_at = rotated_at + Duration::hours(2);
        mint_hs256(secret, "alice", None, expires_at)
    };

    for at in [NOW, NOW + 599.0] {
        assert!(authenticator.verify_at(&signed("new-secret"), at).is_ok());
        assert!(
            authenticator.verify_at(&signed("old-secret"), at).is_ok(),
            "the previous secret inside the overlap, at {at}"
        );
    }
    assert!(
        authenticator
            .verify_at(&signed("new-secret"), NOW + 600.0)
            .is_ok()
    );
    let late = authenticator.verify_at(&signed("old-secret"), NOW + 600.0);
    assert!(
        matches!(&late, Err(AuthError::Invalid(e)) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::InvalidSignature)),
        "the previous secret after the overlap: {late:?}"
    );
    assert!(matches!(
        authenticator.verify_at(&signed("another-secret"), NOW),
        Err(AuthError::Invalid(_))
    ));
}

#[test]
fn a_public_key_wins_over_a_rotating_secret() {
    let secret = Arc::new(RotatingSecret::fixed(crate::config::DEVELOPMENT_JWT_SECRET));
    let authenticator = Authenticator::rotating(&rs256_settings(), secret).unwrap();
    let hs256 = mint_hs256(
        crate::config::DEVELOPMENT_JWT_SECRET,
        "mallory",
        None,
        Utc::now() + Duration::hours(1),
    );
    assert!(matches!(
        authenticator.verify(&hs256),
        Err(AuthError::Invalid(_))
    ));
}
