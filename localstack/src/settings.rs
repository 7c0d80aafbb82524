//! What only the local stack reads: its ports, where it keeps its data, and how it creates the
//! order queue (in AWS the template does that). Everything the functions read is `shared::Config`.

use std::path::PathBuf;
use std::time::Duration;

use shared::config::{ConfigError, parsed};

use crate::conditions::Conditions;
use crate::conditions::latency::LatencyTable;
use crate::partitions::PartitionLimits;

/// The local stack's own settings.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalSettings {
    /// `HTTP_PORT` of the local HTTP API (3000; 0 = any free port).
    pub http_port: u16,
    /// `WS_PORT` of the local WebSocket API and its management API (3001; 0 = any free port).
    pub ws_port: u16,
    /// `AWS_PORT` of the embedded emulators' one AWS endpoint (4566, LocalStack's, so one
    /// `AWS_ENDPOINT_URL` serves both paths; 0 = any free port). A fixed port lets `cargo lambda
    /// watch` and `sam local` use a checked-in environment file.
    pub aws_port: u16,
    /// `ORDER_QUEUE_NAME` (orders).
    pub order_queue_name: String,
    /// `ORDER_DLQ_NAME` (orders-dlq).
    pub order_dlq_name: String,
    /// `ORDER_QUEUE_VISIBILITY_SECONDS` (30): how long a received message stays hidden.
    pub queue_visibility_timeout: Duration,
    /// `ORDER_QUEUE_MAX_RECEIVE_COUNT` (5): receives before a message moves to the DLQ.
    pub max_receive_count: u32,
    /// `HOLD_SWEEP_SECONDS` (60): how often the hold sweeper runs, as its one-minute schedule
    /// does in AWS. Tests set fractions of a second.
    pub hold_sweep_interval: Duration,
    /// `CONSUMER_MAXIMUM_CONCURRENCY` (20, as the template's `ConsumerMaximumConcurrency`; 2 to
    /// 1,000): most concurrent consumer invocations the SQS event source scales up to.
    pub consumer_max_concurrency: usize,
    /// `METER_CAPACITY` (off): whether the embedded AWS endpoint asks DynamoDB for the capacity
    /// units of every request and adds them up at `/_local/meter` (the load tests' cost figures).
    pub meter_capacity: bool,
    /// `AWS_CONDITIONS` (off): AWS's operating conditions on the embedded AWS endpoint. On, it
    /// is the default of `AWS_LATENCY`, `AWS_TRANSACTION_CONFLICTS` and `PARTITION_LIMIT`, each of
    /// which still wins when set (docs/aws-conditions.md).
    pub aws_conditions: bool,
    /// `AWS_LATENCY` (off; `AWS_CONDITIONS=on`: on): `on`, `off`, or `class=median/p99` entries
    /// in ms, comma-separated, replacing those classes' defaults (`dynamodb.transact=24/80`).
    /// `None`: no delay.
    pub latency: Option<LatencyTable>,
    /// `AWS_TRANSACTION_CONFLICTS` (off; `AWS_CONDITIONS=on`: on): DynamoDB's transaction
    /// conflicts (`TransactionCanceledException` / `TransactionConflictException`).
    pub transaction_conflicts: bool,
    /// `PARTITION_LIMIT` (off; `AWS_CONDITIONS=on`: on): whether the embedded AWS endpoint
    /// emulates the per-partition write and read limits of an on-demand DynamoDB table, refusing
    /// a hot key with `ThrottlingException` (`partitions`); off, it reads no request body.
    pub partition_limit: bool,
    /// `PARTITION_WRITE_UNITS` (1000, AWS's figure): write units per second each partition key
    /// value takes when `PARTITION_LIMIT=on`. Tests and benchmarks lower it so that the cap shows
    /// on a machine far slower than DynamoDB.
    pub partition_write_units: u32,
    /// `PARTITION_READ_UNITS` (3000, AWS's figure): read units per second each partition key
    /// value takes when `PARTITION_LIMIT=on`.
    pub partition_read_units: u32,
    /// `PARTITION_SCALE` (1.0): multiplies both per-key limits, so that a machine far slower
    /// than DynamoDB can be given limits it can reach (0.02: 20 write and 60 read units a second).
    pub partition_scale: f64,
    /// `CORS_ALLOW_ORIGINS` (empty: CORS off, as the template's `CorsAllowedOrigins` default):
    /// comma-separated origins the HTTP API allows, each exact (`http://localhost:5173`), `*`, or
    /// `https://*` / `http://*`. With any, the gateway answers preflights and adds the CORS headers
    /// as API Gateway does with the template's CORS configuration (`gateway::cors`).
    pub cors_allow_origins: Vec<String>,
    /// `LOCAL_DATA_DIR` (unset: everything in memory, gone with the process): a directory, created
    /// if missing, where the embedded DynamoDB keeps its tables in one SQLite file
    /// ([`LocalSettings::DYNAMODB_FILE`]), so that a restart on the same directory finds every product, order,
    /// hold and stock unit. Queue messages stay in memory: the order table is the source of truth
    /// and the reconciler re-enqueues every unsettled order (docs/reliability.md).
    pub data_dir: Option<PathBuf>,
    /// How long both gateways wait for a request's headers, and the HTTP API for its body, before
    /// giving up on the client: API Gateway's 30 s ([`crate::gateway::REQUEST_READ_TIMEOUT`]).
    /// Not read from the environment; tests shorten it.
    pub request_read_timeout: Duration,
}

