//! What a write costs: the actions a request takes, the units each charges to its table
//! partition and to its indexes' partitions, the key schemas read from DescribeTable, and item
//! sizes by DynamoDB's rules.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::wire::{Item, Reader};
use super::{Charge, PartitionKey, Partitions, WriteOperation, lock};

/// What one action does to its item.
#[derive(Debug, Clone)]
pub(super) enum Change {
    Put(Item),
    Update,
    Delete,
    /// A transaction's ConditionCheck: no change, billed as a write.
    Check,
}

/// An action as the request states it.
pub(super) struct ParsedAction {
    pub(super) table: String,
    pub(super) key: Option<Item>,
    pub(super) change: Change,
    /// BatchWriteItem: the request entry, to hand back unprocessed.
    entry: Value,
}

/// The actions a write request states; `None` when it is malformed.
pub(super) fn parse_actions(
    operation: WriteOperation,
    request: &Value,
) -> Option<Vec<ParsedAction>> {
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

impl Partitions {
    /// The request parsed into the actions it takes, each with its item before the write;
    /// `None` when it is malformed or names an unknown table.
    pub(super) async fn plan(
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
    pub(super) async fn schema(
        &self,
        reader: &Reader<'_>,
        table: &str,
    ) -> Option<Arc<TableSchema>> {
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
}

/// One action of a write request, with its item as it was before.
pub(super) struct Action {
    pub(super) table: String,
    schema: Arc<TableSchema>,
    pub(super) key: Item,
    pub(super) change: Change,
    transactional: bool,
    /// The item before the write (`None`: there was none).
    pub(super) before: Option<Item>,
    pub(super) entry: Value,
}

impl Action {
    /// What the write is known to cost before it is applied.
    pub(super) fn estimate(&self) -> Vec<Charge> {
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
    pub(super) fn exact(&self, after: Option<&Item>) -> Vec<Charge> {
        let mut charges = vec![self.table_charge(after)];
        if !matches!(self.change, Change::Check) {
            charges.extend(self.index_charges(after));
        }
        charges
    }

    /// The table partition's charge: the larger image, doubled in a transaction.
    pub(super) fn table_charge(&self, after: Option<&Item>) -> Charge {
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
pub(super) struct TableSchema {
    pub(super) hash: String,
    range: Option<String>,
    pub(super) indexes: Vec<IndexSchema>,
}

#[derive(Debug)]
pub(super) struct IndexSchema {
    pub(super) name: String,
    /// Key attributes in key-schema order (a GSI key may have up to four of each).
    pub(super) hash: Vec<String>,
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
    pub(super) fn from_description(table: &Value) -> Option<Self> {
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
    pub(super) fn key_of(&self, item: &Item) -> Option<Item> {
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
pub(super) fn key_text(values: &[&Value]) -> String {
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
pub(super) fn item_size(item: &Item) -> usize {
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
    use super::*;
    use crate::partitions::tests::charge;

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
