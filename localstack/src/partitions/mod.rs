//! DynamoDB's per-partition write limit, emulated on the embedded AWS endpoint
//! (`PARTITION_LIMIT=on`, or `AWS_CONDITIONS=on`; off by default, when it reads no body at all),
//! and the read limit beside it (`reads.rs`). Every write is charged to the partition key values
//! it touches, in its table and in the table's global secondary indexes, and a key past
//! `PARTITION_WRITE_UNITS` a second is refused with `ThrottlingException`, as an on-demand table
//! refuses a hot key (docs/decisions.md). `GET /_local/partitions` on the AWS endpoint reports the
//! hottest keys (`?reset=true` starts afresh, `?top=N` shows more than ten).
//!
//! # What a write costs
//!
//! PutItem, UpdateItem, DeleteItem, BatchWriteItem and TransactWriteItems are charged to the write
//! budgets; PartiQL and table operations are not; reads have budgets of their own (`reads.rs`). A
//! write costs its table partition (table name + the item's hash key value) one unit per started KB
//! of the larger of the item before and after it (a delete, the item it removes; at least one
//! unit), twice that inside a transaction, where a `ConditionCheck` is charged as a write of the
//! item it checks (AWS bills it as one). Each GSI of the table is charged on its own partitions
//! (`<table>/<index>` + the index hash key value), on the entry it stores, that is the item
//! projected on the index: a new entry is one put, a removed entry one delete, an entry whose index
//! key changes a delete on the old key plus a put on the new one, an entry that keeps its key but
//! changes one write on the larger image, and an unchanged entry nothing. Index writes are not
//! doubled in a transaction. These are the rules Dynoxide's `actions/index_capacity.rs` records as
//! captured against DynamoDB; sparse indexes follow from them (an item without the index key has no
//! entry). A write refused by its condition (or a cancelled transaction) still costs its table
//! partitions, as in AWS, and its indexes nothing.
//!
//! # How it refuses
//!
//! Each key has a token bucket of `PARTITION_WRITE_UNITS` a second holding one second's worth
//! (the burst an on-demand partition allows). Before a write is applied, the charges it is known to
//! make are checked and taken: its table keys, and the index entries known beforehand (the old
//! item's; a put's new item's as well). If any key lacks the units, nothing is applied: a
//! single-item write gets HTTP 400 `ThrottlingException` whose `throttlingReasons` say
//! `TableWriteKeyRangeThroughputExceeded` (or `IndexWrite...`) with the table's or index's ARN, a
//! transaction gets `TransactionCanceledException` with `ThrottlingError` for the refused actions
//! and `None` for the others, and a batch hands the refused items back in `UnprocessedItems` (all
//! refused: `ThrottlingException`). After the write the exact charges replace the estimate: an
//! update's new size and index moves are known only then, and may put a bucket in debt, so the
//! writes that follow on that key are refused until it refills.
//!
//! # Why it reads before and after
//!
//! A write request does not say what it costs: an update names attributes, not the item it leaves,
//! and an index is charged on what the write does to the item's entry. So the limiter reads the
//! item in-process (GetItem on the same Dynoxide router, consistent, uncounted by the meter) before
//! the write, and after an update; key schemas and indexes come from DescribeTable, cached per
//! table until a table operation goes through.
//!
//! # Approximations
//!
//! Sizes follow AWS's rules roughly: attribute name bytes plus value bytes (a number counts half
//! its significant digits plus one, binary its decoded length, lists and maps 3 bytes plus one per
//! element). Concurrent writes to one item may each see the other's before-image. A partition is
//! one key value, never a range of keys sharing a partition, and there is no adaptive capacity or
//! split for heat: the cap of one key is exactly the setting. Local secondary indexes, PartiQL
//! writes, idempotent transaction replays (charged again) and condition-failed index charges are
//! not modelled; a malformed request, or one about an unknown table, goes through uncharged so that
//! DynamoDB's own answer says what is wrong.

mod cost;
mod keys;
mod reads;
mod report;
mod wire;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::body::{Body, Bytes};
use http::{HeaderMap, Response, StatusCode};
use serde_json::{Map, Value, json};

use self::cost::{Action, Change, TableSchema};
use self::wire::{Access, Outcome, Reader, aws_error};

pub(crate) use self::reads::ReadOperation;

/// Where the limiter reports on the AWS endpoint.
pub(crate) const PARTITIONS_PATH: &str = "/_local/partitions";

/// Hottest keys listed per table or index unless `?top=` says otherwise.
pub(crate) const DEFAULT_TOP: usize = 10;

const TARGET_PREFIX: &str = "DynamoDB_20120810.";

