//! Per-shard lock items (key: the product id, or `<product id>#<k>` for stock shard k > 0): a lease
//! owned by a random token, taken over only after it ends.
//! They guard the critical section as a first layer; the stock transaction's conditions are what
//! make overselling impossible when a lease runs out mid-flight.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::sdk_failure;
use super::{DynamoStore, condition_held, is_condition_failure, items};
use crate::domain::StockShard;
use crate::ports::{StockLocks, StoreError};

impl StockLocks for DynamoStore {
    async fn try_lock(
        &self,
        shard: &StockShard,
        token: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let now_ms = now.timestamp_millis();
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let lease_until_ms = now_ms.saturating_add(lease_ms);
        // TTL removes stale lock items days late, so the lease end, not TTL, decides who may take over.
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.locks)
            .set_item(Some(items::lock_item(shard, token, lease_until_ms)))
            .condition_expression("attribute_not_exists(product_id) OR lease_until_ms < :now_ms")
            .expression_attribute_values(":now_ms", items::number(now_ms))
            .send()
            .await;
        condition_held(result)
    }

    async fn unlock(&self, shard: &StockShard, token: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.tables.locks)
            .set_key(Some(items::lock_key(shard)))
            .condition_expression("#token = :token")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":token", items::string(token))
            .send()
            .await;
        match result {
            // A failed condition means our lease ran out and someone else holds the lock now:
            // deleting it would let a third writer in beside them.
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(sdk_failure(e)),
        }
    }
}
