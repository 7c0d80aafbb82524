//! AWS's operating conditions on the embedded endpoint (`AWS_CONDITIONS=on`, off by default):
//! service latency ([`latency`]), transaction conflicts ([`conflicts`]) and, through the
//! partition limiter (`crate::partitions`), AWS's per-key write and read limits. Off, the request
//! path does no extra work. `GET /_local/conditions` on the AWS endpoint reports them
//! (`?reset=true` zeroes the counters); docs/aws-conditions.md describes every setting.

pub(crate) mod conflicts;
pub(crate) mod latency;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use self::conflicts::Conflicts;
use self::latency::{LatencyClass, LatencyTable};

/// Where the conditions report on the AWS endpoint.
pub(crate) const CONDITIONS_PATH: &str = "/_local/conditions";

/// The latency and conflict emulation of one endpoint (the partition limits live with the
/// limiter).
#[derive(Debug, Default)]
pub struct Conditions {
    latency: Option<LatencyTable>,
    conflicts: Option<Conflicts>,
    delayed_requests: AtomicU64,
}

/// A request's emulated duration: started when the endpoint received it.
#[derive(Debug)]
pub(crate) struct Delay {
    started: Instant,
    total: Duration,
}

impl Delay {
    /// Sleeps the first half of the delay: the way in.
    pub(crate) async fn before(&self) {
        tokio::time::sleep(self.total / 2).await;
    }

    /// Sleeps what is left of the delay once the service answered: the way back. A request that
    /// took longer than its delay is not slowed further.
    pub(crate) async fn after(&self) {
        let elapsed = self.started.elapsed();
        if elapsed < self.total {
            tokio::time::sleep(self.total - elapsed).await;
        }
    }
}

impl Conditions {
    /// Conditions with `latency` (`None`: no delay) and, when `conflicts`, transaction conflicts.
    pub fn new(latency: Option<LatencyTable>, conflicts: bool) -> Self {
        Conditions {
            latency,
            conflicts: conflicts.then(Conflicts::default),
            delayed_requests: AtomicU64::new(0),
        }
    }

    /// Whether any request is delayed or checked: a plain flag on the request path.
    pub(crate) fn active(&self) -> bool {
        self.latency.is_some() || self.conflicts.is_some()
    }

    /// The conflict rules, when on.
    pub(crate) fn conflicts(&self) -> Option<&Conflicts> {
        self.conflicts.as_ref()
    }

    /// The delay of one request of `class`, starting now (`None`: latency off).
    pub(crate) fn delay(&self, class: LatencyClass) -> Option<Delay> {
        let table = self.latency.as_ref()?;
        self.delayed_requests.fetch_add(1, Ordering::Relaxed);
        Some(Delay {
            started: Instant::now(),
            total: table.delay(class, latency::standard_normal()),
        })
    }

    /// Runs `work` inside the delay of `class`: half of it before, the rest after.
    pub(crate) async fn delayed<T>(&self, class: LatencyClass, work: impl Future<Output = T>) -> T {
        let Some(delay) = self.delay(class) else {
            return work.await;
        };
        delay.before().await;
        let output = work.await;
        delay.after().await;
        output
    }

    /// `/_local/conditions`, with the limiter's part `partitions`; `reset` zeroes the counters.
    pub(crate) fn report(&self, partitions: Value, reset: bool) -> Value {
        let delayed = match reset {
            true => self.delayed_requests.swap(0, Ordering::Relaxed),
            false => self.delayed_requests.load(Ordering::Relaxed),
        };
        let mut conflicts = match &self.conflicts {
            Some(conflicts) => conflicts.counters(reset),
            None => Conflicts::default().counters(false),
        };
        conflicts["on"] = json!(self.conflicts.is_some());
        json!({
            "latency": {
                "on": self.latency.is_some(),
                "classes": self.latency.as_ref().map_or_else(|| json!({}), LatencyTable::report),
                "delayed_requests": delayed,
            },
            "conflicts": conflicts,
            "partitions": partitions,
        })
    }
}
