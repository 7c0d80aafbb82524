//! Latency histograms and per-second series for the scenarios.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{Value, json};

/// Upper bound of a recorded latency, in microseconds (two minutes).
const MAX_MICROS: u64 = 120_000_000;

/// Bucket upper edges (ms) of the latency histogram chart: powers of two from 0.25 ms.
pub const BUCKET_EDGES_MS: [f64; 16] = [
    0.25,
    0.5,
    1.0,
    2.0,
    4.0,
    8.0,
    16.0,
    32.0,
    64.0,
    128.0,
    256.0,
    512.0,
    1024.0,
    2048.0,
    4096.0,
    f64::INFINITY,
];

/// Latencies at microsecond resolution, three significant digits.
#[derive(Debug, Clone)]
pub struct Latencies(Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

impl Latencies {
    /// An empty histogram.
    pub fn new() -> Self {
        Latencies(
            Histogram::new_with_bounds(1, MAX_MICROS, 3)
                .expect("static histogram bounds are valid"),
        )
    }

    /// Records one latency (clamped to the histogram's range).
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(MAX_MICROS);
        self.0.saturating_record(micros.clamp(1, MAX_MICROS));
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Latencies) {
        // Same bounds on both sides: adding cannot fail.
        let _ = self.0.add(&other.0);
    }

    /// How many latencies were recorded.
    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// The `q` quantile (0..=1) in milliseconds; 0 when empty.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        self.0.value_at_quantile(q) as f64 / 1000.0
    }

    /// The mean in milliseconds.
    pub fn mean_ms(&self) -> f64 {
        self.0.mean() / 1000.0
    }

    /// Counts per bucket of [`BUCKET_EDGES_MS`], as `[{"le_ms": edge, "count": n}]`.
    pub fn buckets(&self) -> Value {
        let mut counts = vec![0u64; BUCKET_EDGES_MS.len()];
        for value in self.0.iter_recorded() {
            let ms = value.value_iterated_to() as f64 / 1000.0;
            let index = BUCKET_EDGES_MS
                .iter()
                .position(|edge| ms <= *edge)
                .unwrap_or(BUCKET_EDGES_MS.len() - 1);
            counts[index] += value.count_at_value();
        }
        Value::Array(
            BUCKET_EDGES_MS
                .iter()
                .zip(counts)
                .map(|(edge, count)| {
                    let le = if edge.is_finite() {
                        json!(edge)
                    } else {
                        json!("inf")
                    };
                    json!({"le_ms": le, "count": count})
                })
                .collect(),
        )
    }
}

/// Events per one-second bucket since a start, each with its latencies.
#[derive(Debug, Default, Clone)]
pub struct PerSecond {
    seconds: Vec<Latencies>,
}

impl PerSecond {
    /// Records an event `since_start` after the start.
    pub fn record(&mut self, since_start: Duration, latency: Duration) {
        let index = since_start.as_secs() as usize;
        if self.seconds.len() <= index {
            self.seconds.resize_with(index + 1, Latencies::new);
        }
        self.seconds[index].record(latency);
    }

    /// Adds `other`'s buckets to these.
    pub fn merge(&mut self, other: &PerSecond) {
        if self.seconds.len() < other.seconds.len() {
            self.seconds
                .resize_with(other.seconds.len(), Latencies::new);
        }
        for (mine, theirs) in self.seconds.iter_mut().zip(&other.seconds) {
            mine.merge(theirs);
        }
    }

    /// `[{"second": s, "count": n, "p99_ms": x}]` for charts.
    pub fn series(&self) -> Value {
        Value::Array(
            self.seconds
                .iter()
                .enumerate()
                .map(|(second, latencies)| {
                    json!({
                        "second": second,
                        "count": latencies.count(),
                        "p99_ms": crate::outcome::round(latencies.quantile_ms(0.99)),
                    })
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_buckets_follow_what_was_recorded() {
        let mut latencies = Latencies::new();
        for ms in 1..=100 {
            latencies.record(Duration::from_millis(ms));
        }
        assert!((latencies.quantile_ms(0.5) - 50.0).abs() < 0.5);
        assert!((latencies.quantile_ms(0.99) - 99.0).abs() < 0.5);
        let total: u64 = latencies
            .buckets()
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["count"].as_u64().unwrap())
            .sum();
        assert_eq!(total, 100);
    }

    #[test]
    fn per_second_buckets_grow_as_needed() {
        let mut series = PerSecond::default();
        series.record(Duration::from_millis(2500), Duration::from_millis(3));
        let json = series.series();
        assert_eq!(json.as_array().unwrap().len(), 3);
        assert_eq!(json[2]["count"], 1);
        assert_eq!(json[0]["count"], 0);
    }
}

/// The answers a worker did not expect: how many, the first few as said, and the current run of
/// them, so that a worker stops hammering a stack that only errs.
#[derive(Debug, Default)]
pub struct UnexpectedErrors {
    /// How many in all.
    pub count: u64,
    /// The first [`UnexpectedErrors::SAMPLES`] of them, plus any note a worker adds on giving up.
    pub samples: Vec<String>,
    /// How many in a row, since the last expected answer.
    streak: u32,
}

impl UnexpectedErrors {
    /// How many are kept as samples.
    pub const SAMPLES: usize = 3;
    /// This many in a row and the worker stops: the stack is down, not busy.
    pub const GIVE_UP_AFTER: u32 = 50;

    /// Counts one (`summary` is called only while samples are still kept); `true` when it makes
    /// [`UnexpectedErrors::GIVE_UP_AFTER`] in a row.
    pub fn record(&mut self, summary: impl FnOnce() -> String) -> bool {
        self.count += 1;
        if self.samples.len() < Self::SAMPLES {
            self.samples.push(summary());
        }
        self.streak += 1;
        self.streak >= Self::GIVE_UP_AFTER
    }

    /// An expected answer: the run of errors is over.
    pub fn end_streak(&mut self) {
        self.streak = 0;
    }
}
