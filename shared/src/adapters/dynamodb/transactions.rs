//! Where stock is decremented and restored: order placement (from items or from a hold) and
//! cancellation, each one TransactWriteItems, so stock, the order and its idempotency record change
//! together or not at all; and the two stock actions every other transaction (holds, failed
//! payments) builds from.

use std::time::Duration;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};

use chrono::{DateTime, Utc};

use super::sdk_failure;
use super::{DynamoStore, items};
use crate::domain::{Hold, HoldStatus, Order, OrderItem, OrderStatus, StockShard};
use crate::ports::{PlaceOrderError, StockReserver, StoreError};
use crate::retry::full_jitter;

/// Cancellation attempts: the first and three retries when another transaction touched the same items.
const CANCEL_ATTEMPTS: u32 = 4;
/// First pause before a cancellation retry; doubles per retry, with full jitter.
const CANCEL_BACKOFF: Duration = Duration::from_millis(15);
/// Longest pause before a cancellation retry.
const CANCEL_BACKOFF_CAP: Duration = Duration::from_secs(1);

/// What a hold's status move requires besides the hold being ACTIVE.
pub(super) enum HoldMoveGuard {
    /// A checkout: the hold belongs to the order's user and its window is still open at this time.
    UsableAt(DateTime<Utc>),
    /// The sweeper: the window had closed by this time.
    ExpiredAt(DateTime<Utc>),
}

/// A transaction DynamoDB did not commit, with one reason per action when it cancelled it.
pub(super) struct Refused {
    pub(super) error: SdkError<TransactWriteItemsError, HttpResponse>,
    /// One per action, in action order; empty when the call failed before a cancellation.
    pub(super) reasons: Vec<Reason>,
}

impl Refused {
    /// Another transaction touched the same items: safe to retry.
    pub(super) fn is_conflict(&self) -> bool {
        is_conflict(&self.error, &self.reasons)
    }

    /// Whether the first action's condition was what failed (another writer won).
    pub(super) fn first_condition_failed(&self) -> bool {
        self.reasons.first() == Some(&Reason::ConditionFailed)
    }

    /// Anything else: unavailable, or rejected as invalid.
    pub(super) fn into_store_error(self) -> StoreError {
        sdk_failure(self.error)
    }
}

