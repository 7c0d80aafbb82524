//! The business metrics as CloudWatch would show them, from the very EMF lines the functions write:
//! the stack's [`MetricsSink`] writes each line to stdout (as a Lambda does) and hands the same
//! string to the [`MetricsBoard`], which parses it as EMF and adds its values up. A line that is
//! not valid EMF is counted as malformed, not skipped silently. The gateway serves the sums at
//! `GET /_local/metrics` (JSON) and `GET /metrics` (Prometheus text format).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};
use shared::metrics::{BusinessMetric, MetricsSink, Stdout};

/// The sums of every EMF line written so far.
#[derive(Debug, Default)]
pub(crate) struct MetricsBoard {
    sums: Mutex<Sums>,
}

#[derive(Debug, Default)]
struct Sums {
    lines: u64,
    malformed_lines: u64,
    /// Per metric name.
    metrics: BTreeMap<String, Series>,
}

/// One metric: its unit, its statistics over every value, and per dimension `(key, value)`.
#[derive(Debug, Default)]
struct Series {
    unit: String,
    total: Statistics,
    dimensions: BTreeMap<String, BTreeMap<String, Statistics>>,
}

/// What CloudWatch keeps of a metric's values: SampleCount, Sum, Minimum, Maximum.
#[derive(Debug, Default, Clone, Copy)]
struct Statistics {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Statistics {
    fn add(&mut self, value: f64) {
        if self.count == 0 {
            self.min = value;
            self.max = value;
        }
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    fn json(self) -> Value {
        json!({ "sum": self.sum, "count": self.count, "min": self.min, "max": self.max })
    }
}

/// One metric's values in one line.
#[derive(Debug, PartialEq)]
struct Sample {
    name: String,
    unit: String,
    dimensions: Vec<(String, String)>,
    values: Vec<f64>,
}

/// The samples of one EMF line, or why it is not EMF (as CloudWatch would reject it).
fn parse_line(line: &str) -> Result<Vec<Sample>, String> {
    let root: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let root = root.as_object().ok_or("not a JSON object")?;
    let directives = root
        .get("_aws")
        .and_then(|aws| aws.get("CloudWatchMetrics"))
        .and_then(Value::as_array)
        .ok_or("no _aws.CloudWatchMetrics array")?;
    let mut samples = Vec::new();
    for directive in directives {
        directive
            .get("Namespace")
            .and_then(Value::as_str)
            .ok_or("a directive without a Namespace")?;
        let dimension_sets = directive
            .get("Dimensions")
            .and_then(Value::as_array)
            .ok_or("a directive without Dimensions")?;
        let mut dimensions = Vec::new();
        for set in dimension_sets {
            for key in set
                .as_array()
                .ok_or("a dimension set that is not an array")?
            {
                let key = key.as_str().ok_or("a dimension key that is not a string")?;
                let value = root
                    .get(key)
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("dimension {key} has no string value at the root"))?;
                dimensions.push((key.to_owned(), value.to_owned()));
            }
        }
        let metrics = directive
            .get("Metrics")
            .and_then(Value::as_array)
            .ok_or("a directive without Metrics")?;
        for metric in metrics {
            let name = metric
                .get("Name")
                .and_then(Value::as_str)
                .ok_or("a metric without a Name")?;
            let unit = metric.get("Unit").and_then(Value::as_str).unwrap_or("None");
            let values = match root.get(name) {
                Some(Value::Number(n)) => vec![n.as_f64().unwrap_or(0.0)],
                Some(Value::Array(values)) => values
                    .iter()
                    .map(|v| {
                        v.as_f64()
                            .ok_or_else(|| format!("{name}: a value that is not a number"))
                    })
                    .collect::<Result<_, _>>()?,
                _ => return Err(format!("metric {name} has no numeric value at the root")),
            };
            samples.push(Sample {
                name: name.to_owned(),
                unit: unit.to_owned(),
                dimensions: dimensions.clone(),
                values,
            });
        }
    }
    Ok(samples)
}

impl MetricsBoard {
    /// Adds one EMF line (as written) to the sums; a malformed one is counted as such.
    pub(crate) fn add_line(&self, line: &str) {
        let parsed = parse_line(line);
        let mut sums = self.lock();
        sums.lines += 1;
        let samples = match parsed {
            Ok(samples) => samples,
            Err(reason) => {
                sums.malformed_lines += 1;
                tracing::warn!(%reason, line, "a metrics line is not valid EMF");
                return;
            }
        };
        for sample in samples {
            let series = sums.metrics.entry(sample.name).or_default();
            series.unit = sample.unit;
            for value in sample.values {
                series.total.add(value);
                for (key, dimension_value) in &sample.dimensions {
                    series
                        .dimensions
                        .entry(key.clone())
                        .or_default()
                        .entry(dimension_value.clone())
                        .or_default()
                        .add(value);
                }
            }
        }
    }

