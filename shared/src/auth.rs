//! Bearer tokens: verification of JWTs (HS256 or RS256, issuer and audience when configured) into a
//! [`Caller`], shared by the HTTP API and the WebSocket `$connect` route. The HS256 secret may
//! rotate ([`RotatingSecret`]): every accepted version is tried, the current one first.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::AuthSettings;
use crate::domain::UserId;
use crate::secrets::RotatingSecret;

pub use crate::domain::Caller;

/// Claims this API signs (development tokens, tests).
#[derive(Debug, Serialize)]
struct Claims {
    sub: String,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<String>,
}

/// Claims this API reads, checked here rather than by `jsonwebtoken` so that a NumericDate may be
/// fractional (RFC 7519 section 2) and a wrongly typed claim is named.
#[derive(Debug, Deserialize)]
struct ReadClaims {
    sub: Option<serde_json::Value>,
    exp: Option<serde_json::Value>,
    nbf: Option<serde_json::Value>,
    role: Option<serde_json::Value>,
}

impl ReadClaims {
    /// The caller the claims name, if they are usable at `now` (epoch seconds).
    fn caller(self, now: f64) -> Result<Caller, AuthError> {
        let sub = match self.sub {
            Some(serde_json::Value::String(sub)) if !sub.trim().is_empty() => sub,
            Some(serde_json::Value::String(_)) | None => return Err(AuthError::NoSubject),
            Some(_) => return Err(AuthError::BadClaim("the token's sub is not a string")),
        };
        let exp = numeric_date(self.exp, "the token's exp is not a number")?
            .ok_or(AuthError::BadClaim("the token has no exp"))?;
        // The same allowance at both ends of the window: the issuer's clock is not ours.
        if exp <= now - LEEWAY_SECONDS {
            return Err(AuthError::Expired);
        }
        if let Some(nbf) = numeric_date(self.nbf, "the token's nbf is not a number")? {
            if nbf > now + LEEWAY_SECONDS {
                return Err(AuthError::NotYetValid);
            }
        }
        let is_admin = match self.role {
            None | Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::String(role)) => role == "admin",
            Some(_) => return Err(AuthError::BadClaim("the token's role is not a string")),
        };
        // The user id keys DynamoDB items (orders, idempotency records, rate counters): it follows
        // the rule of every id, so no token can make a key DynamoDB refuses.
        let user_id = UserId::parse(&sub).map_err(|_| {
            AuthError::BadClaim("the token's sub is not 1 to 128 printable characters")
        })?;
        Ok(Caller { user_id, is_admin })
    }
}

/// Clock skew allowed on `exp` and `nbf`, in seconds: a token is still accepted until 30 s after
/// its `exp`, and from 30 s before its `nbf`. Lambda's clock is NTP-synced, but the issuer's (an
/// identity provider, another team's service) need not be, and a token refused one second after
/// it was minted elsewhere is an outage; 30 s is the least of the usual 30-60 s and keeps an
/// expired token's extra life short.
pub const LEEWAY_SECONDS: f64 = 30.0;

/// A NumericDate claim: seconds since the epoch, integer or fractional.
fn numeric_date(
    value: Option<serde_json::Value>,
    wrong_type: &'static str,
) -> Result<Option<f64>, AuthError> {
    match value {
        None => Ok(None),
        Some(serde_json::Value::Number(n)) => {
            n.as_f64().map(Some).ok_or(AuthError::BadClaim(wrong_type))
        }
        Some(_) => Err(AuthError::BadClaim(wrong_type)),
    }
}

/// Why a token or the key settings were refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("missing bearer token")]
    Missing,
    /// Badly signed, malformed, another algorithm, or the wrong issuer or audience.
    #[error("invalid token")]
    Invalid(#[source] jsonwebtoken::errors::Error),
    /// `exp` has passed.
    #[error("token has expired")]
    Expired,
    /// `nbf` is still ahead.
    #[error("token is not valid yet")]
    NotYetValid,
    /// A claim has the wrong type.
    #[error("{0}")]
    BadClaim(&'static str),
    /// `sub` is missing or empty.
    #[error("token has no subject")]
    NoSubject,
    /// None of `JWT_SECRET_ID`, `JWT_SECRET` and `JWT_PUBLIC_KEY` is set: there is no default key.
    #[error(
        "none of JWT_SECRET_ID, JWT_SECRET and JWT_PUBLIC_KEY is set; a function that verifies \
         tokens needs one"
    )]
    NoKey,
    /// `JWT_PUBLIC_KEY` is not an RSA public key in PEM.
    #[error("JWT_PUBLIC_KEY is not a usable RSA public key")]
    BadPublicKey(#[source] jsonwebtoken::errors::Error),
}

