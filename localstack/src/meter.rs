//! What the embedded AWS endpoint served: requests per operation and, when asked for, the capacity
//! units DynamoDB charged per table. The load tests read it to give the cost of one order
//! (`GET /_local/meter`, `?reset=true` to start counting afresh); nothing in the functions sees it.
//!
//! Capacity comes from DynamoDB itself: with `METER_CAPACITY=on` the endpoint asks for
//! `ReturnConsumedCapacity: INDEXES` on every DynamoDB request that did not ask for it and adds up
//! the `ConsumedCapacity` of each answer (the answer goes back unchanged apart from that member,
//! which the SDK reads and the functions ignore). Off by default: it parses every body. A run can
//! switch it for a while: `GET /_local/meter?capacity=on` (or `off`), so that a benchmark meters its
//! cost scenario without slowing the others.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

/// Where the meter answers on the AWS endpoint.
pub(crate) const METER_PATH: &str = "/_local/meter";

/// Counters of one endpoint.
#[derive(Debug, Default)]
pub(crate) struct Meter {
    capacity_on: AtomicBool,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    /// `DynamoDB.TransactWriteItems`, `SQS.SendMessage`, ...
    requests: BTreeMap<String, u64>,
    /// Per table (`orders`) and per index (`orders/status-updated`): read and write units.
    capacity: BTreeMap<String, Units>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Units {
    read: f64,
    write: f64,
}

impl Meter {
    pub(crate) fn new(capacity_on: bool) -> Self {
        Meter {
            capacity_on: AtomicBool::new(capacity_on),
            counts: Mutex::default(),
        }
    }

    /// Whether DynamoDB bodies are to be rewritten and read.
    pub(crate) fn capacity_on(&self) -> bool {
        self.capacity_on.load(Ordering::Relaxed)
    }

    /// Switches the capacity metering on or off from now on.
    pub(crate) fn set_capacity(&self, on: bool) {
        self.capacity_on.store(on, Ordering::Relaxed);
    }

    /// Every AWS request passes here: counted under its raw target (no allocation once seen),
    /// named in [`Meter::report`].
    pub(crate) fn count(&self, target: Option<&str>) {
        let target = target.unwrap_or("(no X-Amz-Target)");
        let mut counts = self.lock();
        match counts.requests.get_mut(target) {
            Some(n) => *n += 1,
            None => {
                counts.requests.insert(target.to_owned(), 1);
            }
        }
    }

    /// A DynamoDB request body with `ReturnConsumedCapacity: INDEXES` unless it names a mode.
    pub(crate) fn ask_for_capacity(body: &[u8]) -> Option<Vec<u8>> {
        let mut request: Value = serde_json::from_slice(body).ok()?;
        let object = request.as_object_mut()?;
        if object.contains_key("ReturnConsumedCapacity") {
            return None;
        }
        object.insert("ReturnConsumedCapacity".into(), json!("INDEXES"));
        serde_json::to_vec(&request).ok()
    }

    /// Adds the `ConsumedCapacity` (one object, or a list for transactions and batches) of a
    /// DynamoDB answer to `target`; units without a read/write split count as the operation's kind.
    pub(crate) fn add_capacity(&self, target: Option<&str>, answer: &[u8]) {
        let reads = target.is_some_and(|t| {
            [
                "GetItem",
                "BatchGetItem",
                "Query",
                "Scan",
                "TransactGetItems",
            ]
            .iter()
            .any(|op| t.ends_with(&format!(".{op}")))
        });
        let Ok(answer) = serde_json::from_slice::<Value>(answer) else {
            return;
        };
        let consumed: Vec<&Value> = match answer.get("ConsumedCapacity") {
            Some(Value::Array(list)) => list.iter().collect(),
            Some(one @ Value::Object(_)) => vec![one],
            _ => return,
        };
        let mut counts = self.lock();
        for entry in consumed {
            let Some(table) = entry.get("TableName").and_then(Value::as_str) else {
                continue;
            };
            let (read, write) = match entry.get("Table") {
                Some(units) => read_write(units, reads),
                // No per-table breakdown: the total is the table's.
                None => read_write(entry, reads),
            };
            let units = counts.capacity.entry(table.to_owned()).or_default();
            units.read += read;
            units.write += write;
            for (index, units) in entry
                .get("GlobalSecondaryIndexes")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let (read, write) = read_write(units, reads);
                let slot = counts
                    .capacity
                    .entry(format!("{table}/{index}"))
                    .or_default();
                slot.read += read;
                slot.write += write;
            }
        }
    }

