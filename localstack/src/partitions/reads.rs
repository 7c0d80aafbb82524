//! DynamoDB's per-partition read limit (3,000 read units a second per partition key value on
//! AWS; `PARTITION_READ_UNITS`), on while the write limit is. GetItem and BatchGetItem are charged
//! per key, Query on the partition key value its `KeyConditionExpression` names; Scan,
//! TransactGetItems and PartiQL are not charged.
//!
//! A read is charged after its answer, by what it returned: one unit per started 4 KB for a
//! consistent read, half that for an eventually consistent one (a Query on the total size of the
//! items it returned; an item not found costs the minimum, as AWS bills it). Reads are admitted
//! while their key's budget is above zero, so a key is refused once it is out of budget: a GetItem
//! or Query with `ThrottlingException` (`TableReadKeyRangeThroughputExceeded`, or
//! `IndexRead...` for a Query on an index), a BatchGetItem by handing the refused keys back in
//! `UnprocessedKeys` (all refused: `ThrottlingException`).

use std::collections::HashMap;
use std::future::Future;
use std::time::Instant;

use axum::body::{Body, Bytes};
use http::{HeaderMap, Response};
use serde_json::{Map, Value};

use super::cost::{TableSchema, item_size, key_text};
use super::wire::{Access, Item, Reader};
use super::{Bucket, PartitionKey, Partitions, TARGET_PREFIX, lock};

/// A DynamoDB read the limiter charges, by its `X-Amz-Target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadOperation {
    GetItem,
    BatchGetItem,
    Query,
}

impl ReadOperation {
    /// The read a target names, if it is one the limiter charges.
    pub(crate) fn from_target(target: Option<&str>) -> Option<Self> {
        match target?.strip_prefix(TARGET_PREFIX)? {
            "GetItem" => Some(Self::GetItem),
            "BatchGetItem" => Some(Self::BatchGetItem),
            "Query" => Some(Self::Query),
            _ => None,
        }
    }
}

/// Read units for `bytes`: one per started 4 KB consistently read, at least one; half that
/// eventually consistent.
fn read_units(bytes: usize, consistent: bool) -> f64 {
    let units = bytes.div_ceil(4096).max(1) as f64;
    if consistent { units } else { units / 2.0 }
}

/// The partition key value of `item` (or key) in `table`.
fn table_key(table: &str, schema: &TableSchema, item: &Item) -> Option<PartitionKey> {
    Some(PartitionKey {
        resource: table.to_owned(),
        value: key_text(&[item.get(&schema.hash)?]),
    })
}

/// The partition key value a Query reads: the table's or index's hash attribute compared with
/// `=` in `KeyConditionExpression`; `None` when it cannot be read reliably.
fn query_key(request: &Value, schema: &TableSchema) -> Option<PartitionKey> {
    let table = request["TableName"].as_str()?;
    let (resource, hash) = match request["IndexName"].as_str() {
        None => (table.to_owned(), schema.hash.clone()),
        Some(name) => {
            let index = schema.indexes.iter().find(|i| i.name == name)?;
            let [hash] = index.hash.as_slice() else {
                return None;
            };
            (format!("{table}/{name}"), hash.clone())
        }
    };
    let names = &request["ExpressionAttributeNames"];
    let values = &request["ExpressionAttributeValues"];
    let expression = request["KeyConditionExpression"].as_str()?;
    let value = key_condition_value(expression, |token| {
        let name = match token.strip_prefix('#') {
            Some(_) => names[token].as_str()?,
            None => token,
        };
        Some(name == hash)
    })?;
    Some(PartitionKey {
        resource,
        value: key_text(&[values.get(value)?]),
    })
}

/// The `:value` compared with `=` to the attribute `is_hash` accepts, in a key condition such as
/// `#pk = :pk AND begins_with(sk, :prefix)`.
fn key_condition_value(expression: &str, is_hash: impl Fn(&str) -> Option<bool>) -> Option<&str> {
    for part in split_and(expression) {
        let part = part
            .trim()
            .trim_start_matches('(')
            .trim_end_matches(')')
            .trim();
        let Some((left, right)) = part.split_once('=') else {
            continue;
        };
        if left.ends_with(['<', '>', '!']) || right.starts_with('=') {
            continue;
        }
        let (left, right) = (left.trim(), right.trim());
        if is_hash(left)? && right.starts_with(':') {
            return Some(right);
        }
        if is_hash(right)? && left.starts_with(':') {
            return Some(left);
        }
    }
    None
}

