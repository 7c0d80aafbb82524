//! AWS's service latency on the embedded endpoint (`AWS_LATENCY`): a log-normal delay per service
//! and operation class, given by its median and its 99th percentile, slept with
//! `tokio::time::sleep` so one delayed request never holds up another. The defaults and where
//! they come from are in docs/aws-conditions.md.

use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value, json};

/// The standard normal's 99th percentile: `p99 = median · e^(σ · Z99)`.
const Z99: f64 = 2.326_347_874;
/// The standard normal's 99.9th percentile, where a sample is clipped on the slow side.
const Z999: f64 = 3.090_232_306;

/// A family of requests that share a latency distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LatencyClass {
    /// GetItem, BatchGetItem.
    DynamodbRead,
    /// Query, Scan.
    DynamodbQuery,
    /// PutItem, UpdateItem, DeleteItem, BatchWriteItem.
    DynamodbWrite,
    /// TransactWriteItems, TransactGetItems.
    DynamodbTransact,
    /// Every other DynamoDB operation (tables, PartiQL, descriptions).
    DynamodbOther,
    /// SendMessage, SendMessageBatch.
    SqsSend,
    /// ReceiveMessage (a long poll's wait comes on top).
    SqsReceive,
    /// DeleteMessage, DeleteMessageBatch.
    SqsDelete,
    /// Every other SQS operation.
    SqsOther,
    /// API Gateway's `PostToConnection` on the WebSocket management API.
    ApigwPostToConnection,
}

impl LatencyClass {
    /// Every class, in the order the report lists them.
    pub const ALL: [LatencyClass; 10] = [
        LatencyClass::DynamodbRead,
        LatencyClass::DynamodbQuery,
        LatencyClass::DynamodbWrite,
        LatencyClass::DynamodbTransact,
        LatencyClass::DynamodbOther,
        LatencyClass::SqsSend,
        LatencyClass::SqsReceive,
        LatencyClass::SqsDelete,
        LatencyClass::SqsOther,
        LatencyClass::ApigwPostToConnection,
    ];

    /// The name `AWS_LATENCY` and `/_local/conditions` use.
    pub fn name(self) -> &'static str {
        match self {
            LatencyClass::DynamodbRead => "dynamodb.read",
            LatencyClass::DynamodbQuery => "dynamodb.query",
            LatencyClass::DynamodbWrite => "dynamodb.write",
            LatencyClass::DynamodbTransact => "dynamodb.transact",
            LatencyClass::DynamodbOther => "dynamodb.other",
            LatencyClass::SqsSend => "sqs.send",
            LatencyClass::SqsReceive => "sqs.receive",
            LatencyClass::SqsDelete => "sqs.delete",
            LatencyClass::SqsOther => "sqs.other",
            LatencyClass::ApigwPostToConnection => "apigw.post_to_connection",
        }
    }

    /// The default `(median, p99)` in milliseconds; docs/aws-conditions.md gives the source or
    /// the assumption behind each.
    pub fn default_ms(self) -> (f64, f64) {
        match self {
            LatencyClass::DynamodbRead => (4.0, 15.0),
            LatencyClass::DynamodbQuery => (6.0, 20.0),
            LatencyClass::DynamodbWrite => (5.0, 18.0),
            LatencyClass::DynamodbTransact => (14.0, 40.0),
            LatencyClass::DynamodbOther => (5.0, 20.0),
            LatencyClass::SqsSend => (8.0, 25.0),
            LatencyClass::SqsReceive => (8.0, 25.0),
            LatencyClass::SqsDelete => (6.0, 20.0),
            LatencyClass::SqsOther => (8.0, 25.0),
            LatencyClass::ApigwPostToConnection => (12.0, 35.0),
        }
    }

    /// The class of a request by its `X-Amz-Target` (`DynamoDB_20120810.GetItem`,
    /// `AmazonSQS.SendMessage`); a missing or unknown target is DynamoDB's "other".
    pub(crate) fn of_target(target: Option<&str>) -> LatencyClass {
        let Some((service, operation)) = target.and_then(|t| t.split_once('.')) else {
            return LatencyClass::DynamodbOther;
        };
        if service == "AmazonSQS" {
            return match operation {
                "SendMessage" | "SendMessageBatch" => LatencyClass::SqsSend,
                "ReceiveMessage" => LatencyClass::SqsReceive,
                "DeleteMessage" | "DeleteMessageBatch" => LatencyClass::SqsDelete,
                _ => LatencyClass::SqsOther,
            };
        }
        match operation {
            "GetItem" | "BatchGetItem" => LatencyClass::DynamodbRead,
            "Query" | "Scan" => LatencyClass::DynamodbQuery,
            "PutItem" | "UpdateItem" | "DeleteItem" | "BatchWriteItem" => {
                LatencyClass::DynamodbWrite
            }
            "TransactWriteItems" | "TransactGetItems" => LatencyClass::DynamodbTransact,
            _ => LatencyClass::DynamodbOther,
        }
    }

    fn from_name(name: &str) -> Option<LatencyClass> {
        LatencyClass::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl fmt::Display for LatencyClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One class's distribution: log-normal with this median and 99th percentile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Distribution {
    /// Median in milliseconds.
    pub median_ms: f64,
    /// 99th percentile in milliseconds (at least the median).
    pub p99_ms: f64,
}

