//! One typed `Config` read from the environment at cold start; a bad value fails the start, never a
//! request. A Lambda reads only the settings its [`Footprint`] names (see [`Config::for_footprint`]),
//! so `template.yaml` gives each function exactly those; the local stack reads them all.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::time::Duration;

use crate::function::{Footprint, Table};
use crate::secrets::Rotation;

/// The HS256 secret the local stack signs its development tokens with. It is published (README,
/// sample events), so a function refuses it unless its AWS endpoint is an emulator: see
/// [`AuthSettings::refuse_development_secret`].
pub const DEVELOPMENT_JWT_SECRET: &str = "local-dev-secret";

/// The longest cancel window: SQS delays a message by at most 15 minutes.
pub const MAX_CANCEL_WINDOW_SECONDS: u64 = 900;

/// The webhook secret `make run` signs with when `WEBHOOK_SECRET` is unset; published in the
/// README, so accepted only against an emulator on this machine, as the JWT one.
pub const DEVELOPMENT_WEBHOOK_SECRET: &str = "local-webhook-secret";

/// Names of the DynamoDB tables. A table outside a function's footprint is not read from the
/// environment and keeps a name DynamoDB refuses, so a call to it fails loudly instead of reaching
/// a default table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableNames {
    /// `PRODUCTS_TABLE`: products and their live stock.
    pub products: String,
    /// `ORDERS_TABLE`: orders, with the `user-orders` and `unsettled` indexes.
    pub orders: String,
    /// `IDEMPOTENCY_TABLE`: one record per (user, idempotency key).
    pub idempotency: String,
    /// `LOCKS_TABLE`: per-product lock items.
    pub locks: String,
    /// `RATE_LIMITS_TABLE`: per-subject, per-minute request counters.
    pub rate_limits: String,
    /// `CONNECTIONS_TABLE`: open WebSocket connections and their users.
    pub connections: String,
    /// `HOLDS_TABLE`: stock holds and the per-user active-hold counts.
    pub holds: String,
    /// `WEBHOOKS_TABLE`: webhook answers and outcomes waiting for their order.
    pub webhooks: String,
}

impl TableNames {
    /// The name `table` has here.
    pub fn name(&self, table: Table) -> &str {
        match table {
            Table::Products => &self.products,
            Table::Orders => &self.orders,
            Table::Idempotency => &self.idempotency,
            Table::Locks => &self.locks,
            Table::RateLimits => &self.rate_limits,
            Table::Connections => &self.connections,
            Table::Holds => &self.holds,
            Table::Webhooks => &self.webhooks,
        }
    }

    fn name_mut(&mut self, table: Table) -> &mut String {
        match table {
            Table::Products => &mut self.products,
            Table::Orders => &mut self.orders,
            Table::Idempotency => &mut self.idempotency,
            Table::Locks => &mut self.locks,
            Table::RateLimits => &mut self.rate_limits,
            Table::Connections => &mut self.connections,
            Table::Holds => &mut self.holds,
            Table::Webhooks => &mut self.webhooks,
        }
    }

    /// Every table under its default name, as the local stack and the tests create them.
    pub fn defaults() -> Self {
        let mut names = Self::unconfigured();
        for table in Table::ALL {
            *names.name_mut(table) = table.default_name().to_owned();
        }
        names
    }

    /// No table configured: every name is one DynamoDB rejects (it allows only `[a-zA-Z0-9_.-]`).
    fn unconfigured() -> Self {
        let none = |setting: &str| format!("<{setting} is not in this function's footprint>");
        TableNames {
            products: none("PRODUCTS_TABLE"),
            orders: none("ORDERS_TABLE"),
            idempotency: none("IDEMPOTENCY_TABLE"),
            locks: none("LOCKS_TABLE"),
            rate_limits: none("RATE_LIMITS_TABLE"),
            connections: none("CONNECTIONS_TABLE"),
            holds: none("HOLDS_TABLE"),
            webhooks: none("WEBHOOKS_TABLE"),
        }
    }
}

