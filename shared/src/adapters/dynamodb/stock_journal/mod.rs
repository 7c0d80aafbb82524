//! Stock moves without a transaction on the stock item: a hot product's shard item is written only
//! by single-item conditional writes, each carrying an entry of the shard's journal, so that the
//! transactions of orders, holds, cancellations and failed payments touch cold items only and
//! never conflict on the hot one (docs/decisions.md, "Stock outside transactions").
//!
//! - **Take** (an order from items, a hold): one UpdateItem per shard, `stock = stock - q` on
//!   condition that the units are there, the entry is not (a retry of a write whose answer was
//!   lost meets its own entry) and the journal is not full, adding the entry `~t<token>` =
//!   `<owner> <q> <ms>`. The owner (order or hold) is then written with `take_token = <token>`;
//!   on success the entry is removed (**release**: a hold's at once, an order's once its message
//!   is sent, so the entry is the record of an order whose message may be missing), on failure
//!   the units come back with it (**undo**: `stock + q`, entry removed, on condition that the
//!   entry is there, so exactly once).
//! - **Restore** (cancel, failed payment, expired hold): first an intent `~r<token>_<i>` =
//!   `<owner> <q> <ms>` on each shard, stock untouched; then the owner's status move in a
//!   transaction with `restore_token = <token>`; then, if it moved, **apply** (`stock + q`, intent
//!   removed, on condition that the intent is there) or, if it did not, **drop** the intent.
//! - **Journal size**: a write costs a unit per started KB of the item, and on a saturated shard
//!   the releases used to queue behind the takes for the key's budget: the journal grew to some
//!   6 KB (7 units a write). The writes that finish a move now retry sooner than the takes, which
//!   keeps it short. `journal_open` counts the entries (every write that adds or removes one does
//!   so on condition that the entry is absent or present, so the count stays exact) and a take is
//!   refused while it is at [`JOURNAL_CAP`], a bound for when releases cannot land; a full journal
//!   is answered like a throttled shard: the order goes to another shard or waits.
//! - **Sweep** (the reconciler): an entry older than the sweep delay belongs to a writer that died
//!   or failed between its steps. A take whose owner carries its token is released (an order
//!   still PENDING is handed to the reconciler, which sends its message and then releases it),
//!   any other is undone; a restore whose owner carries its token is applied, any other is dropped. Every one
//!   of these writes is conditional on the entry, so the live writer and the sweeper never both
//!   move the units.
//!
//! The one assumption: a writer's transaction lands within the sweep delay of its first step (the
//! functions time out after 10 s at most; the delay is `RECONCILE_AFTER_SECONDS`, 300 s).

use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure, Update};
use chrono::{DateTime, Utc};

use super::items::{self, Item, RESTORE_TOKEN, TAKE_TOKEN};
use super::{DynamoStore, sdk_failure};
use crate::domain::{HoldId, OrderId, ProductId, StockShard};
use crate::ports::StoreError;
use crate::retry::full_jitter;

mod sweep;

/// How a single-item stock write is retried while the item is in another transaction (a
/// re-shard) or its partition is throttled.
#[derive(Debug, Clone, Copy)]
struct Retries {
    attempts: u32,
    /// First pause; doubles per retry, with full jitter.
    backoff: Duration,
    /// Longest pause.
    cap: Duration,
}

/// A take: 2 attempts a few ms apart, then the shard is reported busy and the placement picks
/// another shard, or waits (`application/stock_patience.rs`): a throttled key's budget comes back
/// at its own pace, while the product's other keys may have budget now.
const TAKE_RETRIES: Retries = Retries {
    attempts: 2,
    backoff: Duration::from_millis(2),
    cap: Duration::from_millis(10),
};

