//! Order placement (from items or from a hold) and cancellation. Stock moves by the single-item
//! writes of `stock_journal` around one write of cold items (the order's conditional put, which is
//! also its key's idempotency record; a hold checkout's transaction; the order's status move), so
//! a hot product's shard item is never in a transaction, and a writer that stops between the
//! steps is finished by the journal's sweep.

use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    ConditionCheck, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};

use chrono::{DateTime, Utc};

use super::DynamoStore;
use super::items::{self, RESTORE_TOKEN, TAKE_TOKEN};
use super::sdk_failure;
use super::stock_journal::{self, Owner, StockPart, TakeRefused};
use crate::domain::{Hold, HoldStatus, Order, OrderItem, OrderStatus, StockShard, UserId};
use crate::ports::{
    IdempotencyStore, OrderReader, PlaceOrderError, StockReserver, StockTaken, StoreError,
};
use crate::retry::full_jitter;

/// Cancellation attempts: the first and seven retries when another transaction touched the same items.
const CANCEL_ATTEMPTS: u32 = 8;
/// First pause before a cancellation retry; doubles per retry, with full jitter.
const CANCEL_BACKOFF: Duration = Duration::from_millis(15);
/// Longest pause before a cancellation retry.
const CANCEL_BACKOFF_CAP: Duration = Duration::from_secs(1);

/// What a hold's status move requires besides the hold being ACTIVE.
pub(super) enum HoldMoveGuard<'a> {
    /// A checkout: the hold belongs to the order's user and its window is still open at this time.
    UsableAt(DateTime<Utc>, &'a UserId),
    /// The sweeper: the window had closed by this time.
    ExpiredAt(DateTime<Utc>),
}

/// A write DynamoDB did not commit, with one reason per action when it cancelled it.
pub(super) struct Refused {
    /// Another transaction touched the same items, or a partition was over its budget.
    conflict: bool,
    /// The failure as the store reports it.
    error: StoreError,
    /// One per action, in action order; empty when the call failed before a cancellation.
    pub(super) reasons: Vec<Reason>,
}

impl Refused {
    /// Another transaction touched the same items: safe to retry.
    pub(super) fn is_conflict(&self) -> bool {
        self.conflict
    }

    /// Whether the first action's condition was what failed (another writer won).
    pub(super) fn first_condition_failed(&self) -> bool {
        self.reasons.first() == Some(&Reason::ConditionFailed)
    }

