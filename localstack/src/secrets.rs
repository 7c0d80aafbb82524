//! The development secrets in the local Secrets Manager, so the functions read their webhook and
//! JWT secrets as they do in AWS (by name, refreshed, the previous version accepted for the
//! overlap window) and `token --secret-id` finds the JWT secret.

use anyhow::Context;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::operation::create_secret::CreateSecretError;
use shared::Config;
use shared::config::{DEVELOPMENT_JWT_SECRET, DEVELOPMENT_WEBHOOK_SECRET};

/// The local name of the payment provider's signing secret (the template's `WebhookSecretName`
/// in the deploy guide's example).
pub const LOCAL_WEBHOOK_SECRET_NAME: &str = "order-processing/webhook-secret";

/// The local name of the HS256 token secret (the template's `JwtSecretName` in the deploy guide's
/// example; `token --secret-id`).
pub const LOCAL_JWT_SECRET_NAME: &str = "order-processing/jwt-secret";

/// Creates the development secrets in the embedded store and points the functions at them by
/// name: `WEBHOOK_SECRET_ID` (or [`LOCAL_WEBHOOK_SECRET_NAME`]) is created with the literal
/// `WEBHOOK_SECRET` value, and `JWT_SECRET_ID` (or [`LOCAL_JWT_SECRET_NAME`]) with the literal
/// `JWT_SECRET` (each the development value when none is set), when they do not exist yet.
/// `config` keeps both (the literal is the value first seeded, which the console signs its
/// development tokens with); the functions get them without the literals, and read the secrets by
/// name. With `JWT_PUBLIC_KEY` the JWT secret is left out.
pub(crate) async fn seed(config: &mut Config) -> anyhow::Result<()> {
    let client = Client::new(&shared::aws::sdk_config(config).await);
    if config.auth.jwt_public_key.is_none() {
        let name = config
            .auth
            .jwt_secret_id
            .get_or_insert_with(|| LOCAL_JWT_SECRET_NAME.to_owned())
            .clone();
        let jwt = config
            .auth
            .jwt_secret
            .get_or_insert_with(|| DEVELOPMENT_JWT_SECRET.to_owned());
        create_if_missing(&client, &name, jwt).await?;
    }
    let name = config
        .webhook_secret_id
        .get_or_insert_with(|| LOCAL_WEBHOOK_SECRET_NAME.to_owned())
        .clone();
    // The development secret when none was given: this store exists only on this machine.
    let value = config
        .webhook_secret
        .get_or_insert_with(|| DEVELOPMENT_WEBHOOK_SECRET.to_owned());
    create_if_missing(&client, &name, value).await?;
    Ok(())
}

async fn create_if_missing(client: &Client, name: &str, value: &str) -> anyhow::Result<()> {
    match client
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(error)
            if matches!(
                error.as_service_error(),
                Some(CreateSecretError::ResourceExistsException(_))
            ) =>
        {
            Ok(())
        }
        Err(error) => Err(error).with_context(|| format!("creating the local secret {name}")),
    }
}