    /// The counters as JSON; `reset` starts them afresh.
    pub(crate) fn report(&self, reset: bool) -> Value {
        let mut counts = self.lock();
        let report = json!({
            "capacity_metered": self.capacity_on(),
            "requests": counts
                .requests
                .iter()
                .map(|(target, n)| (operation_name(target), json!(n)))
                .collect::<serde_json::Map<String, Value>>(),
            "capacity": counts
                .capacity
                .iter()
                .map(|(name, units)| (name.clone(), json!({"read": units.read, "write": units.write})))
                .collect::<serde_json::Map<String, Value>>(),
        });
        if reset {
            *counts = Counts::default();
        }
        report
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `DynamoDB_20120810.GetItem` → `DynamoDB.GetItem`, `AmazonSQS.SendMessage` → `SQS.SendMessage`.
fn operation_name(target: &str) -> String {
    match target.split_once('.') {
        Some((service, operation)) if service.starts_with("DynamoDB") => {
            format!("DynamoDB.{operation}")
        }
        Some(("AmazonSQS", operation)) => format!("SQS.{operation}"),
        _ => target.to_owned(),
    }
}

/// Read and write units of a `Capacity` (or `ConsumedCapacity`) object; a bare `CapacityUnits`
/// is of the operation's kind.
fn read_write(units: &Value, reads: bool) -> (f64, f64) {
    let read = units.get("ReadCapacityUnits").and_then(Value::as_f64);
    let write = units.get("WriteCapacityUnits").and_then(Value::as_f64);
    match (read, write) {
        (None, None) => {
            let total = units
                .get("CapacityUnits")
                .and_then(Value::as_f64)
                .unwrap_or(0.0);
            if reads { (total, 0.0) } else { (0.0, total) }
        }
        (read, write) => (read.unwrap_or(0.0), write.unwrap_or(0.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_service_and_operation() {
        let meter = Meter::new(false);
        meter.count(Some("DynamoDB_20120810.TransactWriteItems"));
        meter.count(Some("DynamoDB_20120810.TransactWriteItems"));
        meter.count(Some("AmazonSQS.SendMessage"));
        let report = meter.report(true);
        assert_eq!(report["requests"]["DynamoDB.TransactWriteItems"], 2);
        assert_eq!(report["requests"]["SQS.SendMessage"], 1);
        assert_eq!(meter.report(false)["requests"], json!({}), "reset");
    }

    #[test]
    fn capacity_is_asked_for_once_and_added_per_table_and_index() {
        let asked = Meter::ask_for_capacity(br#"{"TableName":"orders"}"#).unwrap();
        let asked: Value = serde_json::from_slice(&asked).unwrap();
        assert_eq!(asked["ReturnConsumedCapacity"], "INDEXES");
        assert!(Meter::ask_for_capacity(br#"{"ReturnConsumedCapacity":"TOTAL"}"#).is_none());

        let meter = Meter::new(true);
        meter.add_capacity(
            Some("DynamoDB_20120810.TransactWriteItems"),
            br#"{"ConsumedCapacity":[
                {"TableName":"products","CapacityUnits":2.0,"Table":{"CapacityUnits":2.0,"WriteCapacityUnits":2.0}},
                {"TableName":"orders","CapacityUnits":4.0,"Table":{"WriteCapacityUnits":2.0},
                 "GlobalSecondaryIndexes":{"status-updated":{"WriteCapacityUnits":2.0}}}]}"#,
        );
        meter.add_capacity(
            Some("DynamoDB_20120810.GetItem"),
            br#"{"ConsumedCapacity":{"TableName":"products","CapacityUnits":0.5}}"#,
        );
        let report = meter.report(false);
        assert_eq!(report["capacity"]["products"]["write"], 2.0);
        assert_eq!(report["capacity"]["products"]["read"], 0.5);
        assert_eq!(report["capacity"]["orders"]["write"], 2.0);
        assert_eq!(report["capacity"]["orders/status-updated"]["write"], 2.0);
    }
}
