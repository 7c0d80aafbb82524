//! [`SecretSource`] over Secrets Manager: the `AWSCURRENT` and `AWSPREVIOUS` versions of a secret,
//! read with two concurrent `GetSecretValue` calls (one round trip of latency).

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use chrono::{DateTime, Utc};

use crate::ports::{SecretError, SecretFuture, SecretSource, SecretVersion, SecretVersions};

/// Secrets Manager's staging label of the version in use.
pub const CURRENT_STAGE: &str = "AWSCURRENT";
/// Secrets Manager's staging label of the version before it.
pub const PREVIOUS_STAGE: &str = "AWSPREVIOUS";

/// Secrets through the Secrets Manager API (or the local stack's emulator of it).
#[derive(Debug, Clone)]
pub struct SecretsManagerSource {
    client: Client,
}

impl SecretsManagerSource {
    /// Reads through `client`.
    pub fn new(client: Client) -> Self {
        SecretsManagerSource { client }
    }

    /// The version of `id` staged `stage`; `None` when there is none (`ResourceNotFoundException`).
    async fn stage(&self, id: &str, stage: &str) -> Result<Option<SecretVersion>, SecretError> {
        let answer = self
            .client
            .get_secret_value()
            .secret_id(id)
            .version_stage(stage)
            .send()
            .await;
        let output = match answer {
            Ok(output) => output,
            Err(error) => {
                return match error.as_service_error() {
                    Some(GetSecretValueError::ResourceNotFoundException(_)) => Ok(None),
                    _ => Err(SecretError::Unavailable {
                        id: id.to_owned(),
                        source: Box::new(error),
                    }),
                };
            }
        };
        let value = output
            .secret_string
            .ok_or_else(|| SecretError::NotAString(id.to_owned()))?;
        let created = output
            .created_date
            .and_then(|date| DateTime::<Utc>::from_timestamp(date.secs(), date.subsec_nanos()))
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        Ok(Some(SecretVersion { value, created }))
    }
}

impl SecretSource for SecretsManagerSource {
    fn versions<'a>(&'a self, id: &'a str) -> SecretFuture<'a> {
        Box::pin(async move {
            let (current, previous) = tokio::join!(
                self.stage(id, CURRENT_STAGE),
                self.stage(id, PREVIOUS_STAGE)
            );
            let current = current?.ok_or_else(|| SecretError::NotFound(id.to_owned()))?;
            Ok(SecretVersions {
                current,
                previous: previous?,
            })
        })
    }
}
