//! DynamoDB's per-partition write limit, emulated on the embedded AWS endpoint
//! (`PARTITION_LIMIT=on`; off by default, when it reads no body at all). Every write is charged to
//! the partition key values it touches, in its table and in the table's global secondary indexes,
//! and a key past `PARTITION_WRITE_UNITS` a second is refused with `ThrottlingException`, as an
//! on-demand table refuses a hot key (SPEC section 7). `GET /_local/partitions` on the AWS endpoint
//! reports the hottest keys (`?reset=true` starts afresh, `?top=N` shows more than ten).
//!
//! # What a write costs
//!
//! PutItem, UpdateItem, DeleteItem, BatchWriteItem and TransactWriteItems are charged; reads,
//! PartiQL and table operations are not. A write costs its table partition (table name + the
//! item's hash key value) one unit per started KB of the larger of the item before and after it
//! (a delete, the item it removes; at least one unit), twice that inside a transaction, where a
//! `ConditionCheck` is charged as a write of the item it checks (AWS bills it as one). Each GSI of
//! the table is charged on its own partitions (`<table>/<index>` + the index hash key value), on the
//! entry it stores, that is the item projected on the index: a new entry is one put, a removed
//! entry one delete, an entry whose index key changes a delete on the old key plus a put on the new
//! one, an entry that keeps its key but changes one write on the larger image, and an unchanged
//! entry nothing. Index writes are not doubled in a transaction. These are the rules Dynoxide's
//! `actions/index_capacity.rs` records as captured against DynamoDB; sparse indexes follow from
//! them (an item without the index key has no entry). A write refused by its condition (or a
//! cancelled transaction) still costs its table partitions, as in AWS, and its indexes nothing.
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

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::body::{Body, Bytes};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use serde_json::{Map, Value, json};

use crate::LOCAL_ACCOUNT_ID;

/// Where the limiter reports on the AWS endpoint.
pub(crate) const PARTITIONS_PATH: &str = "/_local/partitions";

/// Hottest keys listed per table or index unless `?top=` says otherwise.
pub(crate) const DEFAULT_TOP: usize = 10;

const TARGET_PREFIX: &str = "DynamoDB_20120810.";
const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.0";
/// What DynamoDB says when an on-demand table's key is throttled (the API reference's
/// cancellation reasons quote it).
const TABLE_MESSAGE: &str = "Throughput exceeds the current capacity of your table or index. \
    DynamoDB is automatically scaling your table or index so please try again shortly. If \
    exceptions persist, check if you have a hot key: \
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html";
/// The same for an on-demand GSI.
const INDEX_MESSAGE: &str = "Throughput exceeds the current capacity for one or more global \
    secondary indexes. DynamoDB is automatically scaling your index so please try again shortly.";

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