    /// `GET /_local/metrics`: per metric (every business metric, zero when none was written), its
    /// unit, sum, count, min and max, and the same per dimension value; `reset` starts afresh.
    pub(crate) fn report(&self, reset: bool) -> Value {
        let mut sums = self.lock();
        let mut metrics = Map::new();
        for metric in BusinessMetric::ALL {
            metrics.insert(
                metric.name().to_owned(),
                json!({ "unit": metric.unit().name(), "sum": 0.0, "count": 0, "min": 0.0, "max": 0.0 }),
            );
        }
        for (name, series) in &sums.metrics {
            let mut entry = series.total.json();
            entry["unit"] = json!(series.unit);
            if !series.dimensions.is_empty() {
                entry["dimensions"] = series
                    .dimensions
                    .iter()
                    .map(|(key, values)| {
                        let values: Map<String, Value> = values
                            .iter()
                            .map(|(value, stats)| (value.clone(), stats.json()))
                            .collect();
                        (key.clone(), Value::Object(values))
                    })
                    .collect::<Map<String, Value>>()
                    .into();
            }
            metrics.insert(name.clone(), entry);
        }
        let report = json!({
            "lines": sums.lines,
            "malformed_lines": sums.malformed_lines,
            "metrics": metrics,
        });
        if reset {
            *sums = Sums::default();
        }
        report
    }

    /// `GET /metrics`: the same sums in Prometheus text format: a counter per Count metric
    /// (`orders_refused_total{reason="INSUFFICIENT_STOCK"}`), a summary's `_sum` and `_count` and
    /// a `_max` gauge per duration.
    pub(crate) fn prometheus(&self) -> String {
        let sums = self.lock();
        let mut text = String::new();
        let mut names: BTreeMap<&str, &str> = BusinessMetric::ALL
            .iter()
            .map(|m| (m.name(), m.unit().name()))
            .collect();
        for (name, series) in &sums.metrics {
            names.entry(name.as_str()).or_insert(series.unit.as_str());
        }
        let empty = Series::default();
        for (name, unit) in names {
            let series = sums.metrics.get(name).unwrap_or(&empty);
            let base = format!("order_processing_{}", snake_case(name));
            if unit == "Count" {
                let metric = format!("{base}_total");
                let _ = writeln!(text, "# HELP {metric} {name}, summed from the EMF lines");
                let _ = writeln!(text, "# TYPE {metric} counter");
                let _ = writeln!(text, "{metric} {}", series.total.sum);
                for (key, values) in &series.dimensions {
                    for (value, stats) in values {
                        let label = snake_case(key);
                        let _ = writeln!(text, "{metric}{{{label}=\"{value}\"}} {}", stats.sum);
                    }
                }
            } else {
                let metric = format!("{base}_{}", unit.to_lowercase());
                let _ = writeln!(text, "# HELP {metric} {name} ({unit}), from the EMF lines");
                let _ = writeln!(text, "# TYPE {metric} summary");
                let _ = writeln!(text, "{metric}_sum {}", series.total.sum);
                let _ = writeln!(text, "{metric}_count {}", series.total.count);
                let _ = writeln!(text, "# TYPE {metric}_max gauge");
                let _ = writeln!(text, "{metric}_max {}", series.total.max);
            }
        }
        text
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sums> {
        self.sums.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `OrdersRefused` → `orders_refused`.
fn snake_case(name: &str) -> String {
    let mut snake = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            snake.push('_');
        }
        snake.push(c.to_ascii_lowercase());
    }
    snake
}

/// The local stack's sink: each line to stdout, as a Lambda writes it, and the same string to
/// the board.
#[derive(Debug, Clone)]
pub(crate) struct StdoutAndBoard {
    pub(crate) board: Arc<MetricsBoard>,
}

impl MetricsSink for StdoutAndBoard {
    fn write_line(&self, line: &str) {
        Stdout.write_line(line);
        self.board.add_line(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_summed_per_metric_and_per_dimension_value() {
        let board = MetricsBoard::default();
        board.add_line(
            r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[[]],"Metrics":[{"Name":"OrdersPlaced","Unit":"Count"},{"Name":"SettleLag","Unit":"Milliseconds"}]}]},"OrdersPlaced":2,"SettleLag":[100,300]}"#,
        );
        board.add_line(
            r#"{"_aws":{"Timestamp":2,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["Reason"]],"Metrics":[{"Name":"OrdersRefused","Unit":"Count"}]}]},"Reason":"INSUFFICIENT_STOCK","OrdersRefused":3}"#,
        );

