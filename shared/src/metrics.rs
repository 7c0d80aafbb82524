//! Business metrics in CloudWatch Embedded Metric Format (EMF): the one list of them
//! ([`BusinessMetric::ALL`]), the per-invocation tally the use cases add to, and the lines an
//! invocation writes to stdout, which Lambda ships to CloudWatch Logs and CloudWatch turns into
//! metrics with no API call.
//!
//! An entry point (a Lambda's `service_fn`, the local gateway, the local event source and
//! schedules) runs each invocation inside [`Metrics::measure`]: the use cases call [`count`],
//! [`refused`] and [`settle_lag`], which add to that invocation's own tally (a task-local, so no
//! lock is shared between invocations), and when the invocation ends its tally becomes at most a
//! few lines handed to the [`MetricsSink`]. Outside a measured invocation (a unit test that does
//! not ask, a benchmark) these calls do nothing. Tests read a tally with [`collect`].

use std::cell::RefCell;
use std::future::Future;
use std::io::Write;
use std::sync::Arc;

use serde_json::{Map, Value, json};

/// The unit CloudWatch stores a metric in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Occurrences.
    Count,
    /// A duration.
    Milliseconds,
}

impl Unit {
    /// EMF's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// Declares [`BusinessMetric`] from its one list: variant, CloudWatch name, unit, meaning.
macro_rules! business_metrics {
    ($($(#[$doc:meta])* $variant:ident = $name:literal, $unit:ident;)*) => {
        /// Every business metric the functions write. The dashboard, the alarms and the docs name
        /// these and nothing else (their drift tests read this list).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum BusinessMetric {
            $($(#[$doc])* $variant,)*
        }

        impl BusinessMetric {
            /// Every one, in the list's order.
            pub const ALL: [BusinessMetric; [$($name),*].len()] = [$(Self::$variant),*];

            /// Its CloudWatch metric name.
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }

            /// Its unit.
            pub fn unit(self) -> Unit {
                match self {
                    $(Self::$variant => Unit::$unit,)*
                }
            }
        }
    };
}

business_metrics! {
    /// `POST /orders` answered 201: an order was placed.
    OrdersPlaced = "OrdersPlaced", Count;
    /// `POST /orders` answered 200 with the order a previous request with the same key placed.
    OrdersReplayed = "OrdersReplayed", Count;
    /// `POST /orders` refused, with dimension `Reason`: the `error_code` the client got.
    OrdersRefused = "OrdersRefused", Count;
    /// DynamoDB transactions cancelled because another transaction held an item.
    TransactionConflicts = "TransactionConflicts", Count;
    /// DynamoDB calls (or transaction items) refused for throughput.
    Throttles = "Throttles", Count;
    /// DynamoDB calls sent again after a conflict, a throttle or no answer.
    Retries = "Retries", Count;
    /// Holds placed (`POST /holds` answered 201).
    HoldsPlaced = "HoldsPlaced", Count;
    /// Holds an order consumed.
    HoldsConsumed = "HoldsConsumed", Count;
    /// Holds the sweeper expired (their units back in stock).
    HoldsExpired = "HoldsExpired", Count;
    /// Orders settled PAID.
    PaymentsPaid = "PaymentsPaid", Count;
    /// Orders settled FAILED (stock restored).
    PaymentsFailed = "PaymentsFailed", Count;
    /// From an order's creation (its 201) to its settlement, one value per order settled.
    SettleLag = "SettleLag", Milliseconds;
    /// Order events delivered to a WebSocket connection.
    PushesSent = "PushesSent", Count;
    /// Pushes answered 410 Gone (the connection is forgotten).
    PushesGone = "PushesGone", Count;
    /// Pushes that failed otherwise.
    PushesFailed = "PushesFailed", Count;
    /// Order messages the reconciler sent again (unsent, stuck, or back from the dead-letter queue).
    ReconcilerResends = "ReconcilerResends", Count;
    /// Payment webhooks applied to their order.
    WebhooksApplied = "WebhooksApplied", Count;
    /// Payment webhooks that came before their order (stored, applied when it commits).
    WebhooksEarly = "WebhooksEarly", Count;
    /// Payment webhooks refused for a missing, invalid or stale signature.
    WebhooksRefused = "WebhooksRefused", Count;
}

/// The dimension of [`BusinessMetric::OrdersRefused`].
pub const REASON_DIMENSION: &str = "Reason";

/// Most values of one metric in one EMF line (the format's limit).
const MAX_VALUES_PER_LINE: usize = 100;

/// What one invocation counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    counts: [u64; BusinessMetric::ALL.len()],
    /// `OrdersRefused` per reason (an `error_code` from the one table in `api::error`).
    refusals: Vec<(&'static str, u64)>,
    /// `SettleLag` values, in milliseconds.
    settle_lags: Vec<f64>,
}

impl Tally {
    /// The count of `metric` (for `OrdersRefused`, over every reason; for `SettleLag`, the number
    /// of values).
    pub fn count(&self, metric: BusinessMetric) -> u64 {
        match metric {
            BusinessMetric::OrdersRefused => self.refusals.iter().map(|(_, n)| n).sum(),
            BusinessMetric::SettleLag => self.settle_lags.len() as u64,
            other => self.counts[other as usize],
        }
    }

    /// Refusals with `reason`.
    pub fn refusals(&self, reason: &str) -> u64 {
        self.refusals
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n)
    }

    /// The settle lags recorded, in milliseconds.
    pub fn settle_lags(&self) -> &[f64] {
        &self.settle_lags
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.counts.iter().all(|n| *n == 0)
            && self.refusals.is_empty()
            && self.settle_lags.is_empty()
    }

    fn add(&mut self, metric: BusinessMetric, n: u64) {
        self.counts[metric as usize] += n;
    }

    fn add_refusal(&mut self, reason: &'static str) {
        match self.refusals.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => *n += 1,
            None => self.refusals.push((reason, 1)),
        }
    }

    /// The EMF lines of this tally in `namespace` at `timestamp_ms`: one for the metrics without
    /// dimensions, one per refusal reason (a line carries one value per dimension). None when
    /// nothing was counted.
    pub fn emf_lines(&self, namespace: &str, timestamp_ms: i64) -> Vec<String> {
        let mut lines = Vec::new();
        let plain: Vec<(BusinessMetric, Value)> = BusinessMetric::ALL
            .into_iter()
            .filter(|m| !matches!(m, BusinessMetric::OrdersRefused | BusinessMetric::SettleLag))
            .filter(|m| self.counts[*m as usize] > 0)
            .map(|m| (m, json!(self.counts[m as usize])))
            .collect();
        let mut lags = self.settle_lags.chunks(MAX_VALUES_PER_LINE);
        let first_lags = lags.next();
        if !plain.is_empty() || first_lags.is_some() {
            let mut metrics = plain;
            if let Some(values) = first_lags {
                metrics.push((BusinessMetric::SettleLag, lag_value(values)));
            }
            lines.push(emf_line(namespace, timestamp_ms, None, &metrics));
        }
        for values in lags {
            let metrics = [(BusinessMetric::SettleLag, lag_value(values))];
            lines.push(emf_line(namespace, timestamp_ms, None, &metrics));
        }
        for (reason, n) in &self.refusals {
            let metrics = [(BusinessMetric::OrdersRefused, json!(n))];
            lines.push(emf_line(namespace, timestamp_ms, Some(reason), &metrics));
        }
        lines
    }
}

/// One value as a number, several as EMF's array of values.
fn lag_value(values: &[f64]) -> Value {
    match values {
        [one] => json!(one),
        many => json!(many),
    }
}

/// One EMF object: the directive naming `metrics` (with the `Reason` dimension when `reason` is
/// given), and their values at the root.
fn emf_line(
    namespace: &str,
    timestamp_ms: i64,
    reason: Option<&str>,
    metrics: &[(BusinessMetric, Value)],
) -> String {
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|(m, _)| json!({ "Name": m.name(), "Unit": m.unit().name() }))
        .collect();
    let dimensions = match reason {
        Some(_) => json!([[REASON_DIMENSION]]),
        None => json!([[]]),
    };
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": dimensions,
                "Metrics": definitions,
            }],
        }),
    );
    if let Some(reason) = reason {
        root.insert(REASON_DIMENSION.into(), json!(reason));
    }
    for (metric, value) in metrics {
        root.insert(metric.name().into(), value.clone());
    }
    Value::Object(root).to_string()
}