/// Verifies tokens with the configured key.
pub struct Authenticator {
    keys: Keys,
}

/// The keys tokens are checked against.
enum Keys {
    /// Keys that never change: RS256, a literal HS256 secret, or none.
    Fixed(Vec<(DecodingKey, Validation)>),
    /// HS256 with a secret read from Secrets Manager.
    Rotating(Box<RotatingKeys>),
}

/// The HS256 keys of a rotating secret, built once per version rather than per request.
struct RotatingKeys {
    secret: Arc<RotatingSecret>,
    validation: Validation,
    /// The accepted values the keys were last built for, and those keys in the same order.
    built: RwLock<Arc<BuiltKeys>>,
}

/// Keys for one list of accepted values.
#[derive(Default)]
struct BuiltKeys {
    values: Vec<String>,
    keys: Vec<DecodingKey>,
}

impl RotatingKeys {
    /// The keys for the values accepted at `now`, rebuilt only when that list changed (a
    /// rotation picked up, an overlap window ended).
    fn at(&self, now: DateTime<Utc>) -> Arc<BuiltKeys> {
        let accepted = self.secret.accepted(now);
        let built = Arc::clone(&self.built.read().unwrap_or_else(|p| p.into_inner()));
        if built.values == accepted {
            return built;
        }
        let keys = accepted
            .iter()
            .map(|value| DecodingKey::from_secret(value.as_bytes()))
            .collect();
        let fresh = Arc::new(BuiltKeys {
            values: accepted,
            keys,
        });
        *self.built.write().unwrap_or_else(|p| p.into_inner()) = Arc::clone(&fresh);
        fresh
    }
}

impl Authenticator {
    /// The key from the settings: RS256 when `JWT_PUBLIC_KEY` is set (and then HS256 tokens are
    /// refused, so a token signed with a shared secret can never pass for one signed with the
    /// private key), else HS256 with `JWT_SECRET`; neither is an error, never a default.
    /// `JWT_ISSUER` and `JWT_AUDIENCE`, when set, become required claims.
    pub fn from_settings(settings: &AuthSettings) -> Result<Self, AuthError> {
        Self::with_hs256_secret(settings, None)
    }

    /// As [`Authenticator::from_settings`], with the HS256 secret read from Secrets Manager
    /// (`JWT_SECRET_ID`) instead of `JWT_SECRET`: tokens signed with any version `secret`
    /// accepts pass. `JWT_PUBLIC_KEY`, when set, still wins.
    pub fn rotating(
        settings: &AuthSettings,
        secret: Arc<RotatingSecret>,
    ) -> Result<Self, AuthError> {
        Self::with_hs256_secret(settings, Some(secret))
    }

    fn with_hs256_secret(
        settings: &AuthSettings,
        rotating: Option<Arc<RotatingSecret>>,
    ) -> Result<Self, AuthError> {
        if let (None, Some(secret)) = (&settings.jwt_public_key, rotating) {
            return Ok(Authenticator {
                keys: Keys::Rotating(Box::new(RotatingKeys {
                    secret,
                    validation: validation(settings, Algorithm::HS256),
                    built: RwLock::default(),
                })),
            });
        }
        let (key, algorithm) = match (&settings.jwt_public_key, &settings.jwt_secret) {
            (Some(pem), secret) => {
                if secret.is_some() {
                    tracing::warn!(
                        "JWT_PUBLIC_KEY and JWT_SECRET are both set: only RS256 tokens are accepted"
                    );
                }
                let key =
                    DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(AuthError::BadPublicKey)?;
                (key, Algorithm::RS256)
            }
            (None, Some(secret)) => (
                DecodingKey::from_secret(secret.as_bytes()),
                Algorithm::HS256,
            ),
            (None, None) => return Err(AuthError::NoKey),
        };
        Ok(Authenticator {
            keys: Keys::Fixed(vec![(key, validation(settings, algorithm))]),
        })
    }

    /// Reads the rotating secret again when its refresh interval has passed (a no-op for fixed
    /// keys): called before a verification, so a rotation is picked up within the interval.
    pub async fn refresh_if_due(&self) {
        if let Keys::Rotating(rotating) = &self.keys {
            rotating.secret.refresh_if_due(Utc::now()).await;
        }
    }

    /// An authenticator for a function that does not authenticate (`GET /health`, the WebSocket
    /// routes other than `$connect`): every token is refused, and nothing is read to build it.
    pub fn refusing_every_token() -> Self {
        Authenticator {
            keys: Keys::Fixed(Vec::new()),
        }
    }