    /// Anything else: unavailable, or rejected as invalid.
    pub(super) fn into_store_error(self) -> StoreError {
        self.error
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
                Err(Refused {
                    conflict: is_conflict(&error, &reasons),
                    error: sdk_failure(error),
                    reasons,
                })
            }
        }
    }

    /// Runs `actions` as one write: a single update as an UpdateItem (one write unit per KB where a
    /// transaction costs two), anything else as a TransactWriteItems. A refused update reads as a
    /// one-action transaction's refusal.
    async fn write_all(&self, mut actions: Vec<TransactWriteItem>) -> Result<(), Refused> {
        if actions.len() != 1 || actions[0].update().is_none() {
            return self.transact(actions).await;
        }
        let Some(update) = actions.pop().and_then(|action| action.update) else {
            unreachable!("checked above: one update");
        };
        let result = self
            .client
            .update_item()
            .table_name(update.table_name)
            .set_key(Some(update.key))
            .update_expression(update.update_expression)
            .set_condition_expression(update.condition_expression)
            .set_expression_attribute_names(update.expression_attribute_names)
            .set_expression_attribute_values(update.expression_attribute_values)
            .send()
            .await;
        let Err(error) = result else {
            return Ok(());
        };
        let reason = if super::is_condition_failure(&error) {
            Reason::ConditionFailed
        } else if super::is_retryable(&error) {
            Reason::Conflict
        } else {
            Reason::Other
        };
        Err(Refused {
            conflict: reason == Reason::Conflict,
            error: sdk_failure(error),
            reasons: vec![reason],
        })
    }

    /// Commits `head` (whose first action is an owner's status move) with the units of `parts`
    /// going back to their shards, exactly once and only if `head` commits: restore intents
    /// first, then `head` marked with their token, then the intents applied (or dropped when
    /// `head` was refused), as `stock_journal` describes. A shard item that is gone (a re-shard
    /// removed it after the units were taken from it) gives its units to shard 0, the product
    /// item. `Ok(None)` when it committed; otherwise the refusal, for the caller to read.
    pub(super) async fn commit_with_restores(
        &self,
        head: Vec<TransactWriteItem>,
        parts: &[StockPart],
        owner: &Owner,
        now: DateTime<Utc>,
    ) -> Result<Option<Refused>, StoreError> {
        let token = stock_journal::token();
        let placed = self.intend_restores(parts, owner, &token, now).await?;
        let head = match mark_restore(head, &token) {
            Ok(head) => head,
            Err(error) => {
                self.drop_restores(&placed).await;
                return Err(error);
            }
        };
        match self.write_all(head).await {
            Ok(()) => {
                self.apply_restores(&placed).await;
                Ok(None)
            }
            // Refused, or applied with its answer lost (the SDK's retry then meets the moved
            // status): the owner says which.
            Err(refused) => match self.settle_restores(&placed, owner, &token).await? {
                true => Ok(None),
                false => Ok(Some(refused)),
            },
        }
    }

    /// A hold checkout's order (must not exist), with the request's fingerprint, as an action.
    fn order_put(
        &self,
        order: &Order,
        request_fingerprint: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.tables.orders)
            .set_item(Some(items::placed_order_item(
                order,
                request_fingerprint,
                &items::Stocked::ByHold,
            )))
            .condition_expression("attribute_not_exists(id)")
            .build()
            .map_err(StoreError::unavailable)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Moves a hold from ACTIVE to `moved.status` (CONSUMED or EXPIRED), leaving the sweep index.
    pub(super) fn hold_move(
        &self,
        moved: &Hold,
        guard: HoldMoveGuard<'_>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder()
            .table_name(&self.tables.holds)
            .set_key(Some(items::hold_key(&moved.id)))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":active", items::hold_status(HoldStatus::Active))
            .expression_attribute_values(":to", items::hold_status(moved.status))
            .expression_attribute_values(":now", items::timestamp(moved.updated_at));
        update = match guard {
            HoldMoveGuard::UsableAt(at, user) => update
                .condition_expression(
                    "#status = :active AND user_id = :user AND hold_expires_at > :at",
                )
                .expression_attribute_values(":user", items::string(user.as_str()))
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
    ) -> Result<StockTaken, PlaceOrderError> {
        // The stock first, by single-item writes (`stock_journal`), then the order: one item, no
        // transaction, so a hot product's shard is never in a transaction.
        let parts = stock_parts(&order.items);
        let token = stock_journal::token();
        let owner = Owner::Order(order.id.clone());
        if let Err(refused) = self
            .take_parts(&parts, &owner, &token, order.created_at)
            .await
        {
            return Err(match refused {
                // A used key is reported before short stock: a concurrent duplicate replays.
                TakeRefused::Short(product_id) => {
                    match self
                        .get_idempotency_record(&order.user_id, &order.idempotency_key)
                        .await
                    {
                        Ok(Some(_)) => PlaceOrderError::DuplicateKey,
                        Ok(None) => PlaceOrderError::InsufficientStock { product_id },
                        Err(error) => PlaceOrderError::Store(error),
                    }
                }
                TakeRefused::Busy(product_id) => PlaceOrderError::Conflict {
                    product_id: Some(product_id),
                },
                TakeRefused::Store(error) => PlaceOrderError::Store(error),
            });
        }
        // The take stays marked until the caller has sent the order's message (`release_taken`).
        let taken = StockTaken {
            token: token.clone(),
            shards: parts.clone(),
        };
        // The order, on condition that its key placed none.
        let item =
            items::placed_order_item(order, request_fingerprint, &items::Stocked::ByTake(&token));
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.orders)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(id)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let error = match result {
            Ok(_) => return Ok(taken),
            Err(error) => error,
        };
        if let Some(PutItemError::ConditionalCheckFailedException(failed)) =
            error.as_service_error()
        {
            // The key's order exists: this put's own (its answer was lost and the SDK's retry met
            // it), or a concurrent duplicate's, whose replay this request answers.
            let ours = failed
                .item()
                .and_then(|old| old.get(TAKE_TOKEN)?.as_s().ok())
                .is_some_and(|found| *found == token);
            if ours {
                return Ok(taken);
            }
            self.undo_takes(&parts, &token).await;
            return Err(PlaceOrderError::DuplicateKey);
        }
        // Unanswered, or refused for another reason: the order says whether it was written.
        if self.settle_takes(&parts, &owner, &token, false).await == Some(true) {
            return Ok(taken);
        }
        // The order item in another transaction (a hold checkout with the same key): retried by
        // the use case. Throttling and 5xx were retried by the SDK already: 503.
        let code = error
            .as_service_error()
            .and_then(ProvideErrorMetadata::code);
        if code.is_some_and(|code| code.starts_with("TransactionConflict")) {
            return Err(PlaceOrderError::Conflict { product_id: None });
        }
        Err(PlaceOrderError::Store(sdk_failure(error)))
    }

    async fn release_taken(&self, taken: &StockTaken) {
        self.release_takes(&taken.shards, &taken.token).await;
    }

    async fn place_order_from_hold(
        &self,
        order: &Order,
        request_fingerprint: &str,
        consumed: &Hold,
        now: DateTime<Utc>,
    ) -> Result<(), PlaceOrderError> {
        // Action order: the hold, the user's hold count, the order, the product not deleted.
        let product_live = ConditionCheck::builder()
            .table_name(&self.tables.holds)
            .set_key(Some(items::product_gone_key(&consumed.product_id)))
            .condition_expression("attribute_not_exists(id)")
            .build()
            .map_err(StoreError::unavailable)?;
        let actions = vec![
            self.hold_move(consumed, HoldMoveGuard::UsableAt(now, &order.user_id))?,
            self.hold_count_down(consumed)?,
            self.order_put(order, request_fingerprint)?,
            TransactWriteItem::builder()
                .condition_check(product_live)
                .build(),
        ];
        let Err(refused) = self.transact(actions).await else {
            return Ok(());
        };
        Err(match refused.reasons.as_slice() {
            [_, _, Reason::ConditionFailed, _] => PlaceOrderError::DuplicateKey,
            [Reason::ConditionFailed, ..] => PlaceOrderError::HoldNotActive,
            [_, _, _, Reason::ConditionFailed] => PlaceOrderError::ProductGone {
                product_id: consumed.product_id.clone(),
            },
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
        // Removing `unsettled_shard` takes the settled order out of the `unsettled-orders` index.
        let status_change = Update::builder()
            .table_name(&self.tables.orders)
            .set_key(Some(items::order_key(&cancelled.id)))
            .update_expression(
                "SET #status = :cancelled, updated_at = :now, cancelled_at = :cancelled_at \
                 REMOVE unsettled_shard",
            )
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":cancelled", items::status(OrderStatus::Cancelled))
            .expression_attribute_values(":pending", items::status(OrderStatus::Pending))
            .expression_attribute_values(":now", now.clone())
            .expression_attribute_values(":cancelled_at", cancelled_at)
            .build()
            .map_err(StoreError::unavailable)?;
        let head = vec![TransactWriteItem::builder().update(status_change).build()];
        let owner = Owner::Order(cancelled.id.clone());

        let mut attempt = 0;
        loop {
            let Some(refused) = self
                .commit_with_restores(head.clone(), &parts, &owner, cancelled.updated_at)
                .await?
            else {
                return Ok(true);
            };
            if refused.first_condition_failed() {
                return Ok(false);
            }
            attempt += 1;
            if refused.is_conflict() && attempt < CANCEL_ATTEMPTS {
                tracing::debug!(order_id = %cancelled.id, attempt, "cancel conflicted, retrying");
                crate::metrics::count(crate::metrics::BusinessMetric::Retries);
                tokio::time::sleep(full_jitter(CANCEL_BACKOFF, attempt, CANCEL_BACKOFF_CAP)).await;
                // Racing cancels hold the order in their transactions and conflict with each
                // other: once one has moved it, a read (which holds nothing) ends the race.
                if self
                    .get_order(&cancelled.id)
                    .await?
                    .is_some_and(|order| order.status != OrderStatus::Pending)
                {
                    return Ok(false);
                }
                continue;
            }
            return Err(refused.into_store_error());
        }
    }
}

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
            // One conflict (and one throttle) per transaction, however many of its items met one.
            for kind in ["TransactionConflict", "Throttling"] {
                if let Some(code) = reasons
                    .iter()
                    .filter_map(|r| r.code())
                    .find(|code| code.starts_with(kind))
                {
                    super::count_met(code);
                }
            }
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