tokio::task_local! {
    /// The tally of the invocation this task runs, when one is measured.
    static TALLY: RefCell<Tally>;
}

fn with_tally(f: impl FnOnce(&mut Tally)) {
    // Outside a measured invocation there is nothing to add to.
    let _ = TALLY.try_with(|tally| f(&mut tally.borrow_mut()));
}

/// Adds one to `metric` in the current invocation's tally.
pub fn count(metric: BusinessMetric) {
    add(metric, 1);
}

/// Adds `n` to `metric` in the current invocation's tally. `OrdersRefused` and `SettleLag` have
/// their own functions ([`refused`], [`settle_lag`]) and are ignored here.
pub fn add(metric: BusinessMetric, n: u64) {
    if n == 0
        || matches!(
            metric,
            BusinessMetric::OrdersRefused | BusinessMetric::SettleLag
        )
    {
        return;
    }
    with_tally(|tally| tally.add(metric, n));
}

/// One `POST /orders` refused with `error_code` (one of the codes of the error table, so the
/// dimension's values are few).
pub fn refused(error_code: &'static str) {
    with_tally(|tally| tally.add_refusal(error_code));
}

/// One order settled `lag` after its creation.
pub fn settle_lag(lag: chrono::TimeDelta) {
    let millis = lag.num_milliseconds().max(0) as f64;
    with_tally(|tally| tally.settle_lags.push(millis));
}