/// The conjuncts of a key condition (`AND` in any case, between spaces).
fn split_and(expression: &str) -> Vec<&str> {
    let upper = expression.to_ascii_uppercase();
    let mut parts = Vec::new();
    let mut start = 0;
    let mut from = 0;
    let mut between_and_skipped = false;
    while let Some(found) = upper[from..].find(" AND ") {
        let at = from + found;
        // `BETWEEN :a AND :b` keeps its AND.
        if upper[start..at].contains(" BETWEEN ") && !between_and_skipped {
            between_and_skipped = true;
        } else {
            parts.push(&expression[start..at]);
            start = at + 5;
            between_and_skipped = false;
        }
        from = at + 5;
    }
    parts.push(&expression[start..]);
    parts
}

/// One table of a BatchGetItem: whether it is read consistently, and each key asked for with its
/// partition.
struct BatchTable {
    name: String,
    consistent: bool,
    keys: Vec<(Value, PartitionKey)>,
}

impl Partitions {
    /// Charges one read request and, unless its key is out of budget, hands its body to
    /// `forward`; returns DynamoDB's answer or the refusal. Malformed requests and unknown tables
    /// go through uncharged.
    pub(crate) async fn read<F, Fut>(
        &self,
        dynamodb: &axum::Router,
        operation: ReadOperation,
        headers: &HeaderMap,
        body: Bytes,
        forward: F,
    ) -> Response<Body>
    where
        F: FnOnce(Bytes) -> Fut,
        Fut: Future<Output = Response<Body>>,
    {
        let Some(rate) = self.read_rate else {
            return forward(body).await;
        };
        let reader = Reader::new(dynamodb, headers);
        let Ok(request) = serde_json::from_slice::<Value>(&body) else {
            return forward(body).await;
        };
        match operation {
            ReadOperation::BatchGetItem => self.batch_get(rate, &reader, request, forward).await,
            ReadOperation::GetItem | ReadOperation::Query => {
                let Some(table) = request["TableName"].as_str() else {
                    return forward(body).await;
                };
                let Some(schema) = self.schema(&reader, table).await else {
                    return forward(body).await;
                };
                let key = match operation {
                    ReadOperation::GetItem => request["Key"]
                        .as_object()
                        .and_then(|key| table_key(table, &schema, key)),
                    _ => query_key(&request, &schema),
                };
                let Some(key) = key else {
                    return forward(body).await;
                };
                if !self.read_admit(rate, std::slice::from_ref(&key))[0] {
                    lock(&self.state).throttled_reads += 1;
                    return self.throttled(&[key], Access::Read);
                }
                let consistent = request["ConsistentRead"].as_bool() == Some(true);
                let (parts, answer) = forward(body).await.into_parts();
                let answer = axum::body::to_bytes(answer, usize::MAX)
                    .await
                    .unwrap_or_default();
                if parts.status.is_success() {
                    let json: Value = serde_json::from_slice(&answer).unwrap_or_default();
                    let bytes = match operation {
                        ReadOperation::GetItem => json["Item"].as_object().map_or(0, item_size),
                        _ => json["Items"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_object)
                            .map(item_size)
                            .sum(),
                    };
                    self.read_charge(rate, &[(key, read_units(bytes, consistent))]);
                }
                Response::from_parts(parts, Body::from(answer))
            }
        }
    }