/// `head` with `restore_token = <token>` set by its first action, an update whose expression
/// starts with `SET` (every status move's does).
fn mark_restore(
    mut head: Vec<TransactWriteItem>,
    token: &str,
) -> Result<Vec<TransactWriteItem>, StoreError> {
    let Some(first) = head.first().and_then(TransactWriteItem::update) else {
        return Err(StoreError::unavailable(NotAStatusMove));
    };
    let Some(rest) = first.update_expression().strip_prefix("SET ") else {
        return Err(StoreError::unavailable(NotAStatusMove));
    };
    let mut names = first
        .expression_attribute_names()
        .cloned()
        .unwrap_or_default();
    names.insert("#restore_token".to_owned(), RESTORE_TOKEN.to_owned());
    let mut values = first
        .expression_attribute_values()
        .cloned()
        .unwrap_or_default();
    values.insert(":restore_token".to_owned(), items::string(token));
    let marked = Update::builder()
        .table_name(first.table_name())
        .set_key(Some(first.key().clone()))
        .update_expression(format!("SET #restore_token = :restore_token, {rest}"))
        .set_condition_expression(first.condition_expression().map(str::to_owned))
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values))
        .build()
        .map_err(StoreError::unavailable)?;
    head[0] = TransactWriteItem::builder().update(marked).build();
    Ok(head)
}