/// How order placement takes per-product locks.
#[derive(Debug, Clone, PartialEq)]
pub struct LockSettings {
    /// `STOCK_LOCKS` (on|off): whether to take lock items at all.
    pub enabled: bool,
    /// `LOCK_LEASE_MS`: how long a lock is held before others may take it over.
    pub lease: Duration,
    /// `LOCK_ATTEMPTS`: tries per lock before answering 409 LOCK_CONFLICT.
    pub attempts: u32,
    /// `LOCK_BACKOFF_MS`: first backoff; doubles per try, with full jitter.
    pub base_backoff: Duration,
    /// Ceiling of one backoff step.
    pub max_backoff: Duration,
}

impl Default for LockSettings {
    fn default() -> Self {
        LockSettings {
            // Off: stock is taken by single-item conditional writes that never conflict, and a
            // lock held across several round trips caps a shard far below its partition
            // (docs/decisions.md, "Stock outside transactions").
            enabled: false,
            lease: Duration::from_millis(2_000),
            attempts: 60,
            base_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(100),
        }
    }
}

/// How bearer tokens are verified. There is no default key: a function that authenticates and has
/// none of `JWT_SECRET_ID`, `JWT_SECRET` and `JWT_PUBLIC_KEY` refuses to start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthSettings {
    /// `JWT_SECRET`: HS256 secret as a literal value, which never rotates (tests, local runs).
    /// Ignored when `JWT_PUBLIC_KEY` is set.
    pub jwt_secret: Option<String>,
    /// `JWT_SECRET_ID`: the name or ARN of the Secrets Manager secret holding the HS256 secret,
    /// read at run time and refreshed (the template's choice). Ignored when `JWT_PUBLIC_KEY` is
    /// set; refused together with `JWT_SECRET`.
    pub jwt_secret_id: Option<String>,
    /// `JWT_PUBLIC_KEY`: PEM of an RS256 public key; when set, only RS256 tokens are accepted.
    pub jwt_public_key: Option<String>,
    /// `JWT_ISSUER`: when set, tokens must carry this `iss`.
    pub jwt_issuer: Option<String>,
    /// `JWT_AUDIENCE`: when set, tokens must carry this `aud`.
    pub jwt_audience: Option<String>,
}

impl AuthSettings {
    /// HS256 with the development secret: the local stack's default and the tests'.
    pub fn development() -> Self {
        AuthSettings {
            jwt_secret: Some(DEVELOPMENT_JWT_SECRET.to_owned()),
            ..AuthSettings::default()
        }
    }

    /// Refuses the published development secret unless the function talks to an emulator on this
    /// machine: `AWS_ENDPOINT_URL` on a loopback host (the local stack, `cargo lambda watch`,
    /// LocalStack, `sam local` with `--docker-network host`) or Docker's name for the host
    /// (`sam local` on Docker Desktop). An endpoint override alone is not enough: it may name a
    /// real AWS endpoint (FIPS, a VPC endpoint). A deployed function never reaches DynamoDB on
    /// loopback, so a deployment that copied the README's secret cannot start.
    pub fn refuse_development_secret(
        &self,
        aws_endpoint_url: Option<&str>,
    ) -> Result<(), ConfigError> {
        let development = self.jwt_public_key.is_none()
            && self.jwt_secret.as_deref() == Some(DEVELOPMENT_JWT_SECRET);
        if development && !aws_endpoint_url.is_some_and(is_on_this_machine) {
            return Err(ConfigError {
                name: "JWT_SECRET",
                reason: format!(
                    "{DEVELOPMENT_JWT_SECRET:?} is the published development secret; it is accepted \
                     only against an emulator on this machine (AWS_ENDPOINT_URL on 127.0.0.1 or \
                     localhost). Set a secret of your own (from Secrets Manager) or JWT_PUBLIC_KEY"
                ),
            });
        }
        Ok(())
    }
}