/// The limiter of one endpoint; a no-op unless built with a rate.
#[derive(Debug)]
pub(crate) struct Partitions {
    /// Write units per second per key; `None` when the limit is off.
    rate: Option<f64>,
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
    /// A limiter of `write_units` per second per key (`None`: off), naming `region` in its ARNs.
    pub(crate) fn new(write_units: Option<u32>, region: &str) -> Self {
        Partitions {
            rate: write_units.map(f64::from),
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
                _ => self.throttled(&refused),
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

    /// The request parsed into the actions it takes, each with its item before the write;
    /// `None` when it is malformed or names an unknown table.
    async fn plan(
        &self,
        reader: &Reader<'_>,
        operation: WriteOperation,
        body: &[u8],
    ) -> Option<(Value, Vec<Action>)> {
        let request: Value = serde_json::from_slice(body).ok()?;
        let mut actions = Vec::new();
        for parsed in parse_actions(operation, &request)? {
            let schema = self.schema(reader, &parsed.table).await?;
            let key = match &parsed.change {
                Change::Put(item) => schema.key_of(item)?,
                _ => parsed.key?,
            };
            let before = reader.get_item(&parsed.table, &key).await?;
            actions.push(Action {
                table: parsed.table,
                schema,
                key,
                change: parsed.change,
                transactional: operation == WriteOperation::TransactWriteItems,
                before,
                entry: parsed.entry,
            });
        }
        Some((request, actions))
    }

    /// A table's key schema and indexes, from DescribeTable once.
    async fn schema(&self, reader: &Reader<'_>, table: &str) -> Option<Arc<TableSchema>> {
        if let Some(schema) = lock(&self.schemas).get(table) {
            return Some(Arc::clone(schema));
        }
        let description = reader
            .call("DescribeTable", &json!({"TableName": table}))
            .await?;
        let schema = Arc::new(TableSchema::from_description(&description["Table"])?);
        lock(&self.schemas).insert(table.to_owned(), Arc::clone(&schema));
        Some(schema)
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

    /// Per table and index: units, throttles, and the `top` hottest keys with their total units
    /// and their most units in one second; `reset` starts afresh.
    pub(crate) fn report(&self, reset: bool, top: usize) -> Value {
        let mut state = lock(&self.state);
        let mut resources: BTreeMap<&str, Vec<(&PartitionKey, &Bucket)>> = BTreeMap::new();
        for (key, bucket) in &state.buckets {
            resources
                .entry(key.resource.as_str())
                .or_default()
                .push((key, bucket));
        }
        let mut units = 0.0;
        let partitions: Map<String, Value> = resources
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
        let report = json!({
            "limit": if self.enabled() { "on" } else { "off" },
            "write_units_per_second": self.rate,
            "requests": state.requests,
            "throttled_requests": state.throttled_requests,
            "unprocessed_items": state.unprocessed_items,
            "units": units,
            "partitions": partitions,
        });
        if reset {
            *state = State::default();
        }
        report
    }

    /// `ThrottlingException` naming each refused table or index.
    fn throttled(&self, refused: &[PartitionKey]) -> Response<Body> {
        let mut reasons: Vec<Value> = Vec::new();
        for key in refused {
            let reason = json!({"reason": reason_of(key), "resource": self.arn(key)});
            if !reasons.contains(&reason) {
                reasons.push(reason);
            }
        }
        let message = if refused.iter().all(|k| k.index().is_some()) {
            INDEX_MESSAGE
        } else {
            TABLE_MESSAGE
        };
        // `throttlingReasons` is the member's wire name on ThrottlingException in DynamoDB's
        // model (ProvisionedThroughputExceededException spells it `ThrottlingReasons`).
        aws_error(
            StatusCode::BAD_REQUEST,
            &json!({
                "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
                "message": message,
                "throttlingReasons": reasons,
            }),
        )
    }

    /// `TransactionCanceledException`: `ThrottlingError` for each action charging a refused
    /// key, `None` for the others.
    fn cancelled(&self, estimates: &[Vec<Charge>], refused: &[PartitionKey]) -> Response<Body> {
        let reasons: Vec<Value> = estimates
            .iter()
            .map(|charges| {
                let hit: Vec<&PartitionKey> = charges
                    .iter()
                    .map(|c| &c.key)
                    .filter(|k| refused.contains(k))
                    .collect();
                match hit.first() {
                    None => json!({"Code": "None"}),
                    Some(_) if hit.iter().all(|k| k.index().is_some()) => {
                        json!({"Code": "ThrottlingError", "Message": INDEX_MESSAGE})
                    }
                    Some(_) => json!({"Code": "ThrottlingError", "Message": TABLE_MESSAGE}),
                }
            })
            .collect();
        let codes: Vec<&str> = reasons
            .iter()
            .map(|r| r["Code"].as_str().unwrap_or("None"))
            .collect();
        aws_error(
            StatusCode::BAD_REQUEST,
            &json!({
                "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                "Message": format!(
                    "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
                    codes.join(", ")
                ),
                "CancellationReasons": reasons,
            }),
        )
    }

    fn arn(&self, key: &PartitionKey) -> String {
        let path = match key.index() {
            Some((table, index)) => format!("{table}/index/{index}"),
            None => key.resource.clone(),
        };
        format!(
            "arn:aws:dynamodb:{}:{LOCAL_ACCOUNT_ID}:table/{path}",
            self.region
        )
    }
}

fn reason_of(key: &PartitionKey) -> &'static str {
    match key.index() {
        Some(_) => "IndexWriteKeyRangeThroughputExceeded",
        None => "TableWriteKeyRangeThroughputExceeded",
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// An error answer in DynamoDB's JSON protocol.
fn aws_error(status: StatusCode, body: &Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(JSON_CONTENT_TYPE),
    );
    response.headers_mut().insert(
        "x-amzn-requestid",
        HeaderValue::from_str(&uuid::Uuid::new_v4().simple().to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("local")),
    );
    response
}

/// What DynamoDB did with a forwarded write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Written.
    Applied,
    /// A condition was false (or the transaction was cancelled): charged, nothing written.
    Refused,
    /// Refused as invalid: nothing charged.
    Invalid,
}

impl Outcome {
    fn of(status: StatusCode, answer: &[u8]) -> Self {
        if status.is_success() {
            return Outcome::Applied;
        }
        let kind = serde_json::from_slice::<Value>(answer)
            .ok()
            .and_then(|v| v["__type"].as_str().map(str::to_owned))
            .unwrap_or_default();
        if kind.ends_with("ConditionalCheckFailedException")
            || kind.ends_with("TransactionCanceledException")
        {
            Outcome::Refused
        } else {
            Outcome::Invalid
        }
    }
}

/// Calls Dynoxide's router in-process with the request's credentials.
struct Reader<'a> {
    dynamodb: &'a axum::Router,
    auth: Vec<(http::HeaderName, HeaderValue)>,
}