    /// Verifies an `Authorization` header value.
    pub fn verify_header(&self, header: Option<&str>) -> Result<Caller, AuthError> {
        let token = header
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Missing)?;
        self.verify(token)
    }

    /// Verifies a bare token (also used by the WebSocket `?token=`).
    pub fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        self.verify_at(token, Utc::now().timestamp_micros() as f64 / 1e6)
    }

    /// [`Authenticator::verify`] at `now` (epoch seconds), so tests can stand at a window's edge.
    pub(crate) fn verify_at(&self, token: &str, now: f64) -> Result<Caller, AuthError> {
        let algorithm = jsonwebtoken::decode_header(token)
            .map_err(AuthError::Invalid)?
            .alg;
        let mut last = None;
        let mut try_key = |key: &DecodingKey, validation: &Validation| {
            if !validation.algorithms.contains(&algorithm) {
                return None;
            }
            match jsonwebtoken::decode::<ReadClaims>(token, key, validation) {
                Ok(data) => Some(data.claims),
                Err(e) => {
                    last = Some(e);
                    None
                }
            }
        };
        let claims = match &self.keys {
            Keys::Fixed(keys) => keys.iter().find_map(|(key, v)| try_key(key, v)),
            Keys::Rotating(rotating) => {
                let at = DateTime::<Utc>::from_timestamp_micros((now * 1e6) as i64)
                    .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
                let built = rotating.at(at);
                // The current version first: it signs nearly every token after a rotation.
                built
                    .keys
                    .iter()
                    .find_map(|key| try_key(key, &rotating.validation))
            }
        };
        match claims {
            Some(claims) => claims.caller(now),
            None => Err(AuthError::Invalid(last.unwrap_or_else(|| {
                jsonwebtoken::errors::ErrorKind::InvalidAlgorithm.into()
            }))),
        }
    }
}

/// The signature, the algorithm, and issuer and audience when configured; `exp`, `nbf`, `sub` and
/// `role` are checked by [`ReadClaims::caller`].
fn validation(settings: &AuthSettings, algorithm: Algorithm) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.leeway = 0;
    validation.validate_exp = false;
    validation.validate_nbf = false;
    let mut required = vec![];
    if let Some(issuer) = &settings.jwt_issuer {
        validation.set_issuer(&[issuer]);
        required.push("iss");
    }
    match &settings.jwt_audience {
        Some(audience) => {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        None => validation.validate_aud = false,
    }
    validation.set_required_spec_claims(&required);
    validation
}

impl AuthError {
    /// What the client is told about a refused token (401), in one line.
    pub fn client_reason(&self) -> &'static str {
        use jsonwebtoken::errors::ErrorKind;
        match self {
            AuthError::Missing => "missing bearer token",
            AuthError::Expired => "the token has expired",
            AuthError::NotYetValid => "the token is not valid yet (nbf is in the future)",
            AuthError::BadClaim(what) => what,
            AuthError::NoSubject => "the token has no subject (sub)",
            AuthError::Invalid(e) => match e.kind() {
                ErrorKind::InvalidSignature => "the token is badly signed",
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    "the token's algorithm is not accepted"
                }
                ErrorKind::InvalidIssuer => "the token's issuer is not accepted",
                ErrorKind::InvalidAudience => "the token's audience is not accepted",
                ErrorKind::MissingRequiredClaim(_) => {
                    "the token lacks a required claim (iss or aud)"
                }
                _ => "the token is malformed",
            },
            AuthError::NoKey | AuthError::BadPublicKey(_) => "tokens cannot be verified",
        }
    }
}

/// Signs an HS256 token: the development token `make run` prints, and the tokens tests use.
pub fn mint_hs256(
    secret: &str,
    sub: &str,
    role: Option<&str>,
    expires_at: DateTime<Utc>,
) -> String {
    let claims = Claims {
        sub: sub.to_owned(),
        exp: expires_at.timestamp(),
        role: role.map(str::to_owned),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("HS256 signing with an in-memory secret cannot fail")
}

#[cfg(test)]
mod tests {
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
    const TEST_PRIVATE_KEY: &str = include_str!("api/testdata/rs256-test-private.pem");
    const TEST_PUBLIC_KEY: &str = include_str!("api/testdata/rs256-test-public.pem");

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
        let fractional =
            hs256(serde_json::json!({"sub": "a", "exp": now + 600.5, "nbf": now - 1.5}));
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
}