/// Whether `url`'s host is this machine: a loopback address, `localhost`, or Docker's
/// `host.docker.internal`.
fn is_on_this_machine(url: &str) -> bool {
    let Ok(uri) = url.parse::<http::Uri>() else {
        return false;
    };
    // A URL without a scheme (`127.0.0.1:4566`) is no endpoint the SDK would use.
    let (Some(_), Some(host)) = (uri.scheme(), uri.host()) else {
        return false;
    };
    // `host()` keeps an IPv6 address in its brackets (`[::1]`).
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    host == "localhost"
        || host == "host.docker.internal"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The simulated payment provider.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentSettings {
    /// `PAYMENT_SUCCESS_RATE` (0.8).
    pub success_rate: f64,
    /// `PAYMENT_SEED`: makes the simulated gateway deterministic (tests).
    pub seed: Option<u64>,
    /// `PAYMENT_TRANSIENT_ERROR_RATE` (0): share of charges that fail with a technical error.
    pub transient_error_rate: f64,
}

impl Default for PaymentSettings {
    fn default() -> Self {
        PaymentSettings {
            success_rate: 0.8,
            seed: None,
            transient_error_rate: 0.0,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line (Lambda, CloudWatch).
    Json,
    /// Human-readable lines.
    Pretty,
}

/// What a function (or the local stack, which runs them all) reads from its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `AWS_ENDPOINT_URL`: use this endpoint instead of AWS (an emulator, LocalStack).
    pub aws_endpoint_url: Option<String>,
    /// `AWS_REGION` (us-east-1; Lambda sets it).
    pub aws_region: String,
    /// Table names (only the footprint's are read).
    pub tables: TableNames,
    /// `ORDER_QUEUE_URL`: required by the functions that send to or check the order queue; the
    /// template passes it, so no `GetQueueUrl` runs at cold start.
    pub order_queue_url: Option<String>,
    /// `ORDER_DLQ_URL`: the order queue's dead-letter queue, which the reconciler empties.
    pub order_dlq_url: Option<String>,
    /// `WS_MANAGEMENT_ENDPOINT`: the WebSocket API's management endpoint
    /// (`https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`); without it events are not pushed.
    pub ws_management_endpoint: Option<String>,
    /// Token verification.
    pub auth: AuthSettings,
    /// The simulated payment provider.
    pub payments: PaymentSettings,
    /// `RECONCILE_AFTER_SECONDS` (60).
    pub reconcile_after: Duration,
    /// `HOLD_TTL_SECONDS` (120): how long a hold keeps its units.
    pub hold_ttl: Duration,
    /// `CANCEL_WINDOW_SECONDS` (0, at most 900): how long a new order waits before the payment
    /// pipeline sees it (SQS `DelaySeconds`), so its buyer can cancel it.
    pub cancel_window: Duration,
    /// `WEBHOOK_SECRET`: the payment provider's signing secret as a literal value, which never
    /// rotates (tests, and people who want it); no default outside the local stack.
    pub webhook_secret: Option<String>,
    /// `WEBHOOK_SECRET_ID`: the name or ARN of the Secrets Manager secret holding the payment
    /// provider's signing secret, read at run time and refreshed (the template's choice).
    pub webhook_secret_id: Option<String>,
    /// `SECRETS_REFRESH_SECONDS` (300) and `WEBHOOK_SECRET_OVERLAP_SECONDS` (3600): how often a
    /// secret read from Secrets Manager is read again, and how long after a rotation the previous
    /// webhook secret is still accepted.
    pub secret_rotation: Rotation,
    /// `JWT_SECRET_OVERLAP_SECONDS` (4200): how long after a rotation tokens signed with the
    /// previous JWT secret are still accepted ([`DEFAULT_JWT_SECRET_OVERLAP`]).
    pub jwt_secret_overlap: Duration,
    /// Lock settings, `STOCK_LOCKS` among them.
    pub locks: LockSettings,
    /// `RATE_LIMIT_PER_MINUTE` per user (or client address when anonymous); 0 disables.
    pub rate_limit_per_minute: u32,
    /// `LOG_FORMAT` (json|pretty).
    pub log_format: LogFormat,
    /// `METRICS_NAMESPACE` (`OrderProcessing`): the CloudWatch namespace of the business metrics.
    pub metrics_namespace: String,
}

/// Highest `RATE_LIMIT_PER_MINUTE`, as `template.yaml` allows. The bucket counters cost the same
/// at any limit (docs/data-model.md, rate-limits); past this a per-user limit guards little that
/// API Gateway's stage throttling does not.
pub const MAX_RATE_LIMIT_PER_MINUTE: u32 = 10_000;

/// A setting that is present but unusable, or missing where it is required.
#[derive(Debug, thiserror::Error)]
#[error("setting {name}: {reason}")]
pub struct ConfigError {
    /// The environment variable.
    pub name: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    /// `name` is required and unset.
    pub fn missing(name: &'static str, why: &str) -> Self {
        ConfigError {
            name,
            reason: format!("not set; {why}"),
        }
    }
}

impl Default for Config {
    /// The local development defaults documented in the README (the development secret included).
    fn default() -> Self {
        Config {
            aws_endpoint_url: None,
            aws_region: "us-east-1".into(),
            tables: TableNames::defaults(),
            order_queue_url: None,
            order_dlq_url: None,
            ws_management_endpoint: None,
            auth: AuthSettings::development(),
            payments: PaymentSettings::default(),
            reconcile_after: Duration::from_secs(60),
            hold_ttl: Duration::from_secs(120),
            cancel_window: Duration::ZERO,
            webhook_secret: Some(DEVELOPMENT_WEBHOOK_SECRET.to_owned()),
            webhook_secret_id: None,
            secret_rotation: DEFAULT_SECRET_ROTATION,
            jwt_secret_overlap: DEFAULT_JWT_SECRET_OVERLAP,
            locks: LockSettings::default(),
            rate_limit_per_minute: 120,
            log_format: LogFormat::Json,
            metrics_namespace: DEFAULT_METRICS_NAMESPACE.into(),
        }
    }
}

/// How secrets read from Secrets Manager rotate by default. Refresh every 300 s: a rotation
/// reaches every warm instance within 5 minutes (the AWS Parameters and Secrets Lambda extension's
/// default TTL too) for two `GetSecretValue` calls per instance per 5 minutes (docs/deploy.md,
/// "Rotating a secret"). Previous webhook secret accepted for 3600 s after the current one was
/// created: the time to roll the secret at the payment provider after putting it in Secrets
/// Manager (or the reverse), and to drain the provider's retries of deliveries signed before.
pub const DEFAULT_SECRET_ROTATION: Rotation = Rotation {
    refresh_every: Duration::from_secs(300),
    overlap: Duration::from_secs(3600),
};

/// How long after a rotation a token signed with the previous JWT secret is still accepted, by
/// default: 4200 s, a token's default lifetime (1 h: the token tool's `--ttl` and the console's
/// development tokens) plus the refresh interval (an issuer that caches the secret as these
/// functions do signs with the previous one for up to 300 s after the rotation) plus the 30 s
/// clock leeway on `exp`, rounded up to 70 minutes. So a rotation logs nobody out who holds a
/// default token; a token minted for longer is refused once the window ends.
pub const DEFAULT_JWT_SECRET_OVERLAP: Duration = Duration::from_secs(4200);

/// Where a signing secret (the webhook's, the JWT one) comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSetting<'a> {
    /// A literal value (`WEBHOOK_SECRET`, `JWT_SECRET`): never rotates.
    Literal(&'a str),
    /// A Secrets Manager secret's name or ARN (`WEBHOOK_SECRET_ID`, `JWT_SECRET_ID`): read at
    /// run time.
    SecretId(&'a str),
}

/// Settings always read: where AWS is and how to log. The `AWS_*` ones Lambda sets itself (or the
/// developer, locally), so they are not part of a function's template environment.
pub const AMBIENT_SETTINGS: [&str; 5] = [
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "LOG_FORMAT",
    "METRICS_NAMESPACE",
];

/// The business metrics' namespace when `METRICS_NAMESPACE` is unset; the template sets one per
/// stack so that two stacks in one account keep their numbers apart.
pub const DEFAULT_METRICS_NAMESPACE: &str = "OrderProcessing";

/// CloudWatch's longest namespace.
const MAX_METRICS_NAMESPACE_CHARS: usize = 255;

/// Literal secret values, the alternative to a secret read from Secrets Manager for tests and
/// local runs (they never rotate): the template names the secret instead, so it never gives them.
pub const LITERAL_SECRET_SETTINGS: [&str; 2] = ["WEBHOOK_SECRET", "JWT_SECRET"];

/// Settings only tests set (a seed makes the payment simulator deterministic).
pub const TEST_ONLY_SETTINGS: [&str; 1] = ["PAYMENT_SEED"];

impl Config {
    /// Reads the settings `footprint` names from the process environment.
    pub fn for_footprint(footprint: &Footprint) -> Result<Self, ConfigError> {
        Self::from_lookup(footprint, |name| {
            std::env::var(name).ok().filter(|v| !v.is_empty())
        })
    }

    /// Every setting name [`Config::from_lookup`] reads for `footprint`, found by reading an empty
    /// environment through a recording lookup: the truth the template is checked against.
    pub fn settings_read(footprint: &Footprint) -> BTreeSet<String> {
        let read = RefCell::new(BTreeSet::new());
        let _ = Self::from_lookup(footprint, |name| {
            read.borrow_mut().insert(name.to_owned());
            None
        });
        read.into_inner()
    }

    /// Reads the settings `footprint` names through `lookup`, so tests need not touch the process
    /// environment. Settings outside the footprint keep their defaults and are never looked up.
    pub fn from_lookup(
        footprint: &Footprint,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let d = Config::default();
        let mut config = Config {
            aws_endpoint_url: lookup("AWS_ENDPOINT_URL"),
            aws_region: lookup("AWS_REGION")
                .or_else(|| lookup("AWS_DEFAULT_REGION"))
                .unwrap_or(d.aws_region),
            tables: TableNames::unconfigured(),
            auth: AuthSettings::default(),
            webhook_secret: None,
            log_format: match lookup("LOG_FORMAT").as_deref() {
                None | Some("json") => LogFormat::Json,
                Some("pretty") => LogFormat::Pretty,
                Some(other) => {
                    return Err(ConfigError {
                        name: "LOG_FORMAT",
                        reason: format!("{other:?} is not json or pretty"),
                    });
                }
            },
            metrics_namespace: lookup("METRICS_NAMESPACE").unwrap_or(d.metrics_namespace),
            ..d
        };
        if config.metrics_namespace.chars().count() > MAX_METRICS_NAMESPACE_CHARS
            || config.metrics_namespace.starts_with(':')
        {
            return Err(ConfigError {
                name: "METRICS_NAMESPACE",
                reason: format!(
                    "must be at most {MAX_METRICS_NAMESPACE_CHARS} characters and not start with ':'"
                ),
            });
        }
        for &table in footprint.tables {
            *config.tables.name_mut(table) =
                lookup(table.setting()).unwrap_or_else(|| table.default_name().to_owned());
        }
        if footprint.order_queue {
            config.order_queue_url = lookup("ORDER_QUEUE_URL");
        }
        if footprint.pushes {
            config.ws_management_endpoint = lookup("WS_MANAGEMENT_ENDPOINT");
        }
        if footprint.authenticates {
            config.auth = AuthSettings {
                jwt_secret: lookup("JWT_SECRET"),
                jwt_secret_id: lookup("JWT_SECRET_ID"),
                jwt_public_key: lookup("JWT_PUBLIC_KEY"),
                jwt_issuer: lookup("JWT_ISSUER"),
                jwt_audience: lookup("JWT_AUDIENCE"),
            };
        }
        if footprint.rate_limited {
            config.rate_limit_per_minute =
                parsed(&lookup, "RATE_LIMIT_PER_MINUTE")?.unwrap_or(config.rate_limit_per_minute);
            if config.rate_limit_per_minute > MAX_RATE_LIMIT_PER_MINUTE {
                return Err(ConfigError {
                    name: "RATE_LIMIT_PER_MINUTE",
                    reason: format!(
                        "{} is above {MAX_RATE_LIMIT_PER_MINUTE}, the highest per-user limit the \
                         template allows; use API Gateway's stage throttling for higher rates, or \
                         0 to turn the per-user limit off",
                        config.rate_limit_per_minute
                    ),
                });
            }
        }
        if footprint.stock_locks {
            config.locks = read_locks(&lookup, config.locks)?;
        }
        if footprint.payments {
            config.payments = read_payments(&lookup, config.payments)?;
        }
        if footprint.reconciles {
            config.reconcile_after = parsed::<u64>(&lookup, "RECONCILE_AFTER_SECONDS")?
                .map_or(config.reconcile_after, Duration::from_secs);
            config.order_dlq_url = lookup("ORDER_DLQ_URL");
        }
        if footprint.holds {
            config.hold_ttl = match parsed::<u64>(&lookup, "HOLD_TTL_SECONDS")? {
                None => config.hold_ttl,
                Some(0) => {
                    return Err(ConfigError {
                        name: "HOLD_TTL_SECONDS",
                        reason: "must be at least 1".into(),
                    });
                }
                Some(seconds) => Duration::from_secs(seconds),
            };
        }
        if footprint.reads_secrets() {
            config.secret_rotation.refresh_every = read_refresh(&lookup, config.secret_rotation)?;
        }
        if footprint.verifies_webhooks {
            config.webhook_secret = lookup("WEBHOOK_SECRET");
            config.webhook_secret_id = lookup("WEBHOOK_SECRET_ID");
            config.secret_rotation.overlap =
                parsed::<u64>(&lookup, "WEBHOOK_SECRET_OVERLAP_SECONDS")?
                    .map_or(config.secret_rotation.overlap, Duration::from_secs);
        }
        if footprint.authenticates {
            config.jwt_secret_overlap = parsed::<u64>(&lookup, "JWT_SECRET_OVERLAP_SECONDS")?
                .map_or(config.jwt_secret_overlap, Duration::from_secs);
        }
        if footprint.cancel_window {
            config.cancel_window = match parsed::<u64>(&lookup, "CANCEL_WINDOW_SECONDS")? {
                None => config.cancel_window,
                Some(seconds @ 0..=MAX_CANCEL_WINDOW_SECONDS) => Duration::from_secs(seconds),
                Some(_) => {
                    return Err(ConfigError {
                        name: "CANCEL_WINDOW_SECONDS",
                        reason: format!(
                            "must be 0 to {MAX_CANCEL_WINDOW_SECONDS} (SQS DelaySeconds is at most 15 minutes)"
                        ),
                    });
                }
            };
        }
        Ok(config)
    }

    /// Where the webhook signing secret comes from, required by a function that verifies
    /// webhooks: a Secrets Manager secret, or a literal value (the published development secret
    /// only against an emulator on this machine); not both.
    pub fn webhook_secret_setting(&self) -> Result<SecretSetting<'_>, ConfigError> {
        let literal = match (
            self.webhook_secret.as_deref(),
            self.webhook_secret_id.as_deref(),
        ) {
            (Some(_), Some(_)) => {
                return Err(ConfigError {
                    name: "WEBHOOK_SECRET_ID",
                    reason: "WEBHOOK_SECRET is set too; set one: the secret's name or ARN \
                             (rotates) or the literal value (does not)"
                        .into(),
                });
            }
            (None, Some(id)) => return Ok(SecretSetting::SecretId(id)),
            (Some(literal), None) => literal,
            (None, None) => {
                return Err(ConfigError::missing(
                    "WEBHOOK_SECRET_ID",
                    "this function verifies payment webhooks (set the name or ARN of the \
                     Secrets Manager secret holding the provider's signing secret, or \
                     WEBHOOK_SECRET to the value itself)",
                ));
            }
        };
        if literal == DEVELOPMENT_WEBHOOK_SECRET
            && !self
                .aws_endpoint_url
                .as_deref()
                .is_some_and(is_on_this_machine)
        {
            return Err(ConfigError {
                name: "WEBHOOK_SECRET",
                reason: format!(
                    "{DEVELOPMENT_WEBHOOK_SECRET:?} is the published development secret; it is \
                     accepted only against an emulator on this machine"
                ),
            });
        }
        Ok(SecretSetting::Literal(literal))
    }

    /// Where the HS256 token secret comes from: a Secrets Manager secret, a literal value, or
    /// nowhere (`None`: RS256 alone, or no key, which [`crate::auth::Authenticator`] refuses).
    /// With `JWT_PUBLIC_KEY` set the secret is not used, so it is not read either. Both
    /// `JWT_SECRET_ID` and `JWT_SECRET` set is refused, as for the webhook secret.
    pub fn jwt_secret_setting(&self) -> Result<Option<SecretSetting<'_>>, ConfigError> {
        let auth = &self.auth;
        match (auth.jwt_secret.as_deref(), auth.jwt_secret_id.as_deref()) {
            (Some(_), Some(_)) => Err(ConfigError {
                name: "JWT_SECRET_ID",
                reason: "JWT_SECRET is set too; set one: the secret's name or ARN (rotates) or \
                         the literal value (does not)"
                    .into(),
            }),
            _ if auth.jwt_public_key.is_some() => Ok(None),
            (None, Some(id)) => Ok(Some(SecretSetting::SecretId(id))),
            (Some(literal), None) => Ok(Some(SecretSetting::Literal(literal))),
            (None, None) => Ok(None),
        }
    }

    /// How the JWT secret read from Secrets Manager rotates: the shared refresh interval and
    /// `JWT_SECRET_OVERLAP_SECONDS`.
    pub fn jwt_secret_rotation(&self) -> Rotation {
        Rotation {
            refresh_every: self.secret_rotation.refresh_every,
            overlap: self.jwt_secret_overlap,
        }
    }

    /// The order queue's URL, required by a function whose footprint sends to the queue.
    pub fn require_order_queue_url(&self) -> Result<&str, ConfigError> {
        self.order_queue_url.as_deref().ok_or_else(|| {
            ConfigError::missing(
                "ORDER_QUEUE_URL",
                "this function sends to the order queue (the template passes the queue's URL)",
            )
        })
    }

    /// The dead-letter queue's URL, required by the reconciler, which sends its orders back.
    pub fn require_order_dlq_url(&self) -> Result<&str, ConfigError> {
        self.order_dlq_url.as_deref().ok_or_else(|| {
            ConfigError::missing(
                "ORDER_DLQ_URL",
                "the reconciler sends the dead-letter queue's unsettled orders back (the template \
                 passes the queue's URL)",
            )
        })
    }
}

fn read_locks(
    lookup: &impl Fn(&str) -> Option<String>,
    d: LockSettings,
) -> Result<LockSettings, ConfigError> {
    let enabled = match lookup("STOCK_LOCKS")
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None => d.enabled,
        Some("on" | "true" | "1") => true,
        Some("off" | "false" | "0") => false,
        Some(other) => {
            return Err(ConfigError {
                name: "STOCK_LOCKS",
                reason: format!("{other:?} is not on or off"),
            });
        }
    };
    Ok(LockSettings {
        enabled,
        lease: parsed::<u64>(lookup, "LOCK_LEASE_MS")?.map_or(d.lease, Duration::from_millis),
        attempts: parsed(lookup, "LOCK_ATTEMPTS")?
            .unwrap_or(d.attempts)
            .max(1),
        base_backoff: parsed::<u64>(lookup, "LOCK_BACKOFF_MS")?
            .map_or(d.base_backoff, Duration::from_millis),
        max_backoff: d.max_backoff,
    })
}

