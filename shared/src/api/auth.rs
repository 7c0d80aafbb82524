//! Bearer-token authentication: HS256 with `JWT_SECRET` locally, RS256 with `JWT_PUBLIC_KEY` in AWS.

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::domain::UserId;

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's `sub`.
    pub user_id: UserId,
    /// `role: "admin"`: may manage products and read every order.
    pub is_admin: bool,
}

/// Claims this API reads; `exp` is required.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<String>,
}

/// Why a token or the key settings were refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("missing bearer token")]
    Missing,
    /// Expired, badly signed, malformed, or without a usable `sub`.
    #[error("invalid token")]
    Invalid(#[source] jsonwebtoken::errors::Error),
    /// `sub` is empty.
    #[error("token has no subject")]
    NoSubject,
    /// `JWT_PUBLIC_KEY` is not an RSA public key in PEM.
    #[error("JWT_PUBLIC_KEY is not a usable RSA public key")]
    BadPublicKey(#[source] jsonwebtoken::errors::Error),
}

/// Verifies tokens with the configured keys.
pub struct Authenticator {
    keys: Vec<(DecodingKey, Validation)>,
}

impl Authenticator {
    /// Keys from the configuration: always the HS256 secret, plus RS256 when a public key is set.
    pub fn from_config(config: &Config) -> Result<Self, AuthError> {
        let mut keys = vec![(
            DecodingKey::from_secret(config.jwt_secret.as_bytes()),
            strict(Algorithm::HS256),
        )];
        if let Some(pem) = &config.jwt_public_key {
            let key = DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(AuthError::BadPublicKey)?;
            keys.push((key, strict(Algorithm::RS256)));
        }
        Ok(Authenticator { keys })
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
        let algorithm = jsonwebtoken::decode_header(token)
            .map_err(AuthError::Invalid)?
            .alg;
        let mut last = None;
        for (key, validation) in self
            .keys
            .iter()
            .filter(|(_, v)| v.algorithms.contains(&algorithm))
        {
            match jsonwebtoken::decode::<Claims>(token, key, validation) {
                Ok(data) if data.claims.sub.trim().is_empty() => return Err(AuthError::NoSubject),
                Ok(data) => {
                    return Ok(Caller {
                        user_id: UserId::new(data.claims.sub),
                        is_admin: data.claims.role.as_deref() == Some("admin"),
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(AuthError::Invalid(last.unwrap_or_else(|| {
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm.into()
        })))
    }
}

fn strict(algorithm: Algorithm) -> Validation {
    let mut validation = Validation::new(algorithm);
    // No leeway: an expired token is expired; clocks in Lambda are NTP-synced.
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "sub"]);
    validation
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
        Authenticator::from_config(&Config::default()).unwrap()
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
            Utc::now() - Duration::seconds(5),
        );
        let foreign = mint_hs256(
            "another-secret",
            "alice",
            None,
            Utc::now() + Duration::hours(1),
        );
        assert!(matches!(
            authenticator().verify(&expired),
            Err(AuthError::Invalid(_))
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

    #[test]
    fn accepts_rs256_tokens_when_a_public_key_is_configured() {
        // Test-only key pair, generated with openssl for this test and used nowhere else.
        let private = include_str!("testdata/rs256-test-private.pem");
        let config = Config {
            jwt_public_key: Some(include_str!("testdata/rs256-test-public.pem").into()),
            ..Config::default()
        };
        let claims = Claims {
            sub: "carol".into(),
            exp: (Utc::now() + Duration::hours(1)).timestamp(),
            role: None,
        };
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::RS256),
            &claims,
            &EncodingKey::from_rsa_pem(private.as_bytes()).unwrap(),
        )
        .unwrap();

        let caller = Authenticator::from_config(&config)
            .unwrap()
            .verify(&token)
            .unwrap();

        assert_eq!(caller.user_id.as_str(), "carol");
        assert!(
            authenticator().verify(&token).is_err(),
            "without the public key RS256 is refused"
        );
        assert!(
            Authenticator::from_config(&Config {
                jwt_public_key: Some("not a pem".into()),
                ..Config::default()
            })
            .is_err()
        );
    }
}
