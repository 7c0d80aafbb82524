//! DynamoDB's transaction conflicts on the embedded endpoint (`AWS_TRANSACTION_CONFLICTS`), by
//! the rules of "Transaction conflict handling in DynamoDB" (Developer Guide,
//! transaction-apis.html):
//!
//! - an item (table + primary key) is in a transaction for the whole emulated duration of the
//!   `TransactWriteItems` that touches it: from when the endpoint receives the request until it
//!   answers, its emulated latency included;
//! - a `TransactWriteItems` touching such an item is cancelled: `TransactionCanceledException`
//!   with `TransactionConflict` at each conflicting action's position and `None` elsewhere;
//! - a `PutItem`, `UpdateItem` or `DeleteItem` on such an item fails with
//!   `TransactionConflictException`;
//! - a `TransactGetItems` reading an item that an ongoing `TransactWriteItems`,
//!   `BatchWriteItem`, `PutItem`, `UpdateItem` or `DeleteItem` writes is cancelled the same way.
//!
//! A `BatchWriteItem` holds its items against a `TransactGetItems` as the guide says, but is not
//! itself refused on an item in a transaction (the guide names no such rule). Dynoxide applies a
//! transaction atomically in one step, so without this emulation two overlapping transactions on
//! one item both succeed, one after the other.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Body;
use http::{Response, StatusCode};
use serde_json::{Map, Value, json};

use crate::aws_errors::{aws_error, transaction_canceled};

/// The message DynamoDB gives for a conflict, in a cancellation reason and in the exception.
const CONFLICT_MESSAGE: &str = "Transaction is ongoing for the item";

/// A request the conflict rules apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConflictOperation {
    /// `TransactWriteItems`: holds its items, cancelled on an item another one holds.
    TransactWrite,
    /// `TransactGetItems`: cancelled on an item a write in flight holds.
    TransactGet,
    /// `PutItem`, `UpdateItem`, `DeleteItem`: refused on an item a transaction holds.
    SingleWrite,
    /// `BatchWriteItem`: never refused, holds its items against a `TransactGetItems`.
    BatchWrite,
}

impl ConflictOperation {
    /// The operation an `X-Amz-Target` names, if the rules apply to it.
    pub(crate) fn from_target(target: Option<&str>) -> Option<Self> {
        match target?.strip_prefix("DynamoDB_20120810.")? {
            "TransactWriteItems" => Some(Self::TransactWrite),
            "TransactGetItems" => Some(Self::TransactGet),
            "PutItem" | "UpdateItem" | "DeleteItem" => Some(Self::SingleWrite),
            "BatchWriteItem" => Some(Self::BatchWrite),
            _ => None,
        }
    }
}

/// One item: its table and its primary key in canonical JSON (attributes sorted by name).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ItemId {
    table: String,
    key: String,
}

impl ItemId {
    /// The item of `table` at `key` (the key attributes only, in any order).
    pub(crate) fn new(table: &str, key: &Map<String, Value>) -> Self {
        let sorted: BTreeMap<&String, &Value> = key.iter().collect();
        ItemId {
            table: table.to_owned(),
            key: serde_json::to_string(&sorted).unwrap_or_default(),
        }
    }
}

/// The items of a `TransactGetItems` in request order; `None` when it is malformed.
pub(crate) fn transact_get_items(request: &Value) -> Option<Vec<ItemId>> {
    request["TransactItems"]
        .as_array()?
        .iter()
        .map(|entry| {
            let get = entry.get("Get")?;
            Some(ItemId::new(
                get["TableName"].as_str()?,
                get["Key"].as_object()?,
            ))
        })
        .collect()
}

/// Who is writing an item now.
#[derive(Debug, Default, Clone, Copy)]
struct Writers {
    transactions: u32,
    single_writes: u32,
}

/// The items in flight and the counters `/_local/conditions` reports.
#[derive(Debug, Default)]
pub(crate) struct Conflicts {
    in_flight: Arc<Mutex<HashMap<ItemId, Writers>>>,
    transactions_seen: AtomicU64,
    transactions_cancelled: AtomicU64,
    single_writes_refused: AtomicU64,
}