/// A release, undo, restore intent, apply or drop: it finishes a move already made, so it retries
/// sooner and longer than a take (1 ms doubling to 10 ms, 400 attempts: a few seconds with the
/// calls' own latency). On a throttled shard it then gets the key's budget before the takes that
/// wait longer (a throttled call costs no unit, a take refused by a full journal does), which
/// keeps the journal short and the units back in stock at once; past that, the sweep finishes it.
const SETTLE_RETRIES: Retries = Retries {
    attempts: 400,
    backoff: Duration::from_millis(1),
    cap: Duration::from_millis(10),
};
/// Length of a journal token: 12 hex digits of a random UUID.
const TOKEN_LEN: usize = 12;
/// Prefix of a take entry's attribute name.
const TAKE: &str = "~t";
/// Prefix of a restore intent's attribute name.
const RESTORE: &str = "~r";
/// The stock item's count of journal entries.
const JOURNAL_OPEN: &str = "journal_open";
/// Entries a stock item holds at most: takes wait while it is full. What keeps a journal short
/// is the order of the retries (the writes that finish a move retry sooner than the takes, so
/// they get a saturated key's budget first); the cap is the bound when they cannot land (a long
/// throttle, a sweep not run yet): ~64 bytes an entry, some 4 KB, far from DynamoDB's 400 KB item
/// limit. It does not bind in a sale: an entry lives from its take to its release (a transaction
/// and a write, 20-45 ms in AWS), so 64 allow some 2,000 orders/s on one item, past the 416 its
/// partition's write units allow, and 64 buyers on one item of the local stack.
const JOURNAL_CAP: u64 = 64;

/// Units of one stock shard in a move.
pub(super) type StockPart = (StockShard, u64);

/// A fresh journal token, one per attempt of a stock move.
pub(super) fn token() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..TOKEN_LEN].to_owned()
}

/// Who a journal entry moves units for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Owner {
    /// An order (orders table).
    Order(OrderId),
    /// A hold (holds table).
    Hold(HoldId),
}

impl Owner {
    /// `o<order id>` or `h<hold id>`.
    fn encode(&self) -> String {
        match self {
            Owner::Order(id) => format!("o{id}"),
            Owner::Hold(id) => format!("h{id}"),
        }
    }

    fn decode(text: &str) -> Option<Self> {
        match text.split_at_checked(1)? {
            ("o", id) if !id.is_empty() => Some(Owner::Order(OrderId::new(id))),
            ("h", id) if !id.is_empty() => Some(Owner::Hold(HoldId::new(id))),
            _ => None,
        }
    }
}

/// One journal entry as stored: `<owner> <units> <epoch ms>`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    owner: Owner,
    units: u64,
    at_ms: i64,
}

impl Entry {
    fn value(&self) -> AttributeValue {
        items::string(format!(
            "{} {} {}",
            self.owner.encode(),
            self.units,
            self.at_ms
        ))
    }

    fn parse(text: &str) -> Option<Self> {
        let mut fields = text.rsplitn(3, ' ');
        let at_ms = fields.next()?.parse().ok()?;
        let units = fields.next()?.parse().ok()?;
        let owner = Owner::decode(fields.next()?)?;
        Some(Entry {
            owner,
            units,
            at_ms,
        })
    }
}

/// Why a take did not happen.
#[derive(Debug)]
pub(super) enum TakeRefused {
    /// The shard lacks the units, or the product (or this shard) is gone.
    Short(ProductId),
    /// The shard stayed in other transactions, or throttled, through every attempt.
    Busy(ProductId),
    /// The store failed.
    Store(StoreError),
}

/// How a single-item stock write ended.
enum Written {
    Done,
    /// Its condition was false; the item as it was, when it exists.
    ConditionFailed(Option<Item>),
    /// In another transaction or throttled through every attempt.
    Busy,
}

