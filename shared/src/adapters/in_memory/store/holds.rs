//! Holds in the in-memory store: placing one takes its units under the per-user limit, expiring
//! one gives them back, each at most once.

use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};

use super::{InMemoryStore, Tables};
use crate::domain::{Hold, HoldId, HoldStatus, ProductId, UserId};
use crate::ports::{HoldStore, PlaceHoldError, StoreError};

impl Tables {
    /// ACTIVE holds of a user on a product.
    fn active_holds(&self, user_id: &UserId, product_id: &ProductId) -> u32 {
        self.holds
            .values()
            .filter(|h| {
                h.status == HoldStatus::Active
                    && h.user_id == *user_id
                    && h.product_id == *product_id
            })
            .count() as u32
    }
}

impl HoldStore for InMemoryStore {
    async fn get_hold(&self, id: &HoldId) -> Result<Option<Hold>, StoreError> {
        Ok(self.tables()?.holds.get(id).cloned())
    }

    async fn place_hold(&self, hold: &Hold, limit: u32) -> Result<(), PlaceHoldError> {
        if self.holds_busy.load(Ordering::SeqCst) {
            return Err(PlaceHoldError::Conflict);
        }
        let mut tables = self.tables()?;
        let line = [(&hold.product_id, &hold.shards, hold.quantity.get())];
        tables
            .check_take(&line)
            .map_err(|_| PlaceHoldError::InsufficientStock)?;
        if tables.active_holds(&hold.user_id, &hold.product_id) >= limit {
            return Err(PlaceHoldError::LimitReached);
        }
        tables
            .take(&line, hold.created_at)
            .map_err(|_| PlaceHoldError::InsufficientStock)?;
        tables.holds.insert(hold.id.clone(), hold.clone());
        Ok(())
    }

    async fn expire_hold(&self, expired: &Hold) -> Result<bool, StoreError> {
        let mut tables = self.tables()?;
        match tables.holds.get(&expired.id) {
            Some(hold) if hold.expired_at(expired.updated_at) => {}
            _ => return Ok(false),
        }
        tables.holds.insert(expired.id.clone(), expired.clone());
        tables.restore(&expired.product_id, &expired.shards, expired.quantity.get());
        Ok(true)
    }

    async fn expired_holds(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Hold>, StoreError> {
        let tables = self.tables()?;
        let mut due: Vec<Hold> = tables
            .holds
            .values()
            .filter(|h| h.expired_at(now))
            .cloned()
            .collect();
        due.sort_by_key(|h| h.expires_at);
        due.truncate(limit as usize);
        Ok(due)
    }
}