fn read_payments(
    lookup: &impl Fn(&str) -> Option<String>,
    d: PaymentSettings,
) -> Result<PaymentSettings, ConfigError> {
    let rate = |name: &'static str, default: f64| -> Result<f64, ConfigError> {
        let value = parsed::<f64>(lookup, name)?.unwrap_or(default);
        if !(0.0..=1.0).contains(&value) {
            return Err(ConfigError {
                name,
                reason: "must be between 0 and 1".into(),
            });
        }
        Ok(value)
    };
    Ok(PaymentSettings {
        success_rate: rate("PAYMENT_SUCCESS_RATE", d.success_rate)?,
        seed: parsed(lookup, "PAYMENT_SEED")?,
        transient_error_rate: rate("PAYMENT_TRANSIENT_ERROR_RATE", d.transient_error_rate)?,
    })
}

/// `SECRETS_REFRESH_SECONDS` (at least 1), shared by every secret a function reads. The overlap
/// settings (`WEBHOOK_SECRET_OVERLAP_SECONDS`, `JWT_SECRET_OVERLAP_SECONDS`) may be 0, which
/// accepts only the current version.
fn read_refresh(
    lookup: &impl Fn(&str) -> Option<String>,
    d: Rotation,
) -> Result<Duration, ConfigError> {
    match parsed::<u64>(lookup, "SECRETS_REFRESH_SECONDS")? {
        None => Ok(d.refresh_every),
        Some(0) => Err(ConfigError {
            name: "SECRETS_REFRESH_SECONDS",
            reason: "must be at least 1".into(),
        }),
        Some(seconds) => Ok(Duration::from_secs(seconds)),
    }
}

/// `name` parsed as `T`, `None` when unset.
pub fn parsed<T: std::str::FromStr>(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<Option<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    lookup(name)
        .map(|raw| {
            raw.trim().parse::<T>().map_err(|e| ConfigError {
                name,
                reason: format!("{raw:?}: {e}"),
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests;
