//! Request counters per subject and epoch minute, shared by every Lambda instance: one
//! conditional update per request, removed by TTL two minutes after their window.

use super::{DynamoStore, condition_held, items};
use crate::ports::{RateCounter, StoreError};

impl RateCounter for DynamoStore {
    async fn try_count(&self, subject: &str, window: i64, limit: u32) -> Result<bool, StoreError> {
        if limit == 0 {
            return Ok(false);
        }
        // The condition makes the check and the increment one atomic step, so concurrent
        // instances can never count past the limit between them.
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.rate_limits)
            .set_key(Some(items::rate_limit_key(subject, window)))
            .update_expression("ADD request_count :one SET expires_at = :ttl")
            .condition_expression("attribute_not_exists(request_count) OR request_count < :limit")
            .expression_attribute_values(":one", items::number(1))
            .expression_attribute_values(":ttl", items::rate_limit_expiry(window))
            .expression_attribute_values(":limit", items::number(limit))
            .send()
            .await;
        condition_held(result)
    }
}
