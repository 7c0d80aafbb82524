//! The one module that connects to AWS: the SDK configuration and exactly the clients a function's
//! footprint uses, built once per cold start. The one network call here is a function's read of
//! the secrets it verifies with (Secrets Manager, `WEBHOOK_SECRET_ID`, `JWT_SECRET_ID`), which a
//! cold start cannot do without. The containers
//! ([`App`](crate::app::App), [`Worker`](crate::worker::Worker), [`WsApp`](crate::ws::WsApp)) take
//! what they need from [`AwsPorts`].

use std::sync::Arc;

use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::adapters::apigw::ApiGatewayPusher;
use crate::adapters::dynamodb::DynamoStore;
use crate::adapters::secretsmanager::SecretsManagerSource;
use crate::adapters::sqs::SqsOrderQueue;
use crate::auth::{AuthError, Authenticator};
use crate::config::{AuthSettings, Config, ConfigError, SecretSetting};
use crate::function::Footprint;
use crate::notify::ConnectionNotifier;
use crate::ports::{Clock, SecretError, SecretSource, SystemClock};
use crate::secrets::{RotatingSecret, Rotation};

/// Order events pushed through API Gateway's management API to connections stored in DynamoDB.
pub type AwsNotifier = ConnectionNotifier<DynamoStore, ApiGatewayPusher>;

/// Why an instance could not start.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// A setting is missing or unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The JWT settings are unusable.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The container needs a table client, and the function's footprint names no table.
    #[error("{0} needs the tables, and this function's footprint names none")]
    NoTables(&'static str),
    /// A secret the function needs could not be read at cold start (there is no cached value to
    /// fall back on).
    #[error("reading {setting} at cold start: {source}")]
    Secret {
        /// The setting that names the secret.
        setting: &'static str,
        /// Why it could not be read.
        #[source]
        source: SecretError,
    },
}

/// The clients one function uses, each `None` where its footprint leaves it out.
pub struct AwsPorts {
    /// Token verification: one that refuses every token for a function that does not authenticate.
    pub auth: Authenticator,
    /// The tables, when the footprint names any.
    pub store: Option<DynamoStore>,
    /// The order queue (with its dead-letter queue for the reconciler).
    pub queue: Option<SqsOrderQueue>,
    /// Order events to the owner's WebSocket connections.
    pub notifier: Option<AwsNotifier>,
    /// The payment provider's signing secret, for a function that verifies webhooks.
    pub webhook_secret: Option<Arc<RotatingSecret>>,
}

impl AwsPorts {
    /// The tables, for a container that cannot run without them (`who` names it in the error).
    pub fn require_store(&self, who: &'static str) -> Result<DynamoStore, BootError> {
        self.store.clone().ok_or(BootError::NoTables(who))
    }
}

/// Builds the clients `footprint` uses (the local gateway passes [`Footprint::everything`]); a
/// function that uses no AWS client does not even load the SDK configuration.
pub async fn connect(config: &Config, footprint: &Footprint) -> Result<AwsPorts, BootError> {
    let jwt_setting = match footprint.authenticates {
        true => config.jwt_secret_setting()?,
        false => None,
    };
    let webhook_setting = footprint
        .verifies_webhooks
        .then(|| config.webhook_secret_setting())
        .transpose()?;
    let reads_secrets = [jwt_setting, webhook_setting]
        .iter()
        .any(|setting| matches!(setting, Some(SecretSetting::SecretId(_))));
    let sdk = match !footprint.tables.is_empty() || footprint.order_queue || reads_secrets {
        true => Some(sdk_config(config).await),
        // A function that uses no AWS client does not even load the SDK configuration.
        false => None,
    };
    let source: Option<Arc<dyn SecretSource>> = sdk.as_ref().filter(|_| reads_secrets).map(|sdk| {
        Arc::new(SecretsManagerSource::new(
            aws_sdk_secretsmanager::Client::new(sdk),
        )) as Arc<dyn SecretSource>
    });
    let jwt_secret = load_secret(
        source.as_ref(),
        jwt_setting,
        "JWT_SECRET_ID",
        config.jwt_secret_rotation(),
    )
    .await?;
    let auth = authenticator(config, footprint, jwt_secret)?;
    let webhook_secret = load_secret(
        source.as_ref(),
        webhook_setting,
        "WEBHOOK_SECRET_ID",
        config.secret_rotation,
    )
    .await?;
    let Some(sdk) = sdk else {
        return Ok(AwsPorts {
            auth,
            store: None,
            queue: None,
            notifier: None,
            webhook_secret,
        });
    };
    let store = (!footprint.tables.is_empty())
        .then(|| DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.tables.clone()));
    let queue = order_queue(&sdk, config, footprint)?;
    let notifier = store
        .as_ref()
        .filter(|_| footprint.pushes)
        .map(|store| notifier(&sdk, store, config));
    Ok(AwsPorts {
        auth,
        store,
        queue,
        notifier,
        webhook_secret,
    })
}