impl DynamoStore {
    /// Runs one TransactWriteItems; a refusal comes back with its cancellation reasons read once.
    pub(super) async fn transact(&self, actions: Vec<TransactWriteItem>) -> Result<(), Refused> {
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) => {
                let reasons = cancellation_reasons(&error).unwrap_or_default();
                Err(Refused { error, reasons })
            }
        }
    }

    /// Takes `quantity` units of a live product's shard, on condition that they are there: the
    /// one stock decrement of every transaction (orders, holds). A shard item carries the
    /// product's `deleted_at` too, so a deleted product's shards refuse like its item.
    pub(super) fn stock_take(
        &self,
        shard: &StockShard,
        quantity: u64,
        now: DateTime<Utc>,
    ) -> Result<TransactWriteItem, StoreError> {
        self.stock_change(
            shard,
            quantity,
            now,
            "SET stock = stock - :q, updated_at = :now",
            "attribute_exists(id) AND attribute_not_exists(deleted_at) AND stock >= :q",
        )
    }

    /// Gives `quantity` units back to a shard: the one stock restore of every transaction
    /// (cancel, failed payment, expired hold). `attribute_exists(id)` only: a soft-deleted product
    /// still takes its units back.
    pub(super) fn stock_restore(
        &self,
        shard: &StockShard,
        quantity: u64,
        now: DateTime<Utc>,
    ) -> Result<TransactWriteItem, StoreError> {
        self.stock_change(
            shard,
            quantity,
            now,
            "SET stock = stock + :q, updated_at = :now",
            "attribute_exists(id)",
        )
    }

    fn stock_change(
        &self,
        shard: &StockShard,
        quantity: u64,
        now: DateTime<Utc>,
        update: &str,
        condition: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        let change = Update::builder()
            .table_name(&self.tables.products)
            .set_key(Some(items::stock_key(shard)))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_values(":q", items::number(quantity))
            .expression_attribute_values(":now", items::timestamp(now))
            .build()
            .map_err(StoreError::unavailable)?;
        Ok(TransactWriteItem::builder().update(change).build())
    }

    /// Commits `head`, then one restore per part. A restore whose shard item is gone (a re-shard
    /// removed the shard after the units were taken from it) goes to shard 0, the product item,
    /// and the transaction is tried again: a re-shard never loses units. `Ok(None)` when it
    /// committed; otherwise the refusal, for the caller to read.
    pub(super) async fn commit_with_restores(
        &self,
        head: &[TransactWriteItem],
        parts: &[StockPart],
        now: DateTime<Utc>,
    ) -> Result<Option<Refused>, StoreError> {
        let mut parts = parts.to_vec();
        loop {
            let mut actions = head.to_vec();
            for (shard, quantity) in &parts {
                actions.push(self.stock_restore(shard, *quantity, now)?);
            }
            let Err(refused) = self.transact(actions).await else {
                return Ok(None);
            };
            let head_failed = refused
                .reasons
                .iter()
                .take(head.len())
                .any(|r| *r != Reason::Passed);
            let gone = refused
                .reasons
                .iter()
                .skip(head.len())
                .position(|r| *r == Reason::ConditionFailed)
                .filter(|i| parts[*i].0.shard != 0);
            match gone {
                Some(i) if !head_failed => {
                    let (shard, quantity) = parts.remove(i);
                    tracing::info!(%shard, quantity, "a stock shard is gone; its units go back to the product item");
                    merge_part(&mut parts, StockShard::first(shard.product_id), quantity);
                }
                _ => return Ok(Some(refused)),
            }
        }
    }

    /// The order (must not exist) and its idempotency record (must not exist), as two actions.
    fn order_and_record(
        &self,
        order: &Order,
        request_fingerprint: &str,
    ) -> Result<[TransactWriteItem; 2], StoreError> {
        let order_put = Put::builder()
            .table_name(&self.tables.orders)
            .set_item(Some(items::order_item(order)))
            .condition_expression("attribute_not_exists(id)")
            .build()
            .map_err(StoreError::unavailable)?;
        let record_put = Put::builder()
            .table_name(&self.tables.idempotency)
            .set_item(Some(items::idempotency_item(order, request_fingerprint)))
            .condition_expression("attribute_not_exists(user_id)")
            .build()
            .map_err(StoreError::unavailable)?;
        Ok([
            TransactWriteItem::builder().put(order_put).build(),
            TransactWriteItem::builder().put(record_put).build(),
        ])
    }

    /// Moves a hold from ACTIVE to `moved.status` (CONSUMED or EXPIRED), leaving the sweep index.
    pub(super) fn hold_move(
        &self,
        moved: &Hold,
        guard: HoldMoveGuard,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder()
            .table_name(&self.tables.holds)
            .set_key(Some(items::hold_key(&moved.id)))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":active", items::hold_status(HoldStatus::Active))
            .expression_attribute_values(":to", items::hold_status(moved.status))
            .expression_attribute_values(":now", items::timestamp(moved.updated_at));
        update = match guard {
            HoldMoveGuard::UsableAt(at) => update
                .condition_expression(
                    "#status = :active AND user_id = :user AND hold_expires_at > :at",
                )
                .expression_attribute_values(":user", items::string(moved.user_id.as_str()))
                .expression_attribute_values(":at", items::timestamp(at)),
            HoldMoveGuard::ExpiredAt(at) => update
                .condition_expression("#status = :active AND hold_expires_at <= :at")
                .expression_attribute_values(":at", items::timestamp(at)),
        };
        update = match &moved.order_id {
            Some(order_id) => update
                .update_expression(
                    "SET #status = :to, updated_at = :now, order_id = :order REMOVE sweep_shard",
                )
                .expression_attribute_values(":order", items::string(order_id.as_str())),
            None => {
                update.update_expression("SET #status = :to, updated_at = :now REMOVE sweep_shard")
            }
        };
        let update = update.build().map_err(StoreError::unavailable)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The hold's user has one ACTIVE hold fewer on its product.
    pub(super) fn hold_count_down(&self, hold: &Hold) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.tables.holds)
            .set_key(Some(items::hold_count_key(&hold.user_id, &hold.product_id)))
            .update_expression("SET active = active - :one")
            .condition_expression("active >= :one")
            .expression_attribute_values(":one", items::number(1))
            .build()
            .map_err(StoreError::unavailable)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

