//! Rate limits in the in-memory store: the DynamoDB counters' 2-second buckets, a map per subject.

use chrono::{DateTime, Utc};

use super::InMemoryStore;
use crate::domain::{rate_bucket, rate_bucket_counts, rate_retry_after_secs, rate_verdict};
use crate::ports::{RateCounter, RateDecision, StoreError};

impl RateCounter for InMemoryStore {
    async fn try_count(
        &self,
        subject: &str,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<RateDecision, StoreError> {
        if limit == 0 {
            return Ok(RateDecision::ZERO_LIMIT);
        }
        // The DynamoDB counters' rule (`domain/rate_window.rs`): add, judge, take back if refused.
        let now_ms = now.timestamp_millis();
        let bucket = rate_bucket(now_ms);
        let mut tables = self.tables()?;
        let buckets = tables.rate_buckets.entry(subject.to_owned()).or_default();
        buckets.retain(|b, _| rate_bucket_counts(*b, bucket));
        *buckets.entry(bucket).or_default() += 1;
        match rate_verdict(buckets.iter().map(|(b, n)| (*b, *n)), now_ms, limit) {
            None => Ok(RateDecision::Allowed),
            Some(fits_at) => {
                *buckets.entry(bucket).or_default() -= 1;
                Ok(RateDecision::Limited {
                    retry_after_secs: rate_retry_after_secs(fits_at, now_ms),
                })
            }
        }
    }
}