impl Default for LocalSettings {
    fn default() -> Self {
        LocalSettings {
            http_port: 3000,
            ws_port: 3001,
            aws_port: 4566,
            order_queue_name: "orders".into(),
            order_dlq_name: "orders-dlq".into(),
            queue_visibility_timeout: Duration::from_secs(30),
            max_receive_count: 5,
            hold_sweep_interval: Duration::from_secs(60),
            consumer_max_concurrency: 20,
            meter_capacity: false,
            aws_conditions: false,
            latency: None,
            transaction_conflicts: false,
            partition_limit: false,
            partition_write_units: 1000,
            partition_read_units: 3000,
            partition_scale: 1.0,
            cors_allow_origins: Vec::new(),
            data_dir: None,
            request_read_timeout: crate::gateway::REQUEST_READ_TIMEOUT,
        }
    }
}

impl LocalSettings {
    /// The SQLite file, in `LOCAL_DATA_DIR`, that holds the embedded DynamoDB's tables.
    pub const DYNAMODB_FILE: &str = "dynamodb.sqlite3";

    /// Every port ephemeral: what tests use, so that stacks run side by side.
    pub fn ephemeral() -> Self {
        LocalSettings {
            http_port: 0,
            ws_port: 0,
            aws_port: 0,
            ..LocalSettings::default()
        }
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// These settings with the AWS-conditions ones (`AWS_CONDITIONS`, `AWS_LATENCY`,
    /// `AWS_TRANSACTION_CONFLICTS`, `PARTITION_*`) read from the process environment, the rest
    /// (ports, names) kept: what a test stack on ephemeral ports uses.
    pub fn with_conditions_from_env(self) -> Result<Self, ConfigError> {
        self.with_conditions_from(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// [`LocalSettings::with_conditions_from_env`] through `lookup`.
    pub fn with_conditions_from(
        self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let read = LocalSettings::from_lookup(|name| {
            CONDITION_VARIABLES
                .contains(&name)
                .then(|| lookup(name))
                .flatten()
        })?;
        Ok(LocalSettings {
            aws_conditions: read.aws_conditions,
            latency: read.latency,
            transaction_conflicts: read.transaction_conflicts,
            partition_limit: read.partition_limit,
            partition_write_units: read.partition_write_units,
            partition_read_units: read.partition_read_units,
            partition_scale: read.partition_scale,
            ..self
        })
    }

    /// The latency and conflict emulation these settings ask for.
    pub fn conditions(&self) -> Conditions {
        Conditions::new(self.latency.clone(), self.transaction_conflicts)
    }

    /// The effective per-key limits (scaled), `None` with `PARTITION_LIMIT` off.
    pub(crate) fn partition_limits(&self) -> Option<PartitionLimits> {
        self.partition_limit.then(|| PartitionLimits {
            write_units: f64::from(self.partition_write_units) * self.partition_scale,
            read_units: f64::from(self.partition_read_units) * self.partition_scale,
            scale: self.partition_scale,
        })
    }

    /// The effective per-key `(write, read)` units a second, `None` with `PARTITION_LIMIT` off:
    /// what the banner prints.
    pub fn effective_partition_units(&self) -> Option<(f64, f64)> {
        self.partition_limits()
            .map(|limits| (limits.write_units, limits.read_units))
    }

    /// Reads settings through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let d = LocalSettings::default();
        let aws_conditions = on_off(&lookup, "AWS_CONDITIONS")?;
        // Each part's own variable wins; unset, it follows AWS_CONDITIONS.
        let part = |name: &'static str| -> Result<bool, ConfigError> {
            match lookup(name) {
                None => Ok(aws_conditions),
                Some(_) => on_off(&lookup, name),
            }
        };
        Ok(LocalSettings {
            http_port: parsed(&lookup, "HTTP_PORT")?.unwrap_or(d.http_port),
            ws_port: parsed(&lookup, "WS_PORT")?.unwrap_or(d.ws_port),
            aws_port: parsed(&lookup, "AWS_PORT")?.unwrap_or(d.aws_port),
            order_queue_name: lookup("ORDER_QUEUE_NAME").unwrap_or(d.order_queue_name),
            order_dlq_name: lookup("ORDER_DLQ_NAME").unwrap_or(d.order_dlq_name),
            queue_visibility_timeout: parsed::<u64>(&lookup, "ORDER_QUEUE_VISIBILITY_SECONDS")?
                .map_or(d.queue_visibility_timeout, Duration::from_secs),
            max_receive_count: parsed(&lookup, "ORDER_QUEUE_MAX_RECEIVE_COUNT")?
                .unwrap_or(d.max_receive_count)
                .max(1),
            hold_sweep_interval: parsed::<u64>(&lookup, "HOLD_SWEEP_SECONDS")?
                .map_or(d.hold_sweep_interval, Duration::from_secs)
                .max(Duration::from_secs(1)),
            consumer_max_concurrency: match parsed::<usize>(
                &lookup,
                "CONSUMER_MAXIMUM_CONCURRENCY",
            )? {
                None => d.consumer_max_concurrency,
                Some(n @ 2..=1000) => n,
                Some(_) => {
                    return Err(ConfigError {
                        name: "CONSUMER_MAXIMUM_CONCURRENCY",
                        reason: "must be 2 to 1000, as the event source's MaximumConcurrency"
                            .into(),
                    });
                }
            },
            meter_capacity: on_off(&lookup, "METER_CAPACITY")?,
            aws_conditions,
            latency: match lookup("AWS_LATENCY") {
                None => aws_conditions.then(LatencyTable::default),
                Some(spec) => LatencyTable::parse(&spec).map_err(|reason| ConfigError {
                    name: "AWS_LATENCY",
                    reason,
                })?,
            },
            transaction_conflicts: part("AWS_TRANSACTION_CONFLICTS")?,
            partition_limit: part("PARTITION_LIMIT")?,
            partition_write_units: match parsed::<u32>(&lookup, "PARTITION_WRITE_UNITS")? {
                None => d.partition_write_units,
                Some(0) => {
                    return Err(ConfigError {
                        name: "PARTITION_WRITE_UNITS",
                        reason: "must be at least 1 write unit per second".into(),
                    });
                }
                Some(units) => units,
            },
            partition_read_units: match parsed::<u32>(&lookup, "PARTITION_READ_UNITS")? {
                None => d.partition_read_units,
                Some(0) => {
                    return Err(ConfigError {
                        name: "PARTITION_READ_UNITS",
                        reason: "must be at least 1 read unit per second".into(),
                    });
                }
                Some(units) => units,
            },
            partition_scale: match parsed::<f64>(&lookup, "PARTITION_SCALE")? {
                None => d.partition_scale,
                Some(scale) if scale.is_finite() && scale > 0.0 => scale,
                Some(_) => {
                    return Err(ConfigError {
                        name: "PARTITION_SCALE",
                        reason: "must be a number above 0 (1.0: AWS's limits)".into(),
                    });
                }
            },
            cors_allow_origins: lookup("CORS_ALLOW_ORIGINS")
                .map(|origins| {
                    origins
                        .split(',')
                        .map(str::trim)
                        .filter(|origin| !origin.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or(d.cors_allow_origins),
            data_dir: lookup("LOCAL_DATA_DIR").map(PathBuf::from).or(d.data_dir),
            request_read_timeout: d.request_read_timeout,
        })
    }
}

/// The variables [`LocalSettings::with_conditions_from`] reads.
const CONDITION_VARIABLES: [&str; 7] = [
    "AWS_CONDITIONS",
    "AWS_LATENCY",
    "AWS_TRANSACTION_CONFLICTS",
    "PARTITION_LIMIT",
    "PARTITION_WRITE_UNITS",
    "PARTITION_READ_UNITS",
    "PARTITION_SCALE",
];

/// `on` or `off` (the default when unset).
fn on_off(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<bool, ConfigError> {
    match lookup(name).as_deref() {
        None | Some("off") => Ok(false),
        Some("on") => Ok(true),
        Some(_) => Err(ConfigError {
            name,
            reason: "must be on or off".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_environment_gives_the_defaults_and_bad_ports_are_reported() {
        assert_eq!(
            LocalSettings::from_lookup(|_| None).unwrap(),
            LocalSettings::default()
        );
        assert!(
            LocalSettings::from_lookup(|name| (name == "HTTP_PORT").then(|| "x".into())).is_err()
        );
    }

    #[test]
    fn cors_origins_are_a_comma_separated_list() {
        let settings = LocalSettings::from_lookup(|name| {
            (name == "CORS_ALLOW_ORIGINS")
                .then(|| " https://a.example , http://localhost:5173,".into())
        })
        .unwrap();

        assert_eq!(
            settings.cors_allow_origins,
            ["https://a.example", "http://localhost:5173"]
        );
    }

    #[test]
    fn the_data_dir_is_in_memory_unless_local_data_dir_names_one() {
        assert_eq!(LocalSettings::from_lookup(|_| None).unwrap().data_dir, None);

        let settings = LocalSettings::from_lookup(|name| {
            (name == "LOCAL_DATA_DIR").then(|| ".local-data".into())
        })
        .unwrap();

        assert_eq!(settings.data_dir, Some(PathBuf::from(".local-data")));
    }

    #[test]
    fn the_partition_limit_is_off_by_default_and_its_rate_must_be_positive() {
        let defaults = LocalSettings::from_lookup(|_| None).unwrap();
        assert!(!defaults.partition_limit);
        assert_eq!(defaults.partition_write_units, 1000);

        let on = LocalSettings::from_lookup(|name| match name {
            "PARTITION_LIMIT" => Some("on".into()),
            "PARTITION_WRITE_UNITS" => Some("50".into()),
            _ => None,
        })
        .unwrap();
        assert!(on.partition_limit);
        assert_eq!(on.partition_write_units, 50);

        for (name, value) in [("PARTITION_LIMIT", "yes"), ("PARTITION_WRITE_UNITS", "0")] {
            let error =
                LocalSettings::from_lookup(|n| (n == name).then(|| value.into())).unwrap_err();
            assert_eq!(error.name, name);
        }
    }

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn aws_conditions_turn_on_every_part_and_each_part_can_be_set_alone() {
        let off = LocalSettings::from_lookup(|_| None).unwrap();
        assert!(!off.aws_conditions && !off.transaction_conflicts && !off.partition_limit);
        assert_eq!(off.latency, None);
        assert_eq!(off.partition_limits(), None);

        let on = LocalSettings::from_lookup(env(&[("AWS_CONDITIONS", "on")])).unwrap();
        assert!(on.transaction_conflicts && on.partition_limit);
        assert_eq!(on.latency, Some(LatencyTable::default()));
        assert_eq!(on.effective_partition_units(), Some((1000.0, 3000.0)));

        let but = LocalSettings::from_lookup(env(&[
            ("AWS_CONDITIONS", "on"),
            ("AWS_LATENCY", "off"),
            ("PARTITION_LIMIT", "off"),
        ]))
        .unwrap();
        assert!(but.transaction_conflicts);
        assert_eq!(but.latency, None);
        assert!(!but.partition_limit);

        let alone = LocalSettings::from_lookup(env(&[
            ("AWS_TRANSACTION_CONFLICTS", "on"),
            ("AWS_LATENCY", "dynamodb.read=30/31"),
        ]))
        .unwrap();
        assert!(alone.transaction_conflicts && !alone.partition_limit);
        let read = alone
            .latency
            .unwrap()
            .get(crate::conditions::latency::LatencyClass::DynamodbRead);
        assert_eq!((read.median_ms, read.p99_ms), (30.0, 31.0));
    }

    #[test]
    fn the_scale_multiplies_both_per_key_limits() {
        let scaled = LocalSettings::from_lookup(env(&[
            ("PARTITION_LIMIT", "on"),
            ("PARTITION_SCALE", "0.02"),
        ]))
        .unwrap();

        let (write, read) = scaled.effective_partition_units().unwrap();
        assert!((write - 20.0).abs() < 1e-9 && (read - 60.0).abs() < 1e-9);
    }

    #[test]
    fn bad_condition_values_name_their_variable() {
        for (name, value) in [
            ("AWS_CONDITIONS", "yes"),
            ("AWS_LATENCY", "dynamodb.read=9/3"),
            ("AWS_LATENCY", "nosuch=1/2"),
            ("AWS_TRANSACTION_CONFLICTS", "1"),
            ("PARTITION_READ_UNITS", "0"),
            ("PARTITION_SCALE", "0"),
            ("PARTITION_SCALE", "-1"),
            ("PARTITION_SCALE", "x"),
        ] {
            let error =
                LocalSettings::from_lookup(|n| (n == name).then(|| value.into())).unwrap_err();
            assert_eq!(error.name, name, "{name}={value}");
        }
    }

    #[test]
    fn a_test_stack_takes_the_conditions_from_the_environment_and_keeps_its_ports() {
        let settings = LocalSettings::ephemeral()
            .with_conditions_from(env(&[("AWS_CONDITIONS", "on"), ("HTTP_PORT", "3000")]))
            .unwrap();

        assert_eq!(settings.http_port, 0);
        assert!(settings.aws_conditions && settings.partition_limit);
    }
}