impl StockReserver for DynamoStore {
    async fn place_order(
        &self,
        order: &Order,
        request_fingerprint: &str,
    ) -> Result<(), PlaceOrderError> {
        let parts = stock_parts(&order.items);
        // Action order is the contract of the cancellation reasons: one stock decrement per
        // product shard, then the order, then the idempotency record.
        let mut actions = Vec::with_capacity(parts.len() + 2);
        for (shard, quantity) in &parts {
            actions.push(self.stock_take(shard, *quantity, order.created_at)?);
        }
        actions.extend(self.order_and_record(order, request_fingerprint)?);
        self.transact(actions)
            .await
            .map_err(|refused| placement_error(refused.error, &parts))
    }

    async fn place_order_from_hold(
        &self,
        order: &Order,
        request_fingerprint: &str,
        consumed: &Hold,
        now: DateTime<Utc>,
    ) -> Result<(), PlaceOrderError> {
        // Action order: the hold, the user's hold count, the order, the idempotency record.
        let mut actions = vec![
            self.hold_move(consumed, HoldMoveGuard::UsableAt(now))?,
            self.hold_count_down(consumed)?,
        ];
        actions.extend(self.order_and_record(order, request_fingerprint)?);
        let Err(refused) = self.transact(actions).await else {
            return Ok(());
        };
        Err(match refused.reasons.as_slice() {
            [_, _, _, Reason::ConditionFailed] => PlaceOrderError::DuplicateKey,
            [Reason::ConditionFailed, ..] => PlaceOrderError::HoldNotActive,
            // The order exists without its record only if the record expired: the key was used.
            [_, _, Reason::ConditionFailed, _] => PlaceOrderError::DuplicateKey,
            _ if refused.is_conflict() => PlaceOrderError::Conflict {
                product_id: Some(consumed.product_id.clone()),
            },
            _ => PlaceOrderError::Store(refused.into_store_error()),
        })
    }

    async fn cancel_order(&self, cancelled: &Order) -> Result<bool, StoreError> {
        let parts = stock_parts(&cancelled.items);
        let now = items::timestamp(cancelled.updated_at);
        let cancelled_at = items::timestamp(cancelled.cancelled_at.unwrap_or(cancelled.updated_at));
        // The status condition is what makes the restore happen once: a second cancel, or a
        // consumer that moved the order on, fails it and the whole transaction writes nothing.
        // Removing `status_shard` takes the settled order out of the `unsettled` index.
        let status_change = Update::builder()
            .table_name(&self.tables.orders)
            .set_key(Some(items::order_key(&cancelled.id)))
            .update_expression(
                "SET #status = :cancelled, updated_at = :now, cancelled_at = :cancelled_at \
                 REMOVE status_shard",
            )
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":cancelled", items::status(OrderStatus::Cancelled))
            .expression_attribute_values(":pending", items::status(OrderStatus::Pending))
            .expression_attribute_values(":now", now.clone())
            .expression_attribute_values(":cancelled_at", cancelled_at)
            .build()
            .map_err(StoreError::unavailable)?;
        let head = [TransactWriteItem::builder().update(status_change).build()];

        let mut attempt = 0;
        loop {
            let Some(refused) = self
                .commit_with_restores(&head, &parts, cancelled.updated_at)
                .await?
            else {
                return Ok(true);
            };
            if refused.first_condition_failed() {
                return Ok(false);
            }
            if refused
                .reasons
                .iter()
                .skip(1)
                .any(|r| *r == Reason::ConditionFailed)
            {
                return Err(StoreError::Corrupt(format!(
                    "a product of order {} no longer exists",
                    cancelled.id
                )));
            }
            attempt += 1;
            if refused.is_conflict() && attempt < CANCEL_ATTEMPTS {
                tracing::debug!(order_id = %cancelled.id, attempt, "cancel conflicted, retrying");
                tokio::time::sleep(full_jitter(CANCEL_BACKOFF, attempt, CANCEL_BACKOFF_CAP)).await;
                continue;
            }
            return Err(refused.into_store_error());
        }
    }
}

/// Units of one stock shard in a transaction.
pub(super) type StockPart = (StockShard, u64);