/// A restore's head did not start with a `SET` update: a fault of this adapter.
#[derive(Debug, thiserror::Error)]
#[error("a stock restore's first action must be an update starting with SET")]
struct NotAStatusMove;

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

    #[test]
    fn a_cancellation_is_read_per_action_and_a_conflict_or_a_hot_partition_is_retryable() {
        let error = cancelled_with(&["None", "ConditionalCheckFailed"]);
        let reasons = cancellation_reasons(&error).unwrap();
        assert_eq!(reasons, vec![Reason::Passed, Reason::ConditionFailed]);
        assert!(!is_conflict(&error, &reasons));
        for codes in [["TransactionConflict", "None"], ["None", "ThrottlingError"]] {
            let error = cancelled_with(&codes);
            let reasons = cancellation_reasons(&error).unwrap();
            assert!(is_conflict(&error, &reasons), "{codes:?}");
        }
    }

    #[tokio::test]
    async fn a_cancelled_transaction_counts_one_conflict_and_one_throttle_however_many_items_met_them()
     {
        use crate::metrics::{BusinessMetric, collect};
        let ((), tally) = collect(async {
            let codes = [
                "TransactionConflict",
                "ThrottlingError",
                "TransactionConflict",
            ];
            cancellation_reasons(&cancelled_with(&codes));
            cancellation_reasons(&cancelled_with(&["None", "ConditionalCheckFailed"]));
        })
        .await;
        assert_eq!(tally.count(BusinessMetric::TransactionConflicts), 1);
        assert_eq!(tally.count(BusinessMetric::Throttles), 1);
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