/// Why a request is refused: the positions of a transaction's conflicting actions, or a single
/// write on an item in a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Conflict {
    /// A transaction, with one flag per action: whether its item is in another one.
    Transaction(Vec<bool>),
    /// A `PutItem`, `UpdateItem` or `DeleteItem`.
    SingleWrite,
}

impl Conflict {
    /// DynamoDB's answer: `TransactionCanceledException` with `TransactionConflict` at each
    /// conflicting position and `None` elsewhere, or `TransactionConflictException`.
    pub(crate) fn response(&self) -> Response<Body> {
        match self {
            Conflict::Transaction(conflicting) => transaction_canceled(
                conflicting
                    .iter()
                    .map(|hit| match hit {
                        true => json!({"Code": "TransactionConflict", "Message": CONFLICT_MESSAGE}),
                        false => json!({"Code": "None"}),
                    })
                    .collect(),
            ),
            Conflict::SingleWrite => aws_error(
                StatusCode::BAD_REQUEST,
                &json!({
                    "__type": "com.amazonaws.dynamodb.v20120810#TransactionConflictException",
                    "message": CONFLICT_MESSAGE,
                }),
            ),
        }
    }
}

/// Items held by a request in flight; dropping it releases them.
#[derive(Debug)]
pub(crate) struct Hold {
    in_flight: Arc<Mutex<HashMap<ItemId, Writers>>>,
    items: Vec<ItemId>,
    transactional: bool,
}

impl Drop for Hold {
    fn drop(&mut self) {
        let mut in_flight = lock(&self.in_flight);
        for item in &self.items {
            if let Some(writers) = in_flight.get_mut(item) {
                match self.transactional {
                    true => writers.transactions = writers.transactions.saturating_sub(1),
                    false => writers.single_writes = writers.single_writes.saturating_sub(1),
                }
                if writers.transactions == 0 && writers.single_writes == 0 {
                    in_flight.remove(item);
                }
            }
        }
    }
}

impl Conflicts {
    /// Checks a request touching `items` (in request order) against the items in flight: the
    /// hold it keeps until it answers (`None`: it holds nothing), or why it is refused.
    pub(crate) fn check(
        &self,
        operation: ConflictOperation,
        items: Vec<ItemId>,
    ) -> Result<Option<Hold>, Conflict> {
        let mut in_flight = lock(&self.in_flight);
        let writers = |item: &ItemId| in_flight.get(item).copied().unwrap_or_default();
        match operation {
            ConflictOperation::TransactWrite | ConflictOperation::TransactGet => {
                self.transactions_seen.fetch_add(1, Ordering::Relaxed);
                let conflicting: Vec<bool> = items
                    .iter()
                    .map(|item| {
                        let w = writers(item);
                        w.transactions > 0
                            || (operation == ConflictOperation::TransactGet && w.single_writes > 0)
                    })
                    .collect();
                if conflicting.contains(&true) {
                    self.transactions_cancelled.fetch_add(1, Ordering::Relaxed);
                    return Err(Conflict::Transaction(conflicting));
                }
                if operation == ConflictOperation::TransactGet {
                    return Ok(None);
                }
            }
            ConflictOperation::SingleWrite => {
                if items.iter().any(|item| writers(item).transactions > 0) {
                    self.single_writes_refused.fetch_add(1, Ordering::Relaxed);
                    return Err(Conflict::SingleWrite);
                }
            }
            ConflictOperation::BatchWrite => {}
        }
        let transactional = operation == ConflictOperation::TransactWrite;
        for item in &items {
            let writers = in_flight.entry(item.clone()).or_default();
            match transactional {
                true => writers.transactions += 1,
                false => writers.single_writes += 1,
            }
        }
        Ok(Some(Hold {
            in_flight: Arc::clone(&self.in_flight),
            items,
            transactional,
        }))
    }