/// One entry per product shard with the summed units, in first-seen order: a transaction may
/// touch an item only once, and the domain already refuses duplicate lines, so merging is a
/// safety net.
pub(super) fn stock_parts(items: &[OrderItem]) -> Vec<StockPart> {
    let mut parts: Vec<StockPart> = Vec::with_capacity(items.len());
    for (shard, units) in items.iter().flat_map(OrderItem::stock_parts) {
        merge_part(&mut parts, shard, u64::from(units));
    }
    parts
}

/// A hold's units per shard.
pub(super) fn hold_parts(hold: &Hold) -> Vec<StockPart> {
    hold.shards
        .parts(hold.quantity.get())
        .into_iter()
        .map(|(shard, units)| {
            let shard = StockShard {
                product_id: hold.product_id.clone(),
                shard,
            };
            (shard, u64::from(units))
        })
        .collect()
}

/// Adds `units` to `shard`'s entry, or appends one.
fn merge_part(parts: &mut Vec<StockPart>, shard: StockShard, units: u64) {
    match parts.iter_mut().find(|(s, _)| *s == shard) {
        Some((_, total)) => *total += units,
        None => parts.push((shard, units)),
    }
}

/// Why one action of a cancelled transaction failed, as far as this adapter cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reason {
    /// The action would have succeeded (`None`, or no code).
    Passed,
    /// Its condition expression was false.
    ConditionFailed,
    /// Another transaction held the item, or its partition was over its throughput: retry.
    Conflict,
    /// Throttling, validation, capacity, or a code this adapter does not know.
    Other,
}

impl Reason {
    fn from_code(code: Option<&str>) -> Self {
        // AWS says `ConditionalCheckFailed` and `TransactionConflict`; accept an `Exception`
        // suffix too so an emulator's spelling cannot turn a clean outcome into a 503.
        match code {
            None | Some("None" | "") => Self::Passed,
            Some(code) if code.starts_with("ConditionalCheckFailed") => Self::ConditionFailed,
            // A hot partition (`ThrottlingError`) is as busy as a conflicting transaction: the
            // caller backs off and tries again rather than answering 503.
            Some(code)
                if code.starts_with("TransactionConflict") || code.starts_with("Throttling") =>
            {
                Self::Conflict
            }
            Some(_) => Self::Other,
        }
    }
}

/// The per-action reasons of a `TransactionCanceledException`, in action order.
fn cancellation_reasons<R>(error: &SdkError<TransactWriteItemsError, R>) -> Option<Vec<Reason>> {
    match error.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
            let reasons = cancelled.cancellation_reasons();
            tracing::debug!(
                codes = ?reasons.iter().map(|r| r.code()).collect::<Vec<_>>(),
                "transaction cancelled"
            );
            Some(
                reasons
                    .iter()
                    .map(|r| Reason::from_code(r.code()))
                    .collect(),
            )
        }
        _ => None,
    }
}

fn is_conflict<R>(error: &SdkError<TransactWriteItemsError, R>, reasons: &[Reason]) -> bool {
    reasons.contains(&Reason::Conflict)
        || error
            .as_service_error()
            .and_then(ProvideErrorMetadata::code)
            .is_some_and(|code| code.starts_with("TransactionConflict"))
}