impl Distribution {
    /// The delay at standard-normal quantile `z`, clipped to the 1st and 99.9th percentiles so
    /// that no sample is absurdly short or long.
    pub fn at(self, z: f64) -> Duration {
        if self.median_ms <= 0.0 {
            return Duration::ZERO;
        }
        let sigma = (self.p99_ms / self.median_ms).ln() / Z99;
        let ms = self.median_ms * (sigma * z.clamp(-Z99, Z999)).exp();
        Duration::from_secs_f64(ms / 1000.0)
    }

    /// The fastest sample: the 1st percentile.
    pub fn floor(self) -> Duration {
        self.at(-Z99)
    }
}

/// The distribution of every class: the defaults with `AWS_LATENCY`'s entries in their place.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyTable {
    classes: Vec<(LatencyClass, Distribution)>,
}

impl Default for LatencyTable {
    fn default() -> Self {
        LatencyTable {
            classes: LatencyClass::ALL
                .into_iter()
                .map(|class| {
                    let (median_ms, p99_ms) = class.default_ms();
                    (class, Distribution { median_ms, p99_ms })
                })
                .collect(),
        }
    }
}

impl LatencyTable {
    /// `AWS_LATENCY`'s value: `off` (`None`), `on` (the defaults), or entries
    /// `class=median/p99` (milliseconds) separated by commas, each replacing its class's default,
    /// e.g. `dynamodb.transact=24/80,sqs.send=8/20`. The error says what is wrong.
    pub fn parse(spec: &str) -> Result<Option<LatencyTable>, String> {
        match spec.trim() {
            "off" => return Ok(None),
            "on" => return Ok(Some(LatencyTable::default())),
            _ => {}
        }
        let mut table = LatencyTable::default();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, figures) = entry
                .split_once('=')
                .ok_or_else(|| format!("`{entry}` is not class=median/p99"))?;
            let class = LatencyClass::from_name(name.trim()).ok_or_else(|| {
                let known: Vec<&str> = LatencyClass::ALL.iter().map(|c| c.name()).collect();
                format!("unknown class `{name}` (known: {})", known.join(", "))
            })?;
            let (median, p99) = figures
                .split_once('/')
                .ok_or_else(|| format!("`{entry}` is not class=median/p99"))?;
            let number = |text: &str| -> Result<f64, String> {
                text.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|ms| ms.is_finite() && *ms >= 0.0)
                    .ok_or_else(|| format!("`{text}` in `{entry}` is not a number of ms"))
            };
            let (median_ms, p99_ms) = (number(median)?, number(p99)?);
            if p99_ms < median_ms {
                return Err(format!("`{entry}`: the p99 is below the median"));
            }
            table.set(class, Distribution { median_ms, p99_ms });
        }
        Ok(Some(table))
    }

    fn set(&mut self, class: LatencyClass, distribution: Distribution) {
        for (c, d) in &mut self.classes {
            if *c == class {
                *d = distribution;
            }
        }
    }

    /// One class's distribution.
    pub fn get(&self, class: LatencyClass) -> Distribution {
        self.classes
            .iter()
            .find(|(c, _)| *c == class)
            .map(|(_, d)| *d)
            .unwrap_or(Distribution {
                median_ms: 0.0,
                p99_ms: 0.0,
            })
    }

    /// The delay of one request of `class` at standard-normal quantile `z`. A transaction is a
    /// two-phase commit over the items it writes, so it never answers faster than a single-item
    /// write's median, whatever the settings.
    pub fn delay(&self, class: LatencyClass, z: f64) -> Duration {
        let delay = self.get(class).at(z);
        if class == LatencyClass::DynamodbTransact {
            return delay.max(self.get(LatencyClass::DynamodbWrite).at(0.0));
        }
        delay
    }

    /// `{"dynamodb.read": {"median_ms": .., "p99_ms": ..}, ...}`.
    pub(crate) fn report(&self) -> Value {
        let classes: Map<String, Value> = self
            .classes
            .iter()
            .map(|(class, d)| {
                (
                    class.name().to_owned(),
                    json!({"median_ms": d.median_ms, "p99_ms": d.p99_ms}),
                )
            })
            .collect();
        Value::Object(classes)
    }
}

