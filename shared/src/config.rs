//! One typed `Config` read from the environment at cold start; a bad value fails the start, never a request.

use std::time::Duration;

/// Names of the DynamoDB tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableNames {
    /// `PRODUCTS_TABLE`: products and their live stock.
    pub products: String,
    /// `ORDERS_TABLE`: orders, with the `user-orders` index.
    pub orders: String,
    /// `IDEMPOTENCY_TABLE`: one record per (user, idempotency key).
    pub idempotency: String,
    /// `LOCKS_TABLE`: per-product lock items.
    pub locks: String,
    /// `RATE_LIMITS_TABLE`: per-subject, per-minute request counters.
    pub rate_limits: String,
    /// `CONNECTIONS_TABLE`: open WebSocket connections and their users.
    pub connections: String,
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

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line (Lambda, CloudWatch).
    Json,
    /// Human-readable lines.
    Pretty,
}

/// Everything a function or the local stack needs to know about its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `HTTP_PORT` of the local HTTP API (3000).
    pub http_port: u16,
    /// `WS_PORT` of the local WebSocket API (3001).
    pub ws_port: u16,
    /// `AWS_ENDPOINT_URL`: use this endpoint instead of AWS (and start no emulator locally).
    pub aws_endpoint_url: Option<String>,
    /// `AWS_REGION` (us-east-1).
    pub aws_region: String,
    /// Table names.
    pub tables: TableNames,
    /// `ORDER_QUEUE_NAME` (orders).
    pub order_queue_name: String,
    /// `ORDER_QUEUE_URL`: skips the GetQueueUrl lookup at cold start when set.
    pub order_queue_url: Option<String>,
    /// `ORDER_DLQ_NAME` (orders-dlq).
    pub order_dlq_name: String,
    /// `ORDER_QUEUE_VISIBILITY_SECONDS` (30): how long a received message stays hidden.
    pub queue_visibility_timeout: Duration,
    /// `ORDER_QUEUE_MAX_RECEIVE_COUNT` (5): receives before a message moves to the DLQ.
    pub max_receive_count: u32,
    /// `WS_MANAGEMENT_ENDPOINT`: the WebSocket API's management endpoint
    /// (`https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`); locally `http://127.0.0.1:{WS_PORT}`.
    pub ws_management_endpoint: Option<String>,
    /// `JWT_SECRET` for HS256 tokens (local-dev-secret).
    pub jwt_secret: String,
    /// `JWT_PUBLIC_KEY`: PEM of an RS256 public key; when set, RS256 tokens are accepted too.
    pub jwt_public_key: Option<String>,
    /// `WEBHOOK_SECRET` for payment webhook signatures.
    pub webhook_secret: String,
    /// `PAYMENT_SUCCESS_RATE` (0.8).
    pub payment_success_rate: f64,
    /// `PAYMENT_SEED`: makes the simulated gateway deterministic.
    pub payment_seed: Option<u64>,
    /// `PAYMENT_TRANSIENT_ERROR_RATE` (0): share of charges that fail with a technical error.
    pub payment_transient_error_rate: f64,
    /// `HOLD_TTL_SECONDS` (120).
    pub hold_ttl: Duration,
    /// `HOLD_SWEEP_SECONDS` (60).
    pub hold_sweep: Duration,
    /// `RECONCILE_AFTER_SECONDS` (60).
    pub reconcile_after: Duration,
    /// Lock settings, `STOCK_LOCKS` among them.
    pub locks: LockSettings,
    /// `RATE_LIMIT_PER_MINUTE` per user (or client address when anonymous); 0 disables.
    pub rate_limit_per_minute: u32,
    /// `LOG_FORMAT` (json|pretty).
    pub log_format: LogFormat,
}

/// A setting that is present but unusable.
#[derive(Debug, thiserror::Error)]
#[error("setting {name}: {reason}")]
pub struct ConfigError {
    name: &'static str,
    reason: String,
}