/// Maps a failed placement: the idempotency record first (a replay must not read as a stock
/// problem), then the first product short of stock, then conflicts; anything else is a 503 (or a
/// 500 for a request DynamoDB refused as invalid).
fn placement_error<R>(
    error: SdkError<TransactWriteItemsError, R>,
    lines: &[StockPart],
) -> PlaceOrderError
where
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let reasons = cancellation_reasons(&error).unwrap_or_default();
    if reasons.get(lines.len() + 1) == Some(&Reason::ConditionFailed) {
        return PlaceOrderError::DuplicateKey;
    }
    if let Some(i) = reasons
        .iter()
        .take(lines.len())
        .position(|r| *r == Reason::ConditionFailed)
    {
        return PlaceOrderError::InsufficientStock {
            product_id: lines[i].0.product_id.clone(),
        };
    }
    if is_conflict(&error, &reasons) {
        // The product whose item another transaction touched, when DynamoDB says which.
        let product_id = reasons
            .iter()
            .take(lines.len())
            .position(|r| *r == Reason::Conflict)
            .map(|i| lines[i].0.product_id.clone());
        return PlaceOrderError::Conflict { product_id };
    }
    PlaceOrderError::Store(sdk_failure(error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Money, ProductId, Quantity, ShardSplit};

    #[test]
    fn reason_codes_are_read_with_or_without_the_exception_suffix() {
        assert_eq!(Reason::from_code(Some("None")), Reason::Passed);
        assert_eq!(Reason::from_code(None), Reason::Passed);
        assert_eq!(
            Reason::from_code(Some("ConditionalCheckFailed")),
            Reason::ConditionFailed
        );
        assert_eq!(
            Reason::from_code(Some("ConditionalCheckFailedException")),
            Reason::ConditionFailed
        );
        assert_eq!(
            Reason::from_code(Some("TransactionConflict")),
            Reason::Conflict
        );
        assert_eq!(Reason::from_code(Some("ThrottlingError")), Reason::Conflict);
        assert_eq!(
            Reason::from_code(Some("ProvisionedThroughputExceeded")),
            Reason::Other
        );
    }

    fn cancelled_with(codes: &[&str]) -> SdkError<TransactWriteItemsError, ()> {
        use aws_sdk_dynamodb::types::CancellationReason;
        use aws_sdk_dynamodb::types::error::TransactionCanceledException;
        let reasons = codes
            .iter()
            .map(|code| CancellationReason::builder().code(*code).build())
            .collect();
        let cancelled = TransactionCanceledException::builder()
            .set_cancellation_reasons(Some(reasons))
            .build();
        SdkError::service_error(
            TransactWriteItemsError::TransactionCanceledException(cancelled),
            (),
        )
    }

    fn two_lines() -> Vec<StockPart> {
        vec![
            (StockShard::first(ProductId::new("a")), 1),
            (
                StockShard {
                    product_id: ProductId::new("b"),
                    shard: 3,
                },
                1,
            ),
        ]
    }

    #[test]
    fn a_used_key_is_reported_before_short_stock() {
        let error = cancelled_with(&[
            "None",
            "ConditionalCheckFailed",
            "None",
            "ConditionalCheckFailed",
        ]);
        assert!(matches!(
            placement_error(error, &two_lines()),
            PlaceOrderError::DuplicateKey
        ));
    }

    #[test]
    fn the_first_product_short_of_stock_is_named() {
        let error = cancelled_with(&["None", "ConditionalCheckFailed", "None", "None"]);
        let mapped = placement_error(error, &two_lines());
        assert!(
            matches!(&mapped, PlaceOrderError::InsufficientStock { product_id } if product_id.as_str() == "b"),
            "{mapped:?}"
        );
    }

    #[test]
    fn a_conflict_or_a_hot_partition_is_retryable_and_anything_else_is_unavailable() {
        let conflict = cancelled_with(&["TransactionConflict", "None", "None", "None"]);
        assert!(matches!(
            placement_error(conflict, &two_lines()),
            PlaceOrderError::Conflict {
                product_id: Some(_)
            }
        ));
        let throttled = cancelled_with(&["None", "ThrottlingError", "None", "None"]);
        assert!(matches!(
            placement_error(throttled, &two_lines()),
            PlaceOrderError::Conflict { product_id: Some(id) } if id.as_str() == "b"
        ));
        let other = cancelled_with(&["ValidationError", "None", "None", "None"]);
        assert!(matches!(
            placement_error(other, &two_lines()),
            PlaceOrderError::Store(StoreError::Unavailable(_))
        ));
        let order_taken = cancelled_with(&["None", "None", "ConditionalCheckFailed", "None"]);
        assert!(matches!(
            placement_error(order_taken, &two_lines()),
            PlaceOrderError::Store(StoreError::Unavailable(_))
        ));
    }

    #[test]
    fn repeated_shards_merge_into_one_action_in_first_seen_order() {
        let line = |p: &str, q, shards| OrderItem {
            product_id: ProductId::new(p),
            quantity: Quantity::parse(q).unwrap(),
            unit_price: Money::ZERO,
            shards,
        };
        let shard = |p: &str, shard| StockShard {
            product_id: ProductId::new(p),
            shard,
        };
        let merged = stock_parts(&[
            line("b", 1, ShardSplit::default()),
            line("a", 5, ShardSplit::from_parts(vec![(2, 3), (0, 2)])),
            line("b", 3, ShardSplit::default()),
        ]);
        assert_eq!(
            merged,
            vec![(shard("b", 0), 4), (shard("a", 0), 2), (shard("a", 2), 3)]
        );
    }
}