/// A standard-normal sample (Box–Muller).
pub(crate) fn standard_normal() -> f64 {
    let u1: f64 = rand::random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rand::random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(duration: Duration) -> f64 {
        duration.as_secs_f64() * 1000.0
    }

    #[test]
    fn a_distribution_has_its_median_and_p99_and_is_clipped() {
        let d = Distribution {
            median_ms: 10.0,
            p99_ms: 40.0,
        };

        assert!((ms(d.at(0.0)) - 10.0).abs() < 1e-6);
        assert!((ms(d.at(Z99)) - 40.0).abs() < 1e-6);
        assert!((ms(d.at(-50.0)) - 2.5).abs() < 1e-6, "1st percentile");
        assert!(ms(d.at(50.0)) < 70.0, "clipped at the 99.9th percentile");
        assert_eq!(d.floor(), d.at(-Z99));
    }

    #[test]
    fn a_spec_replaces_only_the_classes_it_names() {
        let table = LatencyTable::parse("dynamodb.transact=24/80, sqs.send=8/20")
            .unwrap()
            .unwrap();

        let transact = table.get(LatencyClass::DynamodbTransact);
        assert_eq!((transact.median_ms, transact.p99_ms), (24.0, 80.0));
        assert_eq!(table.get(LatencyClass::SqsSend).p99_ms, 20.0);
        assert_eq!(
            table.get(LatencyClass::DynamodbRead).median_ms,
            LatencyClass::DynamodbRead.default_ms().0
        );
        assert_eq!(LatencyTable::parse("off").unwrap(), None);
        assert_eq!(
            LatencyTable::parse("on").unwrap(),
            Some(LatencyTable::default())
        );
    }

    #[test]
    fn bad_specs_are_refused_with_a_reason() {
        for spec in [
            "dynamodb.read",
            "dynamo.read=1/2",
            "dynamodb.read=5",
            "dynamodb.read=x/2",
            "dynamodb.read=10/5",
            "dynamodb.read=-1/5",
        ] {
            assert!(LatencyTable::parse(spec).is_err(), "{spec} accepted");
        }
    }

    #[test]
    fn a_transaction_is_never_faster_than_a_single_write_median() {
        let table = LatencyTable::parse("dynamodb.transact=1/2,dynamodb.write=10/20")
            .unwrap()
            .unwrap();

        assert!(ms(table.delay(LatencyClass::DynamodbTransact, 0.0)) >= 10.0 - 1e-6);
        let defaults = LatencyTable::default();
        for z in [-5.0, -1.0, 0.0, 1.0] {
            assert!(
                defaults.delay(LatencyClass::DynamodbTransact, z)
                    >= defaults.delay(LatencyClass::DynamodbWrite, 0.0)
            );
        }
    }

    #[test]
    fn targets_fall_in_their_classes() {
        let of = |t| LatencyClass::of_target(Some(t));
        assert_eq!(of("DynamoDB_20120810.GetItem"), LatencyClass::DynamodbRead);
        assert_eq!(of("DynamoDB_20120810.Scan"), LatencyClass::DynamodbQuery);
        assert_eq!(
            of("DynamoDB_20120810.BatchWriteItem"),
            LatencyClass::DynamodbWrite
        );
        assert_eq!(
            of("DynamoDB_20120810.TransactGetItems"),
            LatencyClass::DynamodbTransact
        );
        assert_eq!(
            of("DynamoDB_20120810.CreateTable"),
            LatencyClass::DynamodbOther
        );
        assert_eq!(of("AmazonSQS.ReceiveMessage"), LatencyClass::SqsReceive);
        assert_eq!(of("AmazonSQS.DeleteMessageBatch"), LatencyClass::SqsDelete);
        assert_eq!(of("AmazonSQS.GetQueueUrl"), LatencyClass::SqsOther);
        assert_eq!(LatencyClass::of_target(None), LatencyClass::DynamodbOther);
    }
}
