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
mod tests;
