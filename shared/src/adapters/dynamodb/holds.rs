//! Stock holds: placing one (stock, hold and the user's count in one transaction), expiring one
//! (status, stock back and count in one transaction), and the sweeper's query on the sparse
//! `active-holds` index.

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use super::DynamoStore;
use super::index::ACTIVE_HOLDS;
use super::items::{self, HOLD_SWEEP_SHARDS};
use super::sdk_failure;
use super::transactions::{HoldMoveGuard, Reason, hold_parts};
use crate::domain::{Hold, HoldId};
use crate::ports::{HoldStore, PlaceHoldError, StoreError};

impl HoldStore for DynamoStore {
    async fn get_hold(&self, id: &HoldId) -> Result<Option<Hold>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.tables.holds)
            .set_key(Some(items::hold_key(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_failure)?;
        output.item.map(Hold::try_from).transpose()
    }

    async fn place_hold(&self, hold: &Hold, limit: u32) -> Result<(), PlaceHoldError> {
        // Action order: the stock (one action per shard), the hold, the user's count.
        let put = Put::builder()
            .table_name(&self.tables.holds)
            .set_item(Some(items::hold_item(hold)))
            .condition_expression("attribute_not_exists(id)")
            .build()
            .map_err(StoreError::unavailable)?;
        let count_up = Update::builder()
            .table_name(&self.tables.holds)
            .set_key(Some(items::hold_count_key(&hold.user_id, &hold.product_id)))
            .update_expression("SET active = if_not_exists(active, :zero) + :one")
            .condition_expression("attribute_not_exists(active) OR active < :limit")
            .expression_attribute_values(":zero", items::number(0))
            .expression_attribute_values(":one", items::number(1))
            .expression_attribute_values(":limit", items::number(limit))
            .build()
            .map_err(StoreError::unavailable)?;
        let parts = hold_parts(hold);
        let mut actions = Vec::with_capacity(parts.len() + 2);
        for (shard, quantity) in &parts {
            actions.push(self.stock_take(shard, *quantity, hold.created_at)?);
        }
        actions.push(TransactWriteItem::builder().put(put).build());
        actions.push(TransactWriteItem::builder().update(count_up).build());
        let Err(refused) = self.transact(actions).await else {
            return Ok(());
        };
        let stock_failed = refused
            .reasons
            .iter()
            .take(parts.len())
            .any(|r| *r == Reason::ConditionFailed);
        Err(match refused.reasons.last() {
            _ if stock_failed => PlaceHoldError::InsufficientStock,
            Some(Reason::ConditionFailed) => PlaceHoldError::LimitReached,
            _ if refused.is_conflict() => PlaceHoldError::Conflict,
            _ => PlaceHoldError::Store(refused.into_store_error()),
        })
    }

    async fn expire_hold(&self, expired: &Hold) -> Result<bool, StoreError> {
        // Action order: the hold, the count, then the units back (one action per shard).
        let head = [
            self.hold_move(expired, HoldMoveGuard::ExpiredAt(expired.updated_at))?,
            self.hold_count_down(expired)?,
        ];
        let Some(refused) = self
            .commit_with_restores(&head, &hold_parts(expired), expired.updated_at)
            .await?
        else {
            return Ok(true);
        };
        match refused.reasons.as_slice() {
            // A checkout (or another sweep) moved it first: nothing changed.
            [Reason::ConditionFailed, ..] => Ok(false),
            [_, Reason::ConditionFailed, ..] => Err(StoreError::Corrupt(format!(
                "the active-hold count of hold {} is already zero",
                expired.id
            ))),
            [_, _, rest @ ..] if rest.contains(&Reason::ConditionFailed) => {
                Err(StoreError::Corrupt(format!(
                    "product {} of hold {} no longer exists",
                    expired.product_id, expired.id
                )))
            }
            _ => Err(refused.into_store_error()),
        }
    }

    async fn expired_holds(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Hold>, StoreError> {
        let mut holds = Vec::new();
        for shard in 0..HOLD_SWEEP_SHARDS {
            let limit = limit.saturating_sub(holds.len() as u32);
            if limit == 0 {
                break;
            }
            let output = self
                .client
                .query()
                .table_name(&self.tables.holds)
                .index_name(ACTIVE_HOLDS)
                .key_condition_expression("sweep_shard = :shard AND hold_expires_at <= :now")
                .expression_attribute_values(":shard", AttributeValue::S(shard.to_string()))
                .expression_attribute_values(":now", items::timestamp(now))
                .limit(i32::try_from(limit).unwrap_or(i32::MAX))
                .send()
                .await
                .map_err(sdk_failure)?;
            for item in output.items.unwrap_or_default() {
                holds.push(Hold::try_from(item)?);
            }
        }
        holds.sort_by_key(|hold| hold.expires_at);
        Ok(holds)
    }
}