/// A DynamoDB write the limiter charges, by its `X-Amz-Target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteOperation {
    PutItem,
    UpdateItem,
    DeleteItem,
    BatchWriteItem,
    TransactWriteItems,
}

impl WriteOperation {
    /// The write a target names, if it is one.
    pub(crate) fn from_target(target: Option<&str>) -> Option<Self> {
        match target?.strip_prefix(TARGET_PREFIX)? {
            "PutItem" => Some(Self::PutItem),
            "UpdateItem" => Some(Self::UpdateItem),
            "DeleteItem" => Some(Self::DeleteItem),
            "BatchWriteItem" => Some(Self::BatchWriteItem),
            "TransactWriteItems" => Some(Self::TransactWriteItems),
            _ => None,
        }
    }
}

/// Whether a target may change a table's keys or indexes (the cached schemas are then dropped).
pub(crate) fn changes_schema(target: Option<&str>) -> bool {
    target
        .and_then(|t| t.strip_prefix(TARGET_PREFIX))
        .is_some_and(|op| matches!(op, "CreateTable" | "UpdateTable" | "DeleteTable"))
}

/// The per-key limits of an endpoint whose limiter is on, already scaled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PartitionLimits {
    /// Write units per second per partition key value.
    pub(crate) write_units: f64,
    /// Read units per second per partition key value.
    pub(crate) read_units: f64,
    /// `PARTITION_SCALE`, the factor both were multiplied by (reported, not applied again).
    pub(crate) scale: f64,
}

/// The limiter of one endpoint; a no-op unless built with limits.
#[derive(Debug)]
pub(crate) struct Partitions {
    /// Write units per second per key; `None` when the limit is off.
    rate: Option<f64>,
    /// Read units per second per key; `None` when the limit is off.
    read_rate: Option<f64>,
    scale: f64,
    region: String,
    started: Instant,
    schemas: Mutex<HashMap<String, Arc<TableSchema>>>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    buckets: HashMap<PartitionKey, Bucket>,
    /// Write requests charged.
    requests: u64,
    /// Write requests refused whole.
    throttled_requests: u64,
    /// Batch items handed back unprocessed.
    unprocessed_items: u64,
    /// Read budgets, apart from the write budgets of the same keys.
    read_buckets: HashMap<PartitionKey, Bucket>,
    /// GetItem and Query requests refused, plus BatchGetItem keys handed back.
    throttled_reads: u64,
}

/// One partition key value of a table (`orders`) or of one of its indexes (`orders/unsettled`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct PartitionKey {
    resource: String,
    value: String,
}

impl PartitionKey {
    fn index(&self) -> Option<(&str, &str)> {
        self.resource.split_once('/')
    }
}

/// Units a write takes from one key.
#[derive(Debug, Clone, PartialEq)]
struct Charge {
    key: PartitionKey,
    units: f64,
}

/// A key's budget and what it served.
#[derive(Debug, Clone)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
    total: f64,
    /// The second (since the endpoint started) `window_units` belong to.
    window: u64,
    window_units: f64,
    peak: f64,
    throttled: u64,
}

impl Bucket {
    fn full(rate: f64, now: Instant) -> Self {
        Bucket {
            tokens: rate,
            refilled: now,
            total: 0.0,
            window: 0,
            window_units: 0.0,
            peak: 0.0,
            throttled: 0,
        }
    }

    fn refill(&mut self, rate: f64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + rate * elapsed).min(rate);
        self.refilled = now.max(self.refilled);
    }
}

impl Partitions {
    /// A limiter of `limits` per key (`None`: off), naming `region` in its ARNs.
    pub(crate) fn new(limits: Option<PartitionLimits>, region: &str) -> Self {
        Partitions {
            rate: limits.map(|l| l.write_units),
            read_rate: limits.map(|l| l.read_units),
            scale: limits.map_or(1.0, |l| l.scale),
            region: region.to_owned(),
            started: Instant::now(),
            schemas: Mutex::default(),
            state: Mutex::default(),
        }
    }

    /// Whether writes are charged and limited.
    pub(crate) fn enabled(&self) -> bool {
        self.rate.is_some()
    }

    /// Drops the cached key schemas (a table was created, changed or deleted).
    pub(crate) fn forget_schemas(&self) {
        lock(&self.schemas).clear();
    }

