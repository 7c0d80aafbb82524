//! What the limiter reports: `GET /_local/partitions` (per table and index, the hottest keys) and
//! its part of `GET /_local/conditions` (the effective limits and the throttle counts).

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value, json};

use super::{Bucket, PartitionKey, Partitions, State, lock};

impl Partitions {
    /// Per table and index: write units, throttles, and the `top` hottest keys with their total
    /// units and their most units in one second (`partitions`); the same for read units
    /// (`reads`); `reset` starts afresh.
    pub(crate) fn report(&self, reset: bool, top: usize) -> Value {
        let mut state = lock(&self.state);
        let (partitions, units) = by_resource(&state.buckets, top);
        let (reads, read_units) = by_resource(&state.read_buckets, top);
        let report = json!({
            "limit": if self.enabled() { "on" } else { "off" },
            "write_units_per_second": self.rate,
            "read_units_per_second": self.read_rate,
            "requests": state.requests,
            "throttled_requests": state.throttled_requests,
            "unprocessed_items": state.unprocessed_items,
            "units": units,
            "partitions": partitions,
            "read_units": read_units,
            "reads": reads,
        });
        if reset {
            *state = State::default();
        }
        report
    }

    /// The limiter's part of `/_local/conditions`; `reset` zeroes its throttle counters.
    pub(crate) fn conditions_report(&self, reset: bool) -> Value {
        let mut state = lock(&self.state);
        let report = json!({
            "on": self.enabled(),
            "write_units_per_second": self.rate,
            "read_units_per_second": self.read_rate,
            "scale": self.scale,
            "throttled_writes": state.throttled_requests + state.unprocessed_items,
            "throttled_reads": state.throttled_reads,
        });
        if reset {
            state.throttled_requests = 0;
            state.unprocessed_items = 0;
            state.throttled_reads = 0;
        }
        report
    }
}

/// Per table and index (`<table>/<index>`) of `buckets`: units, keys, throttles, most units in
/// one second, and the `top` hottest keys; and the units of all of them.
fn by_resource(buckets: &HashMap<PartitionKey, Bucket>, top: usize) -> (Map<String, Value>, f64) {
    let mut resources: BTreeMap<&str, Vec<(&PartitionKey, &Bucket)>> = BTreeMap::new();
    for (key, bucket) in buckets {
        resources
            .entry(key.resource.as_str())
            .or_default()
            .push((key, bucket));
    }
    let mut units = 0.0;
    let report = resources
        .into_iter()
        .map(|(resource, mut keys)| {
            keys.sort_by(|a, b| b.1.total.total_cmp(&a.1.total).then(a.0.cmp(b.0)));
            let total: f64 = keys.iter().map(|(_, b)| b.total).sum();
            units += total;
            let hottest: Vec<Value> = keys
                .iter()
                .take(top)
                .map(|(key, bucket)| {
                    json!({
                        "key": key.value,
                        "units": bucket.total,
                        "peak_units_per_s": bucket.peak,
                        "throttled": bucket.throttled,
                    })
                })
                .collect();
            let report = json!({
                "kind": if resource.contains('/') { "index" } else { "table" },
                "units": total,
                "keys": keys.len(),
                "throttled": keys.iter().map(|(_, b)| b.throttled).sum::<u64>(),
                "peak_units_per_s": keys.iter().map(|(_, b)| b.peak).fold(0.0, f64::max),
                "hottest": hottest,
            });
            (resource.to_owned(), report)
        })
        .collect();
    (report, units)
}