    /// BatchGetItem: refused keys are taken out of the request and handed back unprocessed.
    async fn batch_get<F, Fut>(
        &self,
        rate: f64,
        reader: &Reader<'_>,
        mut request: Value,
        forward: F,
    ) -> Response<Body>
    where
        F: FnOnce(Bytes) -> Fut,
        Fut: Future<Output = Response<Body>>,
    {
        let passthrough = |request: &Value| Bytes::from(request.to_string());
        let Some(tables) = request["RequestItems"].as_object().cloned() else {
            return forward(passthrough(&request)).await;
        };
        let mut planned: Vec<BatchTable> = Vec::new();
        for (table, asked) in &tables {
            let Some(schema) = self.schema(reader, table).await else {
                return forward(passthrough(&request)).await;
            };
            let mut keys = Vec::new();
            for key in asked["Keys"].as_array().into_iter().flatten() {
                let Some(partition) = key.as_object().and_then(|k| table_key(table, &schema, k))
                else {
                    return forward(passthrough(&request)).await;
                };
                keys.push((key.clone(), partition));
            }
            let consistent = asked["ConsistentRead"].as_bool() == Some(true);
            planned.push(BatchTable {
                name: table.clone(),
                consistent,
                keys,
            });
        }
        let all: Vec<PartitionKey> = planned
            .iter()
            .flat_map(|table| table.keys.iter().map(|(_, p)| p.clone()))
            .collect();
        let admitted = self.read_admit(rate, &all);
        let refused_count = admitted.iter().filter(|a| !**a).count();
        if refused_count > 0 {
            lock(&self.state).throttled_reads += refused_count as u64;
        }
        if refused_count == all.len() && !all.is_empty() {
            return self.throttled(&all, Access::Read);
        }
        let mut handed_back = Map::new();
        let mut flags = admitted.iter();
        for BatchTable {
            name: table, keys, ..
        } in &planned
        {
            let (mut kept, mut refused) = (Vec::new(), Vec::new());
            for (key, _) in keys {
                match flags.next() {
                    Some(true) => kept.push(key.clone()),
                    _ => refused.push(key.clone()),
                }
            }
            if !refused.is_empty() {
                let mut entry = tables[table].clone();
                entry["Keys"] = Value::Array(refused);
                handed_back.insert(table.clone(), entry);
            }
            match kept.is_empty() {
                true => {
                    if let Some(items) = request["RequestItems"].as_object_mut() {
                        items.remove(table);
                    }
                }
                false => request["RequestItems"][table]["Keys"] = Value::Array(kept),
            }
        }

        let (mut parts, answer) = forward(passthrough(&request)).await.into_parts();
        let mut answer = axum::body::to_bytes(answer, usize::MAX)
            .await
            .unwrap_or_default();
        if !parts.status.is_success() {
            return Response::from_parts(parts, Body::from(answer));
        }
        let mut json: Value = serde_json::from_slice(&answer).unwrap_or_default();
        let mut charges: HashMap<PartitionKey, f64> = HashMap::new();
        let mut flags = admitted.iter();
        for BatchTable {
            name: table,
            consistent,
            keys,
        } in &planned
        {
            let schema = self.schema(reader, table).await;
            let mut found: HashMap<PartitionKey, usize> = HashMap::new();
            for item in json["Responses"][table.as_str()]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_object)
            {
                if let Some(key) = schema.as_ref().and_then(|s| table_key(table, s, item)) {
                    *charges.entry(key.clone()).or_default() +=
                        read_units(item_size(item), *consistent);
                    *found.entry(key).or_default() += 1;
                }
            }
            // Keys asked for and not found still cost the minimum.
            for (_, key) in keys {
                if flags.next() != Some(&true) {
                    continue;
                }
                match found.get_mut(key) {
                    Some(n) if *n > 0 => *n -= 1,
                    _ => *charges.entry(key.clone()).or_default() += read_units(0, *consistent),
                }
            }
        }
        self.read_charge(rate, &charges.into_iter().collect::<Vec<_>>());
        if !handed_back.is_empty() {
            let unprocessed = json["UnprocessedKeys"].as_object().cloned();
            let mut merged = unprocessed.unwrap_or_default();
            merged.extend(handed_back);
            json["UnprocessedKeys"] = Value::Object(merged);
            answer = Bytes::from(json.to_string());
            // The body changed: its length and checksum are the old body's.
            parts.headers.remove(http::header::CONTENT_LENGTH);
            parts.headers.remove("x-amz-crc32");
        }
        Response::from_parts(parts, Body::from(answer))
    }

    /// Per key, whether it still has read budget (above zero units).
    fn read_admit(&self, rate: f64, keys: &[PartitionKey]) -> Vec<bool> {
        let now = Instant::now();
        let mut state = lock(&self.state);
        keys.iter()
            .map(|key| {
                let bucket = state
                    .read_buckets
                    .entry(key.clone())
                    .or_insert_with(|| Bucket::full(rate, now));
                bucket.refill(rate, now);
                let admitted = bucket.tokens > 1e-9;
                if !admitted {
                    bucket.throttled += 1;
                }
                admitted
            })
            .collect()
    }

    /// Takes what reads cost from their keys' budgets (which may go into debt).
    fn read_charge(&self, rate: f64, charges: &[(PartitionKey, f64)]) {
        let now = Instant::now();
        let second = now.saturating_duration_since(self.started).as_secs();
        let mut state = lock(&self.state);
        for (key, units) in charges {
            let bucket = state
                .read_buckets
                .entry(key.clone())
                .or_insert_with(|| Bucket::full(rate, now));
            bucket.refill(rate, now);
            bucket.tokens -= units;
            bucket.total += units;
            // The most in one second, for `/_local/partitions`'s `reads`, as writes have.
            if bucket.window != second {
                bucket.window = second;
                bucket.window_units = 0.0;
            }
            bucket.window_units += units;
            bucket.peak = bucket.peak.max(bucket.window_units);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_partition_report_lists_read_units_per_key_beside_the_writes() {
        let limiter = Partitions::new(Some(super::super::tests::limits(10.0)), "us-east-1");
        let key = |value: &str| PartitionKey {
            resource: "t".into(),
            value: value.into(),
        };
        limiter.read_charge(10.0, &[(key("hot"), 0.5), (key("cold"), 1.0)]);
        limiter.read_charge(10.0, &[(key("hot"), 1.5)]);

        let report = limiter.report(true, 5);

        assert_eq!(report["read_units"], 3.0);
        assert_eq!(report["reads"]["t"]["hottest"][0]["key"], "hot");
        assert_eq!(report["reads"]["t"]["hottest"][0]["units"], 2.0);
        assert_eq!(report["reads"]["t"]["hottest"][0]["peak_units_per_s"], 2.0);
        assert_eq!(report["partitions"], json!({}), "no write was charged");
        assert_eq!(limiter.report(false, 5)["reads"], json!({}), "reset");
    }

    #[test]
    fn a_read_costs_a_unit_per_started_4_kb_and_half_when_eventually_consistent() {
        assert_eq!(read_units(0, true), 1.0);
        assert_eq!(read_units(4096, true), 1.0);
        assert_eq!(read_units(4097, true), 2.0);
        assert_eq!(read_units(4097, false), 1.0);
        assert_eq!(read_units(10, false), 0.5);
    }

    #[test]
    fn the_partition_key_value_is_read_from_the_key_condition() {
        let is = |name: &'static str| move |token: &str| Some(token == name);

        assert_eq!(key_condition_value("pk = :v", is("pk")), Some(":v"));
        assert_eq!(
            key_condition_value("begins_with(sk, :p) and (pk=:v)", is("pk")),
            Some(":v")
        );
        assert_eq!(
            key_condition_value("sk BETWEEN :a AND :b AND pk = :v", is("pk")),
            Some(":v")
        );
        assert_eq!(key_condition_value(":v = pk", is("pk")), Some(":v"));
        assert_eq!(key_condition_value("pk <= :v", is("pk")), None);
        assert_eq!(key_condition_value("sk = :v", is("pk")), None);
    }

    #[test]
    fn a_query_names_its_table_or_index_partition() {
        let schema = TableSchema::from_description(&json!({
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "GlobalSecondaryIndexes": [{"IndexName": "by-kind",
                "KeySchema": [{"AttributeName": "kind", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"}}]
        }))
        .unwrap();
        let on_table = json!({"TableName": "t", "KeyConditionExpression": "#k = :v",
            "ExpressionAttributeNames": {"#k": "id"},
            "ExpressionAttributeValues": {":v": {"S": "hot"}}});
        let on_index = json!({"TableName": "t", "IndexName": "by-kind",
            "KeyConditionExpression": "kind = :v",
            "ExpressionAttributeValues": {":v": {"S": "book"}}});

        let key = query_key(&on_table, &schema).unwrap();
        assert_eq!((key.resource.as_str(), key.value.as_str()), ("t", "hot"));
        let key = query_key(&on_index, &schema).unwrap();
        assert_eq!(
            (key.resource.as_str(), key.value.as_str()),
            ("t/by-kind", "book")
        );
    }
}
