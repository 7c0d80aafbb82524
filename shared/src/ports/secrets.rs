//! Where a rotating secret's versions come from: Secrets Manager in AWS and on the local stack, a
//! fake in unit tests. The cache and the overlap rule over it live in `crate::secrets`.

use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};

/// One version of a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretVersion {
    /// The `SecretString`.
    pub value: String,
    /// When this version was created (`CreatedDate`): the same on every instance, so every
    /// instance agrees on when an overlap window that starts with it ends.
    pub created: DateTime<Utc>,
}

/// A secret's current version and the one before it (Secrets Manager's `AWSCURRENT` and
/// `AWSPREVIOUS` staging labels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretVersions {
    /// `AWSCURRENT`.
    pub current: SecretVersion,
    /// `AWSPREVIOUS`, absent before the first rotation.
    pub previous: Option<SecretVersion>,
}

/// Why a secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The secret, or its current version, does not exist.
    #[error("secret {0:?} not found")]
    NotFound(String),
    /// The version holds no `SecretString` (a binary secret).
    #[error("secret {0:?} has no SecretString")]
    NotAString(String),
    /// The service could not be reached or refused the call (throttling, permissions, network).
    #[error("secret {id:?} could not be read")]
    Unavailable {
        /// The secret.
        id: String,
        /// What went wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The future of [`SecretSource::versions`]: boxed, so a function holds its source as a trait
/// object whatever adapter built it.
pub type SecretFuture<'a> =
    Pin<Box<dyn Future<Output = Result<SecretVersions, SecretError>> + Send + 'a>>;

/// Reads the versions of one secret.
pub trait SecretSource: Send + Sync {
    /// The current and previous versions of the secret `id` (a name or an ARN).
    fn versions<'a>(&'a self, id: &'a str) -> SecretFuture<'a>;
}
