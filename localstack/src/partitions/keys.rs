//! The items a write request touches, by table and primary key, for the transaction-conflict
//! emulation (`crate::conditions::conflicts`): the limiter already parses writes and caches key
//! schemas, so the conflict check reuses both instead of keeping its own.

use http::HeaderMap;
use serde_json::{Map, Value};

use super::cost::{Change, parse_actions};
use super::wire::Reader;
use super::{Partitions, WriteOperation};

impl Partitions {
    /// The `(table, key)` of each action of a write request, in request order; `None` when it
    /// is malformed or names an unknown table (a put's key is taken from its item by the table's
    /// key schema, read once with DescribeTable through `dynamodb`).
    pub(crate) async fn item_keys(
        &self,
        dynamodb: &axum::Router,
        headers: &HeaderMap,
        operation: WriteOperation,
        request: &Value,
    ) -> Option<Vec<(String, Map<String, Value>)>> {
        let reader = Reader::new(dynamodb, headers);
        let mut keys = Vec::new();
        for action in parse_actions(operation, request)? {
            let key = match &action.change {
                Change::Put(item) => self.schema(&reader, &action.table).await?.key_of(item)?,
                _ => action.key?,
            };
            keys.push((action.table, key));
        }
        Some(keys)
    }
}
