//! Every mapping between DynamoDB items and the domain, one file per table; this file holds the
//! encoders and the typed reader they share. Only this module knows how a value is encoded.

mod holds;
mod idempotency;
mod locks;
mod orders;
mod products;
mod webhooks;

pub(super) use holds::{
    HOLD_SWEEP_SHARDS, hold_count_key, hold_item, hold_key, hold_status, product_gone_key,
};
pub(super) use idempotency::idempotency_key;
pub(super) use locks::{lock_item, lock_key};
pub(super) use orders::{
    REQUEST_FINGERPRINT, Stocked, UNSETTLED_SHARD, UNSETTLED_SHARDS, USER_ORDERS_CURSOR_KEY,
    order_key, placed_order_item, request_fingerprint, unsettled_shard, user_orders_start_key,
};
pub(super) use products::{
    PRODUCT_CURSOR_KEY, ProductItem, layout_of, product_item, product_key, product_start_key,
    shard_item, stock_key, stock_of,
};
pub(super) use webhooks::{
    pending_settlement_key, pending_settlement_values, webhook_item, webhook_key,
};

use std::collections::HashMap;
use std::str::FromStr;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};

use crate::domain::{Money, OrderStatus, ShardSplit};
use crate::ports::StoreError;

/// One item (or key) as the SDK hands it over.
pub(super) type Item = HashMap<String, AttributeValue>;

/// An order's or hold's attribute naming the take (`stock_journal`) that stocked it.
pub(super) const TAKE_TOKEN: &str = "take_token";
/// An order's or hold's attribute naming the restore (`stock_journal`) its status move committed.
pub(super) const RESTORE_TOKEN: &str = "restore_token";

/// A string value.
pub(super) fn string(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A number value from anything that prints as a DynamoDB number.
pub(super) fn number(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A money value: the two-place decimal text, so a stored price reads back exactly.
pub(super) fn money(value: Money) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A timestamp as RFC 3339 UTC with milliseconds and `Z`, so stored times sort lexically.
pub(super) fn timestamp(at: DateTime<Utc>) -> AttributeValue {
    AttributeValue::S(timestamp_text(at))
}

/// An order status as stored (`PENDING`, ...).
pub(super) fn status(value: OrderStatus) -> AttributeValue {
    string(value.as_str())
}

fn timestamp_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A `(shard, units)` split as a map attribute (`{"3": 2, "7": 1}`).
fn shard_split(split: &ShardSplit, quantity: u32) -> AttributeValue {
    AttributeValue::M(
        split
            .parts(quantity)
            .into_iter()
            .map(|(shard, units)| (shard.to_string(), number(units)))
            .collect(),
    )
}

/// The split written by [`shard_split`]; absent means all from shard 0.
fn read_shard_split(item: &Item, what: &'static str) -> Result<ShardSplit, StoreError> {
    let Some(value) = item.get("shards") else {
        return Ok(ShardSplit::default());
    };
    let corrupt = |reason: &str| StoreError::Corrupt(format!("{what}: attribute shards {reason}"));
    let AttributeValue::M(parts) = value else {
        return Err(corrupt("is not a map"));
    };
    let parts = parts
        .iter()
        .map(|(shard, units)| {
            let shard = shard
                .parse::<u16>()
                .map_err(|_| corrupt("has a bad shard"))?;
            let units = match units {
                AttributeValue::N(n) => n.parse::<u32>().map_err(|_| corrupt("has bad units"))?,
                _ => return Err(corrupt("has bad units")),
            };
            Ok((shard, units))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(ShardSplit::from_parts(parts))
}

/// A shard in `0..shards` for an id: a fixed hash, so every process and every run agrees.
fn stable_shard(id: &str, shards: u32) -> u32 {
    let hash = id
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    hash % shards
}

/// The cursor key of a returned item: its `attributes` (the table key, plus the index key for an
/// index query), which is what `LastEvaluatedKey` would be had the page ended at this item.
pub(super) fn cursor_key(item: &Item, attributes: &[&str]) -> Item {
    attributes
        .iter()
        .filter_map(|name| Some(((*name).to_owned(), item.get(*name)?.clone())))
        .collect()
}

/// Typed reads of one item's attributes; a missing or mistyped attribute is [`StoreError::Corrupt`].
struct Fields<'a> {
    item: &'a Item,
    what: &'static str,
}

impl<'a> Fields<'a> {
    fn new(item: &'a Item, what: &'static str) -> Self {
        Self { item, what }
    }

    fn corrupt(&self, name: &str, reason: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt(format!("{} attribute {name}: {reason}", self.what))
    }

    fn string(&self, name: &str) -> Result<&'a str, StoreError> {
        match self.item.get(name) {
            Some(AttributeValue::S(value)) => Ok(value),
            Some(_) => Err(self.corrupt(name, "not a string")),
            None => Err(self.corrupt(name, "missing")),
        }
    }

    fn number<T: FromStr>(&self, name: &str) -> Result<T, StoreError>
    where
        T::Err: std::fmt::Display,
    {
        match self.item.get(name) {
            Some(AttributeValue::N(text)) => text.parse().map_err(|e| self.corrupt(name, e)),
            Some(_) => Err(self.corrupt(name, "not a number")),
            None => Err(self.corrupt(name, "missing")),
        }
    }

    fn money(&self, name: &str) -> Result<Money, StoreError> {
        match self.item.get(name) {
            // The value counts, not the form: DynamoDB may hand `9.90` back as `9.9`.
            Some(AttributeValue::N(text)) => rust_decimal::Decimal::from_str(text)
                .map_err(|e| self.corrupt(name, e))
                .and_then(|value| Money::from_decimal(value).map_err(|e| self.corrupt(name, e))),
            Some(_) => Err(self.corrupt(name, "not a number")),
            None => Err(self.corrupt(name, "missing")),
        }
    }

    fn time(&self, name: &str) -> Result<DateTime<Utc>, StoreError> {
        let text = self.string(name)?;
        DateTime::parse_from_rfc3339(text)
            .map(|at| at.with_timezone(&Utc))
            .map_err(|e| self.corrupt(name, e))
    }

    fn optional_time(&self, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        if self.item.contains_key(name) {
            self.time(name).map(Some)
        } else {
            Ok(None)
        }
    }

    fn list(&self, name: &str) -> Result<&'a [AttributeValue], StoreError> {
        match self.item.get(name) {
            Some(AttributeValue::L(values)) => Ok(values),
            Some(_) => Err(self.corrupt(name, "not a list")),
            None => Err(self.corrupt(name, "missing")),
        }
    }
}

/// A time `seconds` after 2026-01-01, with milliseconds: items must keep timestamps exact.
#[cfg(test)]
fn at(seconds: i64) -> DateTime<Utc> {
    use chrono::TimeZone;
    Utc.timestamp_millis_opt(1_767_225_600_000 + seconds * 1000 + 123)
        .unwrap()
}