    /// `{"transactions_cancelled", "single_writes_refused", "transactions_seen"}` (the `on` flag
    /// is the caller's); `reset` zeroes the counters.
    pub(crate) fn counters(&self, reset: bool) -> Value {
        let read = |counter: &AtomicU64| match reset {
            true => counter.swap(0, Ordering::Relaxed),
            false => counter.load(Ordering::Relaxed),
        };
        json!({
            "transactions_cancelled": read(&self.transactions_cancelled),
            "single_writes_refused": read(&self.single_writes_refused),
            "transactions_seen": read(&self.transactions_seen),
        })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str) -> ItemId {
        ItemId::new("t", json!({"id": {"S": id}}).as_object().unwrap())
    }

    async fn reasons(conflict: Conflict) -> Value {
        let body = axum::body::to_bytes(conflict.response().into_body(), usize::MAX)
            .await
            .unwrap();
        serde_json::from_slice(&body).unwrap()
    }

    #[tokio::test]
    async fn an_overlapping_transaction_is_cancelled_at_the_conflicting_position_only() {
        let conflicts = Conflicts::default();
        let first = conflicts
            .check(ConflictOperation::TransactWrite, vec![item("a")])
            .unwrap();

        let refused = conflicts
            .check(ConflictOperation::TransactWrite, vec![item("b"), item("a")])
            .unwrap_err();

        let answer = reasons(refused).await;
        assert_eq!(answer["CancellationReasons"][0], json!({"Code": "None"}));
        assert_eq!(
            answer["CancellationReasons"][1]["Code"],
            "TransactionConflict"
        );
        drop(first);
        assert!(
            conflicts
                .check(ConflictOperation::TransactWrite, vec![item("a")])
                .is_ok(),
            "released when the first answered"
        );
        assert_eq!(
            conflicts.counters(true),
            json!({"transactions_cancelled": 1, "single_writes_refused": 0, "transactions_seen": 3})
        );
    }

    #[tokio::test]
    async fn a_single_write_is_refused_on_a_held_item_and_a_transact_get_on_a_written_one() {
        let conflicts = Conflicts::default();
        let transaction = conflicts
            .check(ConflictOperation::TransactWrite, vec![item("a")])
            .unwrap();
        let write = conflicts
            .check(ConflictOperation::SingleWrite, vec![item("b")])
            .unwrap();

        let refused = conflicts
            .check(ConflictOperation::SingleWrite, vec![item("a")])
            .unwrap_err();
        assert_eq!(
            reasons(refused).await["__type"],
            "com.amazonaws.dynamodb.v20120810#TransactionConflictException"
        );
        assert!(
            conflicts
                .check(ConflictOperation::TransactWrite, vec![item("b")])
                .is_ok(),
            "a single write does not hold off a transaction"
        );
        assert!(
            conflicts
                .check(ConflictOperation::TransactGet, vec![item("b")])
                .is_err()
        );
        let batch = conflicts
            .check(ConflictOperation::BatchWrite, vec![item("a"), item("c")])
            .unwrap();
        assert!(
            conflicts
                .check(ConflictOperation::TransactGet, vec![item("c")])
                .is_err(),
            "a batch write in flight holds its items against a transactional read"
        );
        drop((transaction, write, batch));
        assert!(
            conflicts
                .check(ConflictOperation::TransactGet, vec![item("a"), item("b")])
                .is_ok()
        );
        assert_eq!(conflicts.counters(false)["single_writes_refused"], 1);
    }

    #[test]
    fn an_item_is_its_table_and_key_whatever_the_attribute_order() {
        let one = ItemId::new(
            "t",
            json!({"pk": {"S": "1"}, "sk": {"S": "2"}})
                .as_object()
                .unwrap(),
        );
        let other = ItemId::new(
            "t",
            json!({"sk": {"S": "2"}, "pk": {"S": "1"}})
                .as_object()
                .unwrap(),
        );

        assert_eq!(one, other);
        assert_ne!(
            one,
            ItemId::new(
                "u",
                json!({"pk": {"S": "1"}, "sk": {"S": "2"}})
                    .as_object()
                    .unwrap()
            )
        );
        let get =
            json!({"TransactItems": [{"Get": {"TableName": "t", "Key": {"id": {"S": "a"}}}}]});
        assert_eq!(transact_get_items(&get), Some(vec![item("a")]));
        assert_eq!(transact_get_items(&json!({})), None);
    }
}