/// Runs `invocation` with a tally of its own and returns what it counted, writing nothing.
pub async fn collect<F: Future>(invocation: F) -> (F::Output, Tally) {
    TALLY
        .scope(RefCell::new(Tally::default()), async move {
            let output = invocation.await;
            let tally = TALLY.with(|tally| tally.take());
            (output, tally)
        })
        .await
}

/// Where EMF lines go.
pub trait MetricsSink: Send + Sync + 'static {
    /// Writes one line (without its newline).
    fn write_line(&self, line: &str);
}

/// Standard output, which Lambda ships to the function's CloudWatch log group.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stdout;

impl MetricsSink for Stdout {
    fn write_line(&self, line: &str) {
        // One write per line, under stdout's lock, so that lines of concurrent invocations never
        // interleave with each other or with the log lines.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

/// The namespace and the sink of a process's metrics.
#[derive(Clone)]
pub struct Metrics {
    namespace: Arc<str>,
    sink: Arc<dyn MetricsSink>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// Lines in `namespace` (`METRICS_NAMESPACE`) written to `sink`.
    pub fn new(namespace: &str, sink: Arc<dyn MetricsSink>) -> Self {
        Metrics {
            namespace: namespace.into(),
            sink,
        }
    }

    /// Lines in `namespace` written to standard output: what a Lambda function uses.
    pub fn to_stdout(namespace: &str) -> Self {
        Self::new(namespace, Arc::new(Stdout))
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Runs one invocation and then writes what it counted: per invocation rather than per
    /// outcome, so a batch of ten payments is one line, not ten.
    pub async fn measure<F: Future>(&self, invocation: F) -> F::Output {
        let (output, tally) = collect(invocation).await;
        self.write(&tally);
        output
    }

    /// Writes `tally`'s lines, stamped now.
    pub fn write(&self, tally: &Tally) {
        if tally.is_empty() {
            return;
        }
        let now = chrono::Utc::now().timestamp_millis();
        for line in tally.emf_lines(&self.namespace, now) {
            self.sink.write_line(&line);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Lines(Mutex<Vec<String>>);

    impl MetricsSink for Lines {
        fn write_line(&self, line: &str) {
            self.0.lock().unwrap().push(line.to_owned());
        }
    }

    #[test]
    fn every_metric_has_a_distinct_name_and_only_settle_lag_is_a_duration() {
        let mut names: Vec<&str> = BusinessMetric::ALL.iter().map(|m| m.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), BusinessMetric::ALL.len());
        for metric in BusinessMetric::ALL {
            let expected = match metric {
                BusinessMetric::SettleLag => Unit::Milliseconds,
                _ => Unit::Count,
            };
            assert_eq!(metric.unit(), expected, "{}", metric.name());
        }
    }

    #[tokio::test]
    async fn an_invocation_writes_its_counts_as_one_line_and_one_per_refusal_reason() {
        let lines = Arc::new(Lines::default());
        let metrics = Metrics::new("OrderProcessing/test", lines.clone());

        metrics
            .measure(async {
                count(BusinessMetric::OrdersPlaced);
                count(BusinessMetric::OrdersPlaced);
                refused("INSUFFICIENT_STOCK");
                settle_lag(chrono::TimeDelta::milliseconds(250));
            })
            .await;

        let lines = lines.0.lock().unwrap();
        assert_eq!(lines.len(), 2, "{lines:?}");
        let plain: Value = serde_json::from_str(&lines[0]).unwrap();
        let directive = &plain["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "OrderProcessing/test");
        assert_eq!(directive["Dimensions"], json!([[]]));
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "OrdersPlaced", "Unit": "Count"}, {"Name": "SettleLag", "Unit": "Milliseconds"}])
        );
        assert_eq!(plain["OrdersPlaced"], 2);
        assert_eq!(plain["SettleLag"], 250.0);
        let refusal: Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(
            refusal["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Reason"]])
        );
        assert_eq!(refusal["Reason"], "INSUFFICIENT_STOCK");
        assert_eq!(refusal["OrdersRefused"], 1);
    }

    #[tokio::test]
    async fn an_invocation_that_counted_nothing_writes_nothing_and_outside_one_nothing_counts() {
        let lines = Arc::new(Lines::default());
        let metrics = Metrics::new("OrderProcessing", lines.clone());

        count(BusinessMetric::OrdersPlaced);
        metrics.measure(async {}).await;

        assert!(lines.0.lock().unwrap().is_empty());
    }

    #[test]
    fn more_than_a_hundred_settle_lags_are_split_over_lines() {
        let tally = Tally {
            settle_lags: (0..150).map(f64::from).collect(),
            ..Tally::default()
        };

        let lines = tally.emf_lines("OrderProcessing", 0);

        let sizes: Vec<usize> = lines
            .iter()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["SettleLag"]
                    .as_array()
                    .unwrap()
                    .len()
            })
            .collect();
        assert_eq!(sizes, [100, 50]);
    }
}
