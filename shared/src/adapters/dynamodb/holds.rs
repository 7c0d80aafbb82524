//! Stock holds: placing one (stock taken by a single-item write, then hold and the user's count in
//! one transaction), expiring one (status and count in one transaction, the units back around it,
//! `stock_journal`), and the sweeper's query on the sparse `active-holds` index.

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use super::DynamoStore;
use super::index::ACTIVE_HOLDS;
use super::items::{self, HOLD_SWEEP_SHARDS, TAKE_TOKEN};
use super::sdk_failure;
use super::stock_journal::{self, Owner, TakeRefused};
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
        // The stock first, by single-item writes (`stock_journal`), then the hold and the user's
        // count in a transaction of cold items.
        let parts = hold_parts(hold);
        let token = stock_journal::token();
        let owner = Owner::Hold(hold.id.clone());
        if let Err(refused) = self
            .take_parts(&parts, &owner, &token, hold.created_at)
            .await
        {
            return Err(match refused {
                TakeRefused::Short(_) => PlaceHoldError::InsufficientStock,
                TakeRefused::Busy(_) => PlaceHoldError::Conflict,
                TakeRefused::Store(error) => PlaceHoldError::Store(error),
            });
        }
        match self.hold_and_count(hold, limit, &token).await {
            Ok(()) => {
                self.release_takes(&parts, &token).await;
                Ok(())
            }
            Err(error) => {
                // Refused, or applied with its answer lost: the hold says which.
                self.settle_takes(&parts, &owner, &token, true).await;
                Err(error)
            }
        }
    }

    async fn expire_hold(&self, expired: &Hold) -> Result<bool, StoreError> {
        // Action order: the hold, the count; the units come back around it (`stock_journal`).
        let head = vec![
            self.hold_move(expired, HoldMoveGuard::ExpiredAt(expired.updated_at))?,
            self.hold_count_down(expired)?,
        ];
        let owner = Owner::Hold(expired.id.clone());
        let Some(refused) = self
            .commit_with_restores(head, &hold_parts(expired), &owner, expired.updated_at)
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

impl DynamoStore {
    /// One transaction: the hold (must not exist, carrying the take's token) and the user's
    /// ACTIVE-hold count up by one, under `limit`.
    async fn hold_and_count(
        &self,
        hold: &Hold,
        limit: u32,
        token: &str,
    ) -> Result<(), PlaceHoldError> {
        let mut item = items::hold_item(hold);
        item.insert(TAKE_TOKEN.to_owned(), items::string(token));
        let put = Put::builder()
            .table_name(&self.tables.holds)
            .set_item(Some(item))
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
        let actions = vec![
            TransactWriteItem::builder().put(put).build(),
            TransactWriteItem::builder().update(count_up).build(),
        ];
        let Err(refused) = self.transact(actions).await else {
            return Ok(());
        };
        Err(match refused.reasons.last() {
            Some(Reason::ConditionFailed) => PlaceHoldError::LimitReached,
            _ if refused.is_conflict() => PlaceHoldError::Conflict,
            _ => PlaceHoldError::Store(refused.into_store_error()),
        })
    }
}