/// The secret `setting` names: a literal that never rotates, or the versions read from `source`
/// at cold start (`name` is the setting, for the error). `source` is there whenever a setting
/// names a secret.
async fn load_secret(
    source: Option<&Arc<dyn SecretSource>>,
    setting: Option<SecretSetting<'_>>,
    name: &'static str,
    rotation: Rotation,
) -> Result<Option<Arc<RotatingSecret>>, BootError> {
    let secret = match (setting, source) {
        (None, _) => return Ok(None),
        (Some(SecretSetting::Literal(value)), _) => RotatingSecret::fixed(value),
        (Some(SecretSetting::SecretId(id)), Some(source)) => {
            RotatingSecret::load(Arc::clone(source), id, rotation, SystemClock.now())
                .await
                .map_err(|source| BootError::Secret {
                    setting: name,
                    source,
                })?
        }
        (Some(SecretSetting::SecretId(_)), None) => {
            unreachable!("connect builds a secret source for every setting that names a secret")
        }
    };
    Ok(Some(Arc::new(secret)))
}

/// SDK configuration for `config`: the default AWS chain, or the local endpoint with dummy
/// credentials when `AWS_ENDPOINT_URL` is set and no credentials were given.
pub async fn sdk_config(config: &Config) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(config.aws_region.clone()));
    if let Some(endpoint) = &config.aws_endpoint_url {
        loader = loader.endpoint_url(endpoint);
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            loader = loader.credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "local",
                "local",
                None,
                None,
                "local-stack",
            ));
        }
    }
    loader.load().await
}

/// The token verifier of a function: none for one that does not authenticate; otherwise the
/// configured key (the HS256 secret from `JWT_SECRET_ID` when it names one), and never the
/// published development secret outside an emulator, whether given literally or stored in
/// Secrets Manager.
fn authenticator(
    config: &Config,
    footprint: &Footprint,
    jwt_secret: Option<Arc<RotatingSecret>>,
) -> Result<Authenticator, BootError> {
    if !footprint.authenticates {
        return Ok(Authenticator::refusing_every_token());
    }
    let endpoint = config.aws_endpoint_url.as_deref();
    config.auth.refuse_development_secret(endpoint)?;
    let Some(secret) = jwt_secret.filter(|_| config.auth.jwt_secret_id.is_some()) else {
        return Ok(Authenticator::from_settings(&config.auth)?);
    };
    for value in secret.accepted(SystemClock.now()) {
        AuthSettings {
            jwt_secret: Some(value),
            ..AuthSettings::default()
        }
        .refuse_development_secret(endpoint)
        .map_err(|error| ConfigError {
            name: "JWT_SECRET_ID",
            ..error
        })?;
    }
    Ok(Authenticator::rotating(&config.auth, secret)?)
}

/// The order queue at `ORDER_QUEUE_URL`, for a footprint that uses it.
fn order_queue(
    sdk: &SdkConfig,
    config: &Config,
    footprint: &Footprint,
) -> Result<Option<SqsOrderQueue>, BootError> {
    if !footprint.order_queue {
        return Ok(None);
    }
    let url = config.require_order_queue_url()?;
    let queue = SqsOrderQueue::new(aws_sdk_sqs::Client::new(sdk), url.to_owned());
    if !footprint.reconciles {
        return Ok(Some(queue));
    }
    let dead_letters = config.require_order_dlq_url()?;
    Ok(Some(queue.with_dead_letters(dead_letters.to_owned())))
}

/// The notifier every function that changes an order uses; without `WS_MANAGEMENT_ENDPOINT` it
/// only logs (a deployment without the WebSocket API).
fn notifier(sdk: &SdkConfig, store: &DynamoStore, config: &Config) -> AwsNotifier {
    let pusher = config
        .ws_management_endpoint
        .as_deref()
        .map(|endpoint| ApiGatewayPusher::new(sdk, endpoint));
    ConnectionNotifier::new(store.clone(), pusher)
}