impl<'a> Reader<'a> {
    fn new(dynamodb: &'a axum::Router, headers: &HeaderMap) -> Self {
        // Dynoxide checks that auth material is present (never the signature), as DynamoDB does.
        let auth = ["authorization", "x-amz-date", "x-amz-security-token"]
            .iter()
            .filter_map(|name| {
                let value = headers.get(*name)?;
                Some((http::HeaderName::from_static(name), value.clone()))
            })
            .collect();
        Reader { dynamodb, auth }
    }

    /// A successful answer's JSON; `None` for an error or an unreadable answer.
    async fn call(&self, operation: &str, body: &Value) -> Option<Value> {
        let mut request = Request::post("/")
            .header(http::header::CONTENT_TYPE, JSON_CONTENT_TYPE)
            .header("x-amz-target", format!("{TARGET_PREFIX}{operation}"))
            .body(Body::from(body.to_string()))
            .ok()?;
        for (name, value) in &self.auth {
            request.headers_mut().insert(name.clone(), value.clone());
        }
        let mut router = self.dynamodb.clone();
        let response = match tower_service::Service::call(&mut router, request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        if !response.status().is_success() {
            return None;
        }
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The item at `key`, read consistently: `Some(None)` when there is none, `None` when the read
    /// failed.
    async fn get_item(&self, table: &str, key: &Item) -> Option<Option<Item>> {
        let answer = self
            .call(
                "GetItem",
                &json!({"TableName": table, "Key": key, "ConsistentRead": true}),
            )
            .await?;
        Some(answer.get("Item").and_then(Value::as_object).cloned())
    }
}

/// An item (or key) in DynamoDB's JSON: attribute name → `{"S": ...}`.
type Item = Map<String, Value>;

/// What one action does to its item.
#[derive(Debug, Clone)]
enum Change {
    Put(Item),
    Update,
    Delete,
    /// A transaction's ConditionCheck: no change, billed as a write.
    Check,
}

/// An action as the request states it.
struct ParsedAction {
    table: String,
    key: Option<Item>,
    change: Change,
    /// BatchWriteItem: the request entry, to hand back unprocessed.
    entry: Value,
}

fn parse_actions(operation: WriteOperation, request: &Value) -> Option<Vec<ParsedAction>> {
    let table = |v: &Value| v["TableName"].as_str().map(str::to_owned);
    let key = |v: &Value| v["Key"].as_object().cloned();
    let item = |v: &Value| v["Item"].as_object().cloned();
    let single = |change: Change, key: Option<Item>| {
        Some(vec![ParsedAction {
            table: table(request)?,
            key,
            change,
            entry: Value::Null,
        }])
    };
    match operation {
        WriteOperation::PutItem => single(Change::Put(item(request)?), None),
        WriteOperation::UpdateItem => single(Change::Update, Some(key(request)?)),
        WriteOperation::DeleteItem => single(Change::Delete, Some(key(request)?)),
        WriteOperation::BatchWriteItem => {
            let mut actions = Vec::new();
            for (table, entries) in request["RequestItems"].as_object()? {
                for entry in entries.as_array()? {
                    let (change, key) = if let Some(put) = entry.get("PutRequest") {
                        (Change::Put(item(put)?), None)
                    } else {
                        (Change::Delete, Some(key(entry.get("DeleteRequest")?)?))
                    };
                    actions.push(ParsedAction {
                        table: table.clone(),
                        key,
                        change,
                        entry: entry.clone(),
                    });
                }
            }
            Some(actions)
        }
        WriteOperation::TransactWriteItems => request["TransactItems"]
            .as_array()?
            .iter()
            .map(|entry| {
                let (kind, body) = entry.as_object()?.iter().next()?;
                let (change, key) = match kind.as_str() {
                    "Put" => (Change::Put(item(body)?), None),
                    "Update" => (Change::Update, Some(key(body)?)),
                    "Delete" => (Change::Delete, Some(key(body)?)),
                    "ConditionCheck" => (Change::Check, Some(key(body)?)),
                    _ => return None,
                };
                Some(ParsedAction {
                    table: table(body)?,
                    key,
                    change,
                    entry: Value::Null,
                })
            })
            .collect(),
    }
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

/// One action of a write request, with its item as it was before.
struct Action {
    table: String,
    schema: Arc<TableSchema>,
    key: Item,
    change: Change,
    transactional: bool,
    /// The item before the write (`None`: there was none).
    before: Option<Item>,
    entry: Value,
}

impl Action {
    /// What the write is known to cost before it is applied.
    fn estimate(&self) -> Vec<Charge> {
        let mut charges = vec![self.table_charge(None)];
        match &self.change {
            Change::Put(item) => charges.extend(self.index_charges(Some(item))),
            Change::Delete => charges.extend(self.index_charges(None)),
            // The old entries are the only index keys known before an update: each costs at
            // least its removal or its rewrite, unless the update leaves it as it was.
            Change::Update => charges.extend(self.schema.indexes.iter().filter_map(|index| {
                let old = index.entry(self.before.as_ref()?, &self.schema)?;
                Some(Charge {
                    key: index.partition(&self.table, &old),
                    units: units(old.size),
                })
            })),
            Change::Check => {}
        }
        charges
    }

    /// What the write cost, `after` being the item it left.
    fn exact(&self, after: Option<&Item>) -> Vec<Charge> {
        let mut charges = vec![self.table_charge(after)];
        if !matches!(self.change, Change::Check) {
            charges.extend(self.index_charges(after));
        }
        charges
    }

    /// The table partition's charge: the larger image, doubled in a transaction.
    fn table_charge(&self, after: Option<&Item>) -> Charge {
        let before = self.before.as_ref().map_or(0, item_size);
        let bytes = match &self.change {
            Change::Put(item) => before.max(item_size(item)),
            Change::Update => before.max(after.map_or(0, item_size)),
            Change::Delete | Change::Check => before,
        };
        let factor = if self.transactional { 2.0 } else { 1.0 };
        Charge {
            key: PartitionKey {
                resource: self.table.clone(),
                value: key_text(&[self.key.get(&self.schema.hash).unwrap_or(&Value::Null)]),
            },
            units: units(bytes) * factor,
        }
    }

    /// Each index's charges for the item going from `before` to `after`.
    fn index_charges(&self, after: Option<&Item>) -> Vec<Charge> {
        let mut charges = Vec::new();
        for index in &self.schema.indexes {
            let old = self
                .before
                .as_ref()
                .and_then(|item| index.entry(item, &self.schema));
            let new = after.and_then(|item| index.entry(item, &self.schema));
            let mut charge = |entry: &IndexEntry, units: f64| {
                charges.push(Charge {
                    key: index.partition(&self.table, entry),
                    units,
                });
            };
            match (old, new) {
                (None, None) => {}
                (None, Some(new)) => charge(&new, units(new.size)),
                (Some(old), None) => charge(&old, units(old.size)),
                (Some(old), Some(new)) if old.key != new.key => {
                    // A moved entry is a delete and a put, each on its own partition.
                    charge(&old, units(old.size));
                    charge(&new, units(new.size));
                }
                (Some(old), Some(new)) if old.projected == new.projected => {}
                (Some(old), Some(new)) => charge(&new, units(old.size.max(new.size))),
            }
        }
        charges
    }
}

/// A table's keys and global secondary indexes.
#[derive(Debug)]
struct TableSchema {
    hash: String,
    range: Option<String>,
    indexes: Vec<IndexSchema>,
}

#[derive(Debug)]
struct IndexSchema {
    name: String,
    /// Key attributes in key-schema order (a GSI key may have up to four of each).
    hash: Vec<String>,
    range: Vec<String>,
    projection: Projection,
}

#[derive(Debug)]
enum Projection {
    All,
    KeysOnly,
    Include(Vec<String>),
}

/// One index's entry for an item.
struct IndexEntry {
    /// The index key's values, hash then range: the entry's position.
    key: Vec<Value>,
    hash_text: String,
    projected: Item,
    size: usize,
}

impl TableSchema {
    /// From DescribeTable's `Table`.
    fn from_description(table: &Value) -> Option<Self> {
        let (hash, range) = key_schema(&table["KeySchema"]);
        let indexes = table["GlobalSecondaryIndexes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|index| {
                let (hash, range) = key_schema(&index["KeySchema"]);
                let projection = &index["Projection"];
                Some(IndexSchema {
                    name: index["IndexName"].as_str()?.to_owned(),
                    hash,
                    range,
                    projection: match projection["ProjectionType"].as_str() {
                        Some("KEYS_ONLY") => Projection::KeysOnly,
                        Some("INCLUDE") => Projection::Include(
                            projection["NonKeyAttributes"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .filter_map(|a| a.as_str().map(str::to_owned))
                                .collect(),
                        ),
                        _ => Projection::All,
                    },
                })
            })
            .collect();
        Some(TableSchema {
            hash: hash.into_iter().next()?,
            range: range.into_iter().next(),
            indexes,
        })
    }

    /// An item's primary key; `None` when it lacks one.
    fn key_of(&self, item: &Item) -> Option<Item> {
        let mut key = Map::new();
        for name in std::iter::once(&self.hash).chain(&self.range) {
            key.insert(name.clone(), item.get(name)?.clone());
        }
        Some(key)
    }

    fn is_key(&self, attribute: &str) -> bool {
        self.hash == attribute || self.range.as_deref() == Some(attribute)
    }
}

impl IndexSchema {
    /// The item's entry in this index; `None` when it lacks a key attribute (a sparse index).
    fn entry(&self, item: &Item, table: &TableSchema) -> Option<IndexEntry> {
        let key: Vec<Value> = self
            .hash
            .iter()
            .chain(&self.range)
            .map(|name| item.get(name).cloned())
            .collect::<Option<_>>()?;
        let hash: Vec<&Value> = key.iter().take(self.hash.len()).collect();
        let projected: Item = item
            .iter()
            .filter(|(name, _)| self.projects(name, table))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        Some(IndexEntry {
            hash_text: key_text(&hash),
            size: item_size(&projected),
            key,
            projected,
        })
    }

    /// Whether entries carry `attribute`: the index's and the table's keys always do.
    fn projects(&self, attribute: &str, table: &TableSchema) -> bool {
        if table.is_key(attribute) || self.hash.iter().chain(&self.range).any(|a| a == attribute) {
            return true;
        }
        match &self.projection {
            Projection::All => true,
            Projection::KeysOnly => false,
            Projection::Include(names) => names.iter().any(|n| n == attribute),
        }
    }

    fn partition(&self, table: &str, entry: &IndexEntry) -> PartitionKey {
        PartitionKey {
            resource: format!("{table}/{}", self.name),
            value: entry.hash_text.clone(),
        }
    }
}

/// `(hash attributes, range attributes)` of a `KeySchema` list.
fn key_schema(schema: &Value) -> (Vec<String>, Vec<String>) {
    let of = |kind: &str| -> Vec<String> {
        schema
            .as_array()
            .into_iter()
            .flatten()
            .filter(|k| k["KeyType"] == kind)
            .filter_map(|k| k["AttributeName"].as_str().map(str::to_owned))
            .collect()
    };
    (of("HASH"), of("RANGE"))
}

/// A key value as text: a string, number or binary as written; several joined by `|`.
fn key_text(values: &[&Value]) -> String {
    let one = |value: &Value| match value.as_object().and_then(|m| m.iter().next()) {
        Some((_, Value::String(text))) => text.clone(),
        _ => value.to_string(),
    };
    values.iter().map(|v| one(v)).collect::<Vec<_>>().join("|")
}

/// Write units for `bytes`: one per started KB, at least one.
fn units(bytes: usize) -> f64 {
    bytes.div_ceil(1024).max(1) as f64
}

/// An item's size by DynamoDB's rules: attribute names plus values.
fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn value_size(value: &Value) -> usize {
    let Some((kind, inner)) = value.as_object().and_then(|m| m.iter().next()) else {
        return 0;
    };
    let strings = |f: fn(&str) -> usize| {
        inner
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(f)
            .sum::<usize>()
    };
    match kind.as_str() {
        "S" => inner.as_str().map_or(0, str::len),
        "N" => inner.as_str().map_or(0, number_size),
        "B" => inner.as_str().map_or(0, binary_size),
        "BOOL" | "NULL" => 1,
        "SS" => strings(str::len),
        "NS" => strings(number_size),
        "BS" => strings(binary_size),
        "L" => {
            let items = inner.as_array().map_or(&[][..], Vec::as_slice);
            3 + items.len() + items.iter().map(value_size).sum::<usize>()
        }
        "M" => {
            3 + inner.as_object().map_or(0, |map| {
                map.iter()
                    .map(|(name, value)| name.len() + 1 + value_size(value))
                    .sum()
            })
        }
        _ => 0,
    }
}

/// About one byte per two significant digits, plus one.
fn number_size(number: &str) -> usize {
    let mantissa = number.split(['e', 'E']).next().unwrap_or("");
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
    significant.max(1).div_ceil(2) + 1
}

/// The decoded length of base64 text.
fn binary_size(text: &str) -> usize {
    let padding = text.bytes().rev().take_while(|b| *b == b'=').count();
    (text.len() / 4 * 3).saturating_sub(padding)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// How long a bucket takes to refill completely: one second, whatever the rate.
    const REFILL: Duration = Duration::from_secs(1);

    fn s(text: &str) -> Value {
        json!({ "S": text })
    }

    fn item(pairs: &[(&str, Value)]) -> Item {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    /// Table `orders` keyed by `id`, with index `by-status` on `status` projecting everything and
    /// `by-user` on `user` projecting keys only.
    fn schema() -> Arc<TableSchema> {
        Arc::new(
            TableSchema::from_description(&json!({
                "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                "GlobalSecondaryIndexes": [
                    {"IndexName": "by-status",
                     "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"},
                                   {"AttributeName": "at", "KeyType": "RANGE"}],
                     "Projection": {"ProjectionType": "ALL"}},
                    {"IndexName": "by-user",
                     "KeySchema": [{"AttributeName": "user", "KeyType": "HASH"}],
                     "Projection": {"ProjectionType": "KEYS_ONLY"}}
                ]
            }))
            .unwrap(),
        )
    }

    fn action(change: Change, before: Option<Item>, transactional: bool) -> Action {
        Action {
            table: "orders".into(),
            schema: schema(),
            key: item(&[("id", s("o-1"))]),
            change,
            transactional,
            before,
            entry: Value::Null,
        }
    }

    fn charge(resource: &str, value: &str, units: f64) -> Charge {
        Charge {
            key: PartitionKey {
                resource: resource.into(),
                value: value.into(),
            },
            units,
        }
    }

    fn order(status: &str, note: &str) -> Item {
        item(&[
            ("id", s("o-1")),
            ("status", s(status)),
            ("at", json!({"N": "17"})),
            ("user", s("u-1")),
            ("note", s(note)),
        ])
    }

    #[test]
    fn sizes_follow_dynamodbs_rules_roughly() {
        assert_eq!(item_size(&item(&[("ab", s("xyz"))])), 5);
        assert_eq!(number_size("12345"), 4);
        assert_eq!(number_size("-0.00120"), 2);
        assert_eq!(binary_size("aGVsbG8="), 5);
        let nested = item(&[("m", json!({"M": {"k": {"BOOL": true}}, }))]);
        assert_eq!(item_size(&nested), 1 + 3 + 1 + 1 + 1);
        assert_eq!(units(0), 1.0);
        assert_eq!(units(1024), 1.0);
        assert_eq!(units(1025), 2.0);
    }

    #[test]
    fn a_new_item_costs_its_table_key_and_a_put_on_each_index_it_belongs_to() {
        let put = action(Change::Put(order("PENDING", "")), None, false);

        assert_eq!(
            put.estimate(),
            [
                charge("orders", "o-1", 1.0),
                charge("orders/by-status", "PENDING", 1.0),
                charge("orders/by-user", "u-1", 1.0),
            ]
        );
    }

    #[test]
    fn a_transaction_doubles_the_table_charge_but_not_the_index_charges() {
        let put = action(Change::Put(order("PENDING", "")), None, true);

        let charges = put.estimate();

        assert_eq!(charges[0], charge("orders", "o-1", 2.0));
        assert_eq!(charges[1], charge("orders/by-status", "PENDING", 1.0));
    }

    #[test]
    fn an_update_that_moves_an_index_key_costs_a_delete_and_a_put() {
        let update = action(Change::Update, Some(order("PENDING", "")), false);

        let charges = update.exact(Some(&order("PROCESSING", "")));

        // The keys-only index keeps its entry unchanged, so it costs nothing.
        assert_eq!(
            charges,
            [
                charge("orders", "o-1", 1.0),
                charge("orders/by-status", "PENDING", 1.0),
                charge("orders/by-status", "PROCESSING", 1.0),
            ]
        );
    }

    #[test]
    fn an_update_that_keeps_the_key_costs_an_index_one_write_only_if_its_entry_changes() {
        let update = action(Change::Update, Some(order("PENDING", "a")), false);

        let charges = update.exact(Some(&order("PENDING", "b")));

        assert_eq!(
            charges,
            [
                charge("orders", "o-1", 1.0),
                charge("orders/by-status", "PENDING", 1.0),
            ]
        );
    }

    #[test]
    fn leaving_a_sparse_index_is_a_delete_and_the_larger_image_is_charged() {
        let mut settled = order("PAID", &"x".repeat(1500));
        settled.remove("status");
        let update = action(Change::Update, Some(order("PROCESSING", "")), false);

        let charges = update.exact(Some(&settled));

        assert_eq!(
            charges,
            [
                charge("orders", "o-1", 2.0),
                charge("orders/by-status", "PROCESSING", 1.0),
            ]
        );
    }

    #[test]
    fn before_an_update_only_the_old_index_entries_are_known() {
        let update = action(Change::Update, Some(order("PENDING", "")), false);

        assert_eq!(
            update.estimate(),
            [
                charge("orders", "o-1", 1.0),
                charge("orders/by-status", "PENDING", 1.0),
                charge("orders/by-user", "u-1", 1.0),
            ]
        );
    }

    #[test]
    fn a_condition_check_is_charged_as_a_transactional_write_of_its_item_only() {
        let check = action(Change::Check, Some(order("PENDING", "")), true);

        assert_eq!(
            check.exact(check.before.as_ref()),
            [charge("orders", "o-1", 2.0)]
        );
    }

    #[test]
    fn a_key_past_its_budget_is_refused_and_refills_within_a_second() {
        let limiter = Partitions::new(Some(10), "us-east-1");
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
        let limiter = Partitions::new(Some(10), "us-east-1");
        let start = Instant::now();
        let index = vec![vec![charge("t/i", "same", 1.0)]];

        limiter.settle(10.0, &[], &[charge("t/i", "same", 25.0)], start);

        assert!(!limiter.admit(10.0, &index, start + REFILL)[0].is_empty());
        assert!(limiter.admit(10.0, &index, start + REFILL * 2)[0].is_empty());
    }

    #[test]
    fn a_refused_group_takes_nothing_and_the_report_keeps_peaks_and_throttles() {
        let limiter = Partitions::new(Some(10), "us-east-1");
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

    #[test]
    fn refusals_name_the_table_or_index_by_arn() {
        let limiter = Partitions::new(Some(10), "eu-west-1");
        let key = PartitionKey {
            resource: "orders/unsettled".into(),
            value: "PENDING#1".into(),
        };

        assert_eq!(
            limiter.arn(&key),
            "arn:aws:dynamodb:eu-west-1:000000000000:table/orders/index/unsettled"
        );
        assert_eq!(reason_of(&key), "IndexWriteKeyRangeThroughputExceeded");
    }

    #[test]
    fn requests_are_parsed_into_their_actions() {
        let transaction = json!({"TransactItems": [
            {"Put": {"TableName": "a", "Item": {"id": {"S": "1"}}}},
            {"Update": {"TableName": "b", "Key": {"id": {"S": "2"}}, "UpdateExpression": "SET x = :x"}},
            {"ConditionCheck": {"TableName": "c", "Key": {"id": {"S": "3"}}}},
        ]});
        let batch = json!({"RequestItems": {"a": [
            {"PutRequest": {"Item": {"id": {"S": "1"}}}},
            {"DeleteRequest": {"Key": {"id": {"S": "2"}}}},
        ]}});

        let actions = parse_actions(WriteOperation::TransactWriteItems, &transaction).unwrap();
        assert_eq!(actions.len(), 3);
        assert!(matches!(actions[2].change, Change::Check));
        assert_eq!(actions[1].table, "b");
        let actions = parse_actions(WriteOperation::BatchWriteItem, &batch).unwrap();
        assert!(matches!(actions[1].change, Change::Delete));
        assert!(parse_actions(WriteOperation::PutItem, &json!({"TableName": "a"})).is_none());
        assert_eq!(
            WriteOperation::from_target(Some("DynamoDB_20120810.TransactWriteItems")),
            Some(WriteOperation::TransactWriteItems)
        );
        assert_eq!(
            WriteOperation::from_target(Some("DynamoDB_20120810.GetItem")),
            None
        );
    }
}