    /// Charges one write request and, unless a key is out of budget, hands its body to `forward`
    /// (which may change nothing but the answer's capacity); returns DynamoDB's answer or the
    /// refusal. `headers` are the request's, whose credentials the in-process reads reuse.
    pub(crate) async fn write<F, Fut>(
        &self,
        dynamodb: &axum::Router,
        operation: WriteOperation,
        headers: &HeaderMap,
        body: Bytes,
        forward: F,
    ) -> Response<Body>
    where
        F: FnOnce(Bytes) -> Fut,
        Fut: Future<Output = Response<Body>>,
    {
        let Some(rate) = self.rate else {
            return forward(body).await;
        };
        let reader = Reader::new(dynamodb, headers);
        let Some((request, actions)) = self.plan(&reader, operation, &body).await else {
            // Malformed, or about a table that does not exist: DynamoDB's answer says which.
            return forward(body).await;
        };
        let estimates: Vec<Vec<Charge>> = actions.iter().map(Action::estimate).collect();
        let batch = operation == WriteOperation::BatchWriteItem;
        let groups: Vec<Vec<Charge>> = if batch {
            estimates.clone()
        } else {
            vec![estimates.concat()]
        };
        let refusals = self.admit(rate, &groups, Instant::now());
        let admitted: Vec<bool> = if batch {
            refusals.iter().map(Vec::is_empty).collect()
        } else {
            vec![refusals[0].is_empty(); actions.len()]
        };
        if !admitted.contains(&true) {
            let refused: Vec<PartitionKey> = refusals.concat();
            return match operation {
                WriteOperation::TransactWriteItems => self.cancelled(&estimates, &refused),
                _ => self.throttled(&refused, Access::Write),
            };
        }
        let reserved: Vec<Charge> = groups
            .iter()
            .zip(&refusals)
            .filter(|(_, refused)| refused.is_empty())
            .flat_map(|(group, _)| group.iter().cloned())
            .collect();
        let unprocessed = admitted.iter().filter(|a| !**a).count();
        let body = if unprocessed > 0 {
            lock(&self.state).unprocessed_items += unprocessed as u64;
            Bytes::from(batch_of(&request, &actions, &admitted, true).to_string())
        } else {
            body
        };

        let response = forward(body).await;
        let (mut parts, answer) = response.into_parts();
        let Ok(mut answer) = axum::body::to_bytes(answer, usize::MAX).await else {
            self.settle(rate, &reserved, &[], Instant::now());
            return aws_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
                        "message": "unreadable DynamoDB answer"}),
            );
        };
        let outcome = Outcome::of(parts.status, &answer);
        let mut exact = Vec::new();
        for (action, _) in actions.iter().zip(&admitted).filter(|(_, a)| **a) {
            match outcome {
                Outcome::Applied => {
                    let after = match &action.change {
                        Change::Put(item) => Some(item.clone()),
                        Change::Delete => None,
                        Change::Check => action.before.clone(),
                        Change::Update => reader
                            .get_item(&action.table, &action.key)
                            .await
                            .unwrap_or_else(|| action.before.clone()),
                    };
                    exact.extend(action.exact(after.as_ref()));
                }
                Outcome::Refused => exact.push(action.table_charge(None)),
                Outcome::Invalid => {}
            }
        }
        self.settle(rate, &reserved, &exact, Instant::now());

        if unprocessed > 0 && outcome == Outcome::Applied {
            let handed_back = batch_of(&request, &actions, &admitted, false);
            if let Ok(mut json) = serde_json::from_slice::<Value>(&answer) {
                json["UnprocessedItems"] = handed_back["RequestItems"].clone();
                answer = Bytes::from(json.to_string());
                // The body changed: its length and checksum are the old body's.
                parts.headers.remove(http::header::CONTENT_LENGTH);
                parts.headers.remove("x-amz-crc32");
            }
        }
        Response::from_parts(parts, Body::from(answer))
    }

    /// Checks each group's charges against its keys' buckets and takes them when all fit; per
    /// group, the keys that lacked units (empty: admitted).
    fn admit(&self, rate: f64, groups: &[Vec<Charge>], now: Instant) -> Vec<Vec<PartitionKey>> {
        let mut state = lock(&self.state);
        state.requests += 1;
        let mut refusals = Vec::with_capacity(groups.len());
        for group in groups {
            let mut needs: BTreeMap<&PartitionKey, f64> = BTreeMap::new();
            for charge in group {
                *needs.entry(&charge.key).or_default() += charge.units;
            }
            let mut refused = Vec::new();
            for (key, need) in &needs {
                let bucket = state
                    .buckets
                    .entry((*key).clone())
                    .or_insert_with(|| Bucket::full(rate, now));
                bucket.refill(rate, now);
                // A write bigger than a whole second's budget still passes on a full bucket.
                if bucket.tokens + 1e-9 < need.min(rate) {
                    bucket.throttled += 1;
                    refused.push((*key).clone());
                }
            }
            if refused.is_empty() {
                for (key, need) in needs {
                    if let Some(bucket) = state.buckets.get_mut(key) {
                        bucket.tokens -= need;
                    }
                }
            }
            refusals.push(refused);
        }
        if refusals.iter().all(|r| !r.is_empty()) {
            state.throttled_requests += 1;
        }
        refusals
    }

    /// Gives back what was reserved and takes what the write cost (a bucket may go into debt).
    fn settle(&self, rate: f64, reserved: &[Charge], exact: &[Charge], now: Instant) {
        let second = now.saturating_duration_since(self.started).as_secs();
        let mut state = lock(&self.state);
        for charge in reserved {
            if let Some(bucket) = state.buckets.get_mut(&charge.key) {
                bucket.refill(rate, now);
                bucket.tokens = (bucket.tokens + charge.units).min(rate);
            }
        }
        for charge in exact {
            let bucket = state
                .buckets
                .entry(charge.key.clone())
                .or_insert_with(|| Bucket::full(rate, now));
            bucket.refill(rate, now);
            bucket.tokens -= charge.units;
            bucket.total += charge.units;
            if bucket.window != second {
                bucket.window = second;
                bucket.window_units = 0.0;
            }
            bucket.window_units += charge.units;
            bucket.peak = bucket.peak.max(bucket.window_units);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The request's BatchWriteItem entries kept (`admitted` == `keep`) under `RequestItems`.
fn batch_of(request: &Value, actions: &[Action], admitted: &[bool], keep: bool) -> Value {
    let mut tables: Map<String, Value> = Map::new();
    for (action, _) in actions.iter().zip(admitted).filter(|(_, a)| **a == keep) {
        let entries = tables
            .entry(action.table.clone())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = entries {
            list.push(action.entry.clone());
        }
    }
    let mut rewritten = request.clone();
    rewritten["RequestItems"] = Value::Object(tables);
    rewritten
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// How long a bucket takes to refill completely: one second, whatever the rate.
    const REFILL: Duration = Duration::from_secs(1);

    pub(crate) fn limits(units: f64) -> PartitionLimits {
        PartitionLimits {
            write_units: units,
            read_units: units,
            scale: 1.0,
        }
    }

    pub(super) fn charge(resource: &str, value: &str, units: f64) -> Charge {
        Charge {
            key: PartitionKey {
                resource: resource.into(),
                value: value.into(),
            },
            units,
        }
    }

    #[test]
    fn a_key_past_its_budget_is_refused_and_refills_within_a_second() {
        let limiter = Partitions::new(Some(limits(10.0)), "us-east-1");
        let start = Instant::now();
        let write = vec![vec![charge("t", "hot", 4.0)]];

        assert!(limiter.admit(10.0, &write, start)[0].is_empty());
        assert!(limiter.admit(10.0, &write, start)[0].is_empty());
        let refused = limiter.admit(10.0, &write, start);
        assert_eq!(refused[0], [write[0][0].key.clone()]);
        assert!(
            limiter.admit(10.0, &[vec![charge("t", "cold", 4.0)]], start)[0].is_empty(),
            "another key has its own budget"
        );

        assert!(limiter.admit(10.0, &write, start + REFILL / 2)[0].is_empty());
        assert!(limiter.admit(10.0, &write, start + REFILL)[0].is_empty());
    }

    #[test]
    fn charges_known_after_the_write_put_a_key_in_debt_until_it_refills() {
        let limiter = Partitions::new(Some(limits(10.0)), "us-east-1");
        let start = Instant::now();
        let index = vec![vec![charge("t/i", "same", 1.0)]];

        limiter.settle(10.0, &[], &[charge("t/i", "same", 25.0)], start);

        assert!(!limiter.admit(10.0, &index, start + REFILL)[0].is_empty());
        assert!(limiter.admit(10.0, &index, start + REFILL * 2)[0].is_empty());
    }

    #[test]
    fn a_refused_group_takes_nothing_and_the_report_keeps_peaks_and_throttles() {
        let limiter = Partitions::new(Some(limits(10.0)), "us-east-1");
        let now = Instant::now();
        let both = vec![vec![charge("t", "a", 6.0), charge("t", "b", 6.0)]];
        limiter.settle(10.0, &[], &[charge("t", "b", 8.0)], now);

        assert_eq!(limiter.admit(10.0, &both, now)[0], [both[0][1].key.clone()]);
        assert!(limiter.admit(10.0, &[vec![charge("t", "a", 10.0)]], now)[0].is_empty());

        let report = limiter.report(true, 1);
        assert_eq!(report["limit"], "on");
        assert_eq!(report["throttled_requests"], 1);
        assert_eq!(report["partitions"]["t"]["hottest"][0]["key"], "b");
        assert_eq!(
            report["partitions"]["t"]["hottest"][0]["peak_units_per_s"],
            8.0
        );
        assert_eq!(report["partitions"]["t"]["throttled"], 1);
        assert_eq!(limiter.report(false, 1)["partitions"], json!({}), "reset");
    }
}