        let report = board.report(false);

        assert_eq!(report["lines"], 2);
        assert_eq!(report["malformed_lines"], 0);
        assert_eq!(report["metrics"]["OrdersPlaced"]["sum"], 2.0);
        assert_eq!(report["metrics"]["SettleLag"]["count"], 2);
        assert_eq!(report["metrics"]["SettleLag"]["max"], 300.0);
        assert_eq!(
            report["metrics"]["OrdersRefused"]["dimensions"]["Reason"]["INSUFFICIENT_STOCK"]["sum"],
            3.0
        );
        assert_eq!(
            report["metrics"]["PushesGone"]["sum"], 0.0,
            "listed at zero"
        );
        let text = board.prometheus();
        assert!(
            text.contains("order_processing_orders_placed_total 2\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "order_processing_orders_refused_total{reason=\"INSUFFICIENT_STOCK\"} 3\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("order_processing_settle_lag_milliseconds_count 2\n"),
            "{text}"
        );
    }

    #[test]
    fn a_line_that_is_not_emf_is_counted_as_malformed() {
        let board = MetricsBoard::default();
        board.add_line(r#"{"OrdersPlaced":1}"#);
        board.add_line(
            r#"{"_aws":{"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["Reason"]],"Metrics":[{"Name":"OrdersRefused"}]}]},"OrdersRefused":1}"#,
        );

        let report = board.report(true);

        assert_eq!(report["malformed_lines"], 2);
        assert_eq!(report["metrics"]["OrdersPlaced"]["sum"], 0.0);
        assert_eq!(board.report(false)["lines"], 0, "reset");
    }

    #[tokio::test]
    async fn what_the_functions_count_reaches_the_board_through_their_own_lines() {
        let board = Arc::new(MetricsBoard::default());
        let metrics = shared::metrics::Metrics::new(
            "OrderProcessing",
            Arc::new(StdoutAndBoard {
                board: Arc::clone(&board),
            }),
        );

        metrics
            .measure(async {
                shared::metrics::count(BusinessMetric::PushesGone);
                shared::metrics::refused("LOCK_CONFLICT");
            })
            .await;

        let report = board.report(false);
        assert_eq!(report["metrics"]["PushesGone"]["sum"], 1.0);
        assert_eq!(
            report["metrics"]["OrdersRefused"]["dimensions"]["Reason"]["LOCK_CONFLICT"]["sum"],
            1.0
        );
    }
}