impl Default for Config {
    /// The local development defaults documented in the README.
    fn default() -> Self {
        Config {
            http_port: 3000,
            ws_port: 3001,
            aws_endpoint_url: None,
            aws_region: "us-east-1".into(),
            tables: TableNames {
                products: "products".into(),
                orders: "orders".into(),
                idempotency: "idempotency".into(),
                locks: "stock-locks".into(),
                rate_limits: "rate-limits".into(),
                connections: "ws-connections".into(),
            },
            order_queue_name: "orders".into(),
            order_queue_url: None,
            order_dlq_name: "orders-dlq".into(),
            queue_visibility_timeout: Duration::from_secs(30),
            max_receive_count: 5,
            ws_management_endpoint: None,
            jwt_secret: "local-dev-secret".into(),
            jwt_public_key: None,
            webhook_secret: "local-webhook-secret".into(),
            payment_success_rate: 0.8,
            payment_seed: None,
            payment_transient_error_rate: 0.0,
            hold_ttl: Duration::from_secs(120),
            hold_sweep: Duration::from_secs(60),
            reconcile_after: Duration::from_secs(60),
            locks: LockSettings {
                enabled: true,
                lease: Duration::from_millis(5_000),
                attempts: 8,
                base_backoff: Duration::from_millis(20),
                max_backoff: Duration::from_millis(400),
            },
            rate_limit_per_minute: 120,
            log_format: LogFormat::Json,
        }
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Reads settings through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let d = Config::default();
        let text = |name: &str, default: String| lookup(name).unwrap_or(default);
        let secs = |name: &'static str, default: Duration| -> Result<Duration, ConfigError> {
            parsed::<u64>(&lookup, name).map(|v| v.map_or(default, Duration::from_secs))
        };
        let millis = |name: &'static str, default: Duration| -> Result<Duration, ConfigError> {
            parsed::<u64>(&lookup, name).map(|v| v.map_or(default, Duration::from_millis))
        };
        let payment_success_rate =
            parsed::<f64>(&lookup, "PAYMENT_SUCCESS_RATE")?.unwrap_or(d.payment_success_rate);
        if !(0.0..=1.0).contains(&payment_success_rate) {
            return Err(ConfigError {
                name: "PAYMENT_SUCCESS_RATE",
                reason: "must be between 0 and 1".into(),
            });
        }
        let payment_transient_error_rate = parsed::<f64>(&lookup, "PAYMENT_TRANSIENT_ERROR_RATE")?
            .unwrap_or(d.payment_transient_error_rate);
        if !(0.0..=1.0).contains(&payment_transient_error_rate) {
            return Err(ConfigError {
                name: "PAYMENT_TRANSIENT_ERROR_RATE",
                reason: "must be between 0 and 1".into(),
            });
        }
        let stock_locks = match lookup("STOCK_LOCKS")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("on" | "true" | "1") => true,
            Some("off" | "false" | "0") => false,
            Some(other) => {
                return Err(ConfigError {
                    name: "STOCK_LOCKS",
                    reason: format!("{other:?} is not on or off"),
                });
            }
        };
        let log_format = match lookup("LOG_FORMAT").as_deref() {
            None | Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            Some(other) => {
                return Err(ConfigError {
                    name: "LOG_FORMAT",
                    reason: format!("{other:?} is not json or pretty"),
                });
            }
        };
        Ok(Config {
            http_port: parsed(&lookup, "HTTP_PORT")?.unwrap_or(d.http_port),
            ws_port: parsed(&lookup, "WS_PORT")?.unwrap_or(d.ws_port),
            aws_endpoint_url: lookup("AWS_ENDPOINT_URL"),
            aws_region: lookup("AWS_REGION")
                .or_else(|| lookup("AWS_DEFAULT_REGION"))
                .unwrap_or(d.aws_region),
            tables: TableNames {
                products: text("PRODUCTS_TABLE", d.tables.products),
                orders: text("ORDERS_TABLE", d.tables.orders),
                idempotency: text("IDEMPOTENCY_TABLE", d.tables.idempotency),
                locks: text("LOCKS_TABLE", d.tables.locks),
                rate_limits: text("RATE_LIMITS_TABLE", d.tables.rate_limits),
                connections: text("CONNECTIONS_TABLE", d.tables.connections),
            },
            order_queue_name: text("ORDER_QUEUE_NAME", d.order_queue_name),
            order_queue_url: lookup("ORDER_QUEUE_URL"),
            order_dlq_name: text("ORDER_DLQ_NAME", d.order_dlq_name),
            queue_visibility_timeout: secs(
                "ORDER_QUEUE_VISIBILITY_SECONDS",
                d.queue_visibility_timeout,
            )?,
            max_receive_count: parsed(&lookup, "ORDER_QUEUE_MAX_RECEIVE_COUNT")?
                .unwrap_or(d.max_receive_count)
                .max(1),
            ws_management_endpoint: lookup("WS_MANAGEMENT_ENDPOINT"),
            jwt_secret: text("JWT_SECRET", d.jwt_secret),
            jwt_public_key: lookup("JWT_PUBLIC_KEY"),
            webhook_secret: text("WEBHOOK_SECRET", d.webhook_secret),
            payment_success_rate,
            payment_seed: parsed(&lookup, "PAYMENT_SEED")?,
            payment_transient_error_rate,
            hold_ttl: secs("HOLD_TTL_SECONDS", d.hold_ttl)?,
            hold_sweep: secs("HOLD_SWEEP_SECONDS", d.hold_sweep)?,
            reconcile_after: secs("RECONCILE_AFTER_SECONDS", d.reconcile_after)?,
            locks: LockSettings {
                enabled: stock_locks,
                lease: millis("LOCK_LEASE_MS", d.locks.lease)?,
                attempts: parsed(&lookup, "LOCK_ATTEMPTS")?
                    .unwrap_or(d.locks.attempts)
                    .max(1),
                base_backoff: millis("LOCK_BACKOFF_MS", d.locks.base_backoff)?,
                max_backoff: d.locks.max_backoff,
            },
            rate_limit_per_minute: parsed(&lookup, "RATE_LIMIT_PER_MINUTE")?
                .unwrap_or(d.rate_limit_per_minute),
            log_format,
        })
    }
}

fn parsed<T: std::str::FromStr>(
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
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn empty_environment_gives_the_documented_defaults() {
        assert_eq!(config(&[]).unwrap(), Config::default());
    }

    #[test]
    fn stock_locks_off_and_bad_values_are_reported() {
        assert!(!config(&[("STOCK_LOCKS", "off")]).unwrap().locks.enabled);
        assert!(config(&[("STOCK_LOCKS", "maybe")]).is_err());
        assert!(config(&[("HTTP_PORT", "x")]).is_err());
        assert!(config(&[("PAYMENT_SUCCESS_RATE", "1.5")]).is_err());
    }
}