impl DynamoStore {
    /// Takes every part (in order) with entries of `token` for `owner`; on a refusal the parts
    /// already taken are undone.
    pub(super) async fn take_parts(
        &self,
        parts: &[StockPart],
        owner: &Owner,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<(), TakeRefused> {
        let entry = Entry {
            owner: owner.clone(),
            units: 0,
            at_ms: now.timestamp_millis(),
        };
        for (i, (shard, quantity)) in parts.iter().enumerate() {
            let entry = Entry {
                units: *quantity,
                ..entry.clone()
            };
            let name = format!("{TAKE}{token}");
            // `attribute_not_exists(#e)`: a retry of a write whose answer was lost must not take
            // the units twice; it meets its own entry instead.
            let update = Update::builder()
                .update_expression(
                    "SET stock = stock - :q, updated_at = :now, #e = :e, \
                     #n = if_not_exists(#n, :zero) + :one",
                )
                .condition_expression(
                    "attribute_exists(id) AND attribute_not_exists(deleted_at) AND stock >= :q \
                     AND attribute_not_exists(#e) AND (attribute_not_exists(#n) OR #n < :cap)",
                )
                .expression_attribute_names("#e", &name)
                .expression_attribute_names("#n", JOURNAL_OPEN)
                .expression_attribute_values(":q", items::number(*quantity))
                .expression_attribute_values(":now", items::timestamp(now))
                .expression_attribute_values(":e", entry.value())
                .expression_attribute_values(":zero", items::number(0))
                .expression_attribute_values(":one", items::number(1))
                .expression_attribute_values(":cap", items::number(JOURNAL_CAP));
            let refusal = match self.write_stock(shard, update, TAKE_RETRIES).await {
                Ok(Written::Done) => continue,
                Ok(Written::ConditionFailed(Some(old))) if old.contains_key(&name) => continue,
                Ok(Written::ConditionFailed(Some(old))) if journal_full(&old, *quantity) => {
                    TakeRefused::Busy(shard.product_id.clone())
                }
                Ok(Written::ConditionFailed(_)) => TakeRefused::Short(shard.product_id.clone()),
                Ok(Written::Busy) => TakeRefused::Busy(shard.product_id.clone()),
                Err(error) => TakeRefused::Store(error),
            };
            self.undo_takes(&parts[..i], token).await;
            return Err(refusal);
        }
        Ok(())
    }

    /// Removes the take entries of `token` once their owner is written. Best effort: an entry
    /// left behind is released by the sweep.
    pub(super) async fn release_takes(&self, parts: &[StockPart], token: &str) {
        for (shard, _) in parts {
            if let Err(error) = self.remove_entry(shard, &format!("{TAKE}{token}")).await {
                tracing::warn!(%shard, %error, "releasing a stock take failed; the sweep will");
            }
        }
    }

    /// Removes the entry `name` without moving units, once: `false` when it was not there.
    async fn remove_entry(&self, shard: &StockShard, name: &str) -> Result<bool, StoreError> {
        let update = Update::builder()
            .update_expression("SET #n = if_not_exists(#n, :zero) - :one REMOVE #e")
            .condition_expression("attribute_exists(#e)")
            .expression_attribute_names("#e", name)
            .expression_attribute_names("#n", JOURNAL_OPEN)
            .expression_attribute_values(":zero", items::number(0))
            .expression_attribute_values(":one", items::number(1));
        match self.write_stock(shard, update, SETTLE_RETRIES).await? {
            Written::Done => Ok(true),
            Written::ConditionFailed(_) => Ok(false),
            Written::Busy => Err(busy(shard)),
        }
    }

    /// Gives back the units of `token`'s takes, each once. Best effort: an entry left behind is
    /// undone by the sweep.
    pub(super) async fn undo_takes(&self, parts: &[StockPart], token: &str) {
        for (shard, quantity) in parts {
            let name = format!("{TAKE}{token}");
            if let Err(error) = self.give_back(shard, *quantity, &name).await {
                tracing::warn!(%shard, %error, "undoing a stock take failed; the sweep will");
            }
        }
    }

    /// After the owner's write failed or went unanswered: its takes are undone only if the owner
    /// does not carry `token` (an answer lost after the write was applied reads as a refusal on
    /// the SDK's retry; then the takes are the owner's, and released when `release`). `Some`
    /// whether the owner was written; `None` when it cannot be read: the entries stay for the
    /// sweep.
    pub(super) async fn settle_takes(
        &self,
        parts: &[StockPart],
        owner: &Owner,
        token: &str,
        release: bool,
    ) -> Option<bool> {
        match self.owner_token(owner, TAKE_TOKEN).await {
            Ok(Some(found)) if found == token => {
                if release {
                    self.release_takes(parts, token).await;
                }
                Some(true)
            }
            Ok(_) => {
                self.undo_takes(parts, token).await;
                Some(false)
            }
            Err(error) => {
                tracing::warn!(?owner, %error, "a placement's outcome is unknown; its stock takes are left to the sweep");
                None
            }
        }
    }

    /// After an owner's status move failed or went unanswered: its restore intents are applied if
    /// the owner carries `token` (the move was applied), else dropped; `true` when applied. When
    /// the owner cannot be read, the intents stay for the sweep and the error is returned.
    pub(super) async fn settle_restores(
        &self,
        placed: &[(StockShard, u64, String)],
        owner: &Owner,
        token: &str,
    ) -> Result<bool, StoreError> {
        if self.owner_token(owner, RESTORE_TOKEN).await?.as_deref() == Some(token) {
            self.apply_restores(placed).await;
            return Ok(true);
        }
        self.drop_restores(placed).await;
        Ok(false)
    }

    /// `stock + units` and the entry `name` removed, on condition that the entry is there. When
    /// the shard item is gone (a re-shard drained it after the units left it), the units go to
    /// shard 0, the product item, as every restore does.
    async fn give_back(
        &self,
        shard: &StockShard,
        units: u64,
        name: &str,
    ) -> Result<bool, StoreError> {
        let update = Update::builder()
            .update_expression(
                "SET stock = stock + :q, #n = if_not_exists(#n, :zero) - :one REMOVE #e",
            )
            .condition_expression("attribute_exists(#e)")
            .expression_attribute_names("#e", name)
            .expression_attribute_names("#n", JOURNAL_OPEN)
            .expression_attribute_values(":q", items::number(units))
            .expression_attribute_values(":zero", items::number(0))
            .expression_attribute_values(":one", items::number(1));
        match self.write_stock(shard, update, SETTLE_RETRIES).await? {
            Written::Done => Ok(true),
            Written::ConditionFailed(Some(_)) => Ok(false),
            Written::ConditionFailed(None) if shard.shard != 0 => {
                let first = StockShard::first(shard.product_id.clone());
                let update = Update::builder()
                    .update_expression("SET stock = stock + :q")
                    .condition_expression("attribute_exists(id)")
                    .expression_attribute_values(":q", items::number(units));
                tracing::info!(%shard, units, "a stock shard is gone; its units go back to the product item");
                match self.write_stock(&first, update, SETTLE_RETRIES).await? {
                    Written::Done => Ok(true),
                    Written::ConditionFailed(_) => Err(StoreError::Corrupt(format!(
                        "product {} no longer exists",
                        shard.product_id
                    ))),
                    Written::Busy => Err(busy(shard)),
                }
            }
            Written::ConditionFailed(None) => Ok(false),
            Written::Busy => Err(busy(shard)),
        }
    }

    /// Places a restore intent of `token` per part (a gone shard's on shard 0), stock untouched;
    /// returns where each landed, with its entry name.
    pub(super) async fn intend_restores(
        &self,
        parts: &[StockPart],
        owner: &Owner,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<(StockShard, u64, String)>, StoreError> {
        let mut placed = Vec::with_capacity(parts.len());
        for (i, (shard, quantity)) in parts.iter().enumerate() {
            let name = format!("{RESTORE}{token}_{i}");
            let entry = Entry {
                owner: owner.clone(),
                units: *quantity,
                at_ms: now.timestamp_millis(),
            };
            let mut target = shard.clone();
            loop {
                // Never capped: it finishes a move the owner has begun. A retry whose first try
                // was applied meets its own intent.
                let update = Update::builder()
                    .update_expression("SET #e = :e, #n = if_not_exists(#n, :zero) + :one")
                    .condition_expression("attribute_exists(id) AND attribute_not_exists(#e)")
                    .expression_attribute_names("#e", &name)
                    .expression_attribute_names("#n", JOURNAL_OPEN)
                    .expression_attribute_values(":e", entry.value())
                    .expression_attribute_values(":zero", items::number(0))
                    .expression_attribute_values(":one", items::number(1));
                let outcome = self.write_stock(&target, update, SETTLE_RETRIES).await;
                match outcome {
                    Ok(Written::Done) => break,
                    Ok(Written::ConditionFailed(Some(old))) if old.contains_key(&name) => break,
                    Ok(Written::ConditionFailed(_)) if target.shard != 0 => {
                        tracing::info!(shard = %target, "a stock shard is gone; its units go back to the product item");
                        target = StockShard::first(target.product_id);
                    }
                    Ok(Written::ConditionFailed(_)) => {
                        self.drop_restores(&placed).await;
                        return Err(StoreError::Corrupt(format!(
                            "product {} no longer exists",
                            shard.product_id
                        )));
                    }
                    Ok(Written::Busy) => {
                        self.drop_restores(&placed).await;
                        return Err(busy(&target));
                    }
                    Err(error) => {
                        self.drop_restores(&placed).await;
                        return Err(error);
                    }
                }
            }
            placed.push((target, *quantity, name));
        }
        Ok(placed)
    }

    /// Moves the units of committed restore intents into stock, each once. Best effort: an intent
    /// left behind is applied by the sweep.
    pub(super) async fn apply_restores(&self, placed: &[(StockShard, u64, String)]) {
        for (shard, units, name) in placed {
            if let Err(error) = self.give_back(shard, *units, name).await {
                tracing::warn!(%shard, %error, "applying a stock restore failed; the sweep will");
            }
        }
    }

    /// Removes intents whose status move did not commit. Best effort, as the sweep drops them.
    pub(super) async fn drop_restores(&self, placed: &[(StockShard, u64, String)]) {
        for (shard, _, name) in placed {
            if let Err(error) = self.remove_entry(shard, name).await {
                tracing::warn!(%shard, %error, "dropping a stock restore intent failed; the sweep will");
            }
        }
    }

    /// One conditional UpdateItem on a stock item, retried while the item is in another
    /// transaction or its partition is throttled.
    async fn write_stock(
        &self,
        shard: &StockShard,
        update: aws_sdk_dynamodb::types::builders::UpdateBuilder,
        retries: Retries,
    ) -> Result<Written, StoreError> {
        let update = update
            .table_name(&self.tables.products)
            .set_key(Some(items::stock_key(shard)))
            .build()
            .map_err(StoreError::unavailable)?;
        for attempt in 1..=retries.attempts {
            let result = self
                .own_retries
                .update_item()
                .table_name(update.table_name())
                .set_key(Some(update.key().clone()))
                .update_expression(update.update_expression())
                .set_condition_expression(update.condition_expression().map(str::to_owned))
                .set_expression_attribute_names(update.expression_attribute_names().cloned())
                .set_expression_attribute_values(update.expression_attribute_values().cloned())
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            let error = match result {
                Ok(_) => return Ok(Written::Done),
                Err(error) => error,
            };
            if let Some(
                aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(failed),
            ) = error.as_service_error()
            {
                return Ok(Written::ConditionFailed(failed.item().cloned()));
            }
            // Every stock write is conditional on its entry, so a retry of one whose answer was
            // lost (a timeout, a dropped connection) does not move units twice.
            if !super::is_retryable(&error) {
                return Err(sdk_failure(error));
            }
            if attempt < retries.attempts {
                crate::metrics::count(crate::metrics::BusinessMetric::Retries);
                tokio::time::sleep(full_jitter(retries.backoff, attempt, retries.cap)).await;
            }
        }
        Ok(Written::Busy)
    }

    /// The owner's take or restore token, read consistently; `None` when the owner is unknown.
    async fn owner_token(
        &self,
        owner: &Owner,
        attribute: &str,
    ) -> Result<Option<String>, StoreError> {
        let (table, key) = match owner {
            Owner::Order(id) => (&self.tables.orders, items::order_key(id)),
            Owner::Hold(id) => (&self.tables.holds, items::hold_key(id)),
        };
        let output = self
            .client
            .get_item()
            .table_name(table)
            .set_key(Some(key))
            .consistent_read(true)
            .projection_expression("#t")
            .expression_attribute_names("#t", attribute)
            .send()
            .await
            .map_err(sdk_failure)?;
        Ok(output
            .item
            .and_then(|item| item.get(attribute)?.as_s().ok().cloned()))
    }
}

/// Whether a take was refused only because the journal is full (the units are there).
fn journal_full(old: &Item, quantity: u64) -> bool {
    let count = |name: &str| {
        old.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok())
    };
    !old.contains_key("deleted_at")
        && count("stock").is_some_and(|stock| stock >= i64::try_from(quantity).unwrap_or(i64::MAX))
        && count(JOURNAL_OPEN)
            .is_some_and(|open| open >= i64::try_from(JOURNAL_CAP).unwrap_or(i64::MAX))
}

fn busy(shard: &StockShard) -> StoreError {
    StoreError::unavailable(ShardBusy(shard.clone()))
}

/// A stock item stayed in other transactions (or throttled) through every attempt.
#[derive(Debug, thiserror::Error)]
#[error("stock shard {0} stayed busy; try again")]
struct ShardBusy(StockShard);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_reads_back_what_was_written() {
        for owner in [
            Owner::Order(OrderId::new("0886466c4ecaecba85bb34f9fe61f9e8")),
            Owner::Hold(HoldId::new("hold with spaces")),
        ] {
            let entry = Entry {
                owner,
                units: 3,
                at_ms: 1_765_000_000_123,
            };
            let AttributeValue::S(text) = entry.value() else {
                panic!("an entry is a string");
            };
            assert_eq!(Entry::parse(&text), Some(entry));
        }
        assert_eq!(Entry::parse("x12 3 4"), None);
        assert_eq!(Entry::parse("o12 three 4"), None);
    }

    #[test]
    fn tokens_are_short_and_fresh() {
        let (a, b) = (token(), token());
        assert_eq!(a.len(), TOKEN_LEN);
        assert_ne!(a, b);
    }
}
