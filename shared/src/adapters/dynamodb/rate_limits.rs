//! Rate limiting shared by every Lambda instance: per subject one small item of per-bucket
//! counters (`c<bucket>` = grants made in that 2-second bucket, `domain/rate_window.rs`), counted
//! by one atomic `ADD` per request, which never loses a race however many instances write at once,
//! and removed by TTL.
//!
//! A request adds 1 to its bucket and gets the item back (`ALL_NEW`); the buckets that still count
//! decide. A refused request takes its 1 back (a second write) and the instance remembers until
//! when the subject is over, answering its next requests from memory without a write: a flood
//! costs one write per instance per wait. Each write also removes the bucket that just left the
//! span and any stale bucket this instance saw last time, so the item holds about 31 counters
//! (~450 bytes, one write unit) whatever the limit.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};

use super::items::{self, Item};
use super::{DynamoStore, sdk_failure};
use crate::domain::{
    RATE_BUCKET_MS, RATE_SPAN_MS, rate_bucket, rate_bucket_counts, rate_retry_after_secs,
    rate_verdict,
};
use crate::ports::{RateCounter, RateDecision, StoreError};

/// Subjects remembered per instance before the memory is cleared (it is only a saving: losing
/// it costs a write).
const MEMORY_CAP: usize = 10_000;
/// Buckets just past the span that every write removes (the instance need not have seen them).
const TRAILING: i64 = 3;

/// Key of a subject's counters. The `#w` suffix keeps them apart from the items of earlier designs
/// (`<subject>#log`, `<subject>#<minute>`), which TTL removes once nothing writes them.
fn key(subject: &str) -> Item {
    HashMap::from([("pk".to_owned(), items::string(format!("{subject}#w")))])
}

/// The epoch second at which TTL may remove a subject's counters last written at `now_ms`: the
/// 60-second span plus two minutes' margin for clock skew between instances. An item past it but
/// not yet removed (TTL deletes lazily) holds only buckets that no longer count.
fn expiry(now_ms: i64) -> AttributeValue {
    items::number(now_ms.div_euclid(1000) + 180)
}

/// The attribute of bucket `bucket`.
fn counter(bucket: i64) -> String {
    format!("c{bucket}")
}

/// The buckets of an item: every `c<bucket>` attribute with its count.
fn buckets(item: &Item) -> Vec<(i64, i64)> {
    item.iter()
        .filter_map(|(name, value)| {
            let bucket = name.strip_prefix('c')?.parse().ok()?;
            Some((bucket, value.as_n().ok()?.parse().ok()?))
        })
        .collect()
}

/// What an instance remembers of a subject.
#[derive(Debug, Default, Clone)]
struct Seen {
    /// Refused until this time (epoch ms): answered from memory meanwhile.
    refused_until_ms: i64,
    /// Buckets on the item that no longer count, to remove with the next write.
    stale: Vec<i64>,
}

/// Per-instance memory of subjects, so that a flood of refusals costs no write and stale
/// buckets leave the item.
#[derive(Debug, Default)]
pub(super) struct RateMemory(Mutex<HashMap<String, Seen>>);

impl RateMemory {
    fn get(&self, subject: &str) -> Seen {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(subject)
            .cloned()
            .unwrap_or_default()
    }

    fn set(&self, subject: &str, seen: Seen) {
        let mut memory = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if memory.len() >= MEMORY_CAP && !memory.contains_key(subject) {
            memory.clear();
        }
        memory.insert(subject.to_owned(), seen);
    }
}

impl RateCounter for DynamoStore {
    async fn try_count(
        &self,
        subject: &str,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<RateDecision, StoreError> {
        if limit == 0 {
            return Ok(RateDecision::ZERO_LIMIT);
        }
        let now_ms = now.timestamp_millis();
        let seen = self.rate_memory.get(subject);
        if now_ms < seen.refused_until_ms {
            return Ok(RateDecision::Limited {
                retry_after_secs: rate_retry_after_secs(seen.refused_until_ms, now_ms),
            });
        }
        let bucket = rate_bucket(now_ms);
        let mut remove: Vec<i64> = (1..=TRAILING)
            .map(|k| bucket - RATE_SPAN_MS / RATE_BUCKET_MS - k)
            .chain(seen.stale.iter().copied())
            .filter(|b| !rate_bucket_counts(*b, bucket))
            .collect();
        remove.sort_unstable();
        remove.dedup();
        let item = self
            .add_to_bucket(subject, bucket, 1, &remove, now_ms)
            .await?;
        let counts = buckets(&item);
        let stale = counts
            .iter()
            .map(|(b, _)| *b)
            .filter(|b| !rate_bucket_counts(*b, bucket))
            .collect();
        match rate_verdict(counts, now_ms, limit) {
            None => {
                self.rate_memory.set(
                    subject,
                    Seen {
                        refused_until_ms: 0,
                        stale,
                    },
                );
                Ok(RateDecision::Allowed)
            }
            Some(fits_at) => {
                // Not counted: the 1 goes back.
                self.add_to_bucket(subject, bucket, -1, &[], now_ms).await?;
                self.rate_memory.set(
                    subject,
                    Seen {
                        refused_until_ms: fits_at,
                        stale,
                    },
                );
                Ok(RateDecision::Limited {
                    retry_after_secs: rate_retry_after_secs(fits_at, now_ms),
                })
            }
        }
    }
}

impl DynamoStore {
    /// `ADD c<bucket> :delta`, the TTL moved on, the `remove` buckets removed; the item after.
    async fn add_to_bucket(
        &self,
        subject: &str,
        bucket: i64,
        delta: i64,
        remove: &[i64],
        now_ms: i64,
    ) -> Result<Item, StoreError> {
        let mut expression = "SET expires_at = :ttl ADD #c :d".to_owned();
        let mut request = self
            .client
            .update_item()
            .table_name(&self.tables.rate_limits)
            .set_key(Some(key(subject)))
            .expression_attribute_names("#c", counter(bucket))
            .expression_attribute_values(":d", AttributeValue::N(delta.to_string()))
            .expression_attribute_values(":ttl", expiry(now_ms))
            .return_values(ReturnValue::AllNew);
        if !remove.is_empty() {
            let names: Vec<String> = (0..remove.len()).map(|i| format!("#r{i}")).collect();
            expression.push_str(" REMOVE ");
            expression.push_str(&names.join(", "));
            for (name, stale) in names.iter().zip(remove) {
                request = request.expression_attribute_names(name, counter(*stale));
            }
        }
        let output = request
            .update_expression(expression)
            .send()
            .await
            .map_err(sdk_failure)?;
        Ok(output.attributes.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_read_from_their_counters_only() {
        let item: Item = HashMap::from([
            ("pk".to_owned(), items::string("alice#w")),
            ("expires_at".to_owned(), items::number(5)),
            ("c880000001".to_owned(), items::number(3)),
            ("c880000002".to_owned(), items::number(-1)),
        ]);
        let mut found = buckets(&item);
        found.sort_unstable();
        assert_eq!(found, [(880_000_001, 3), (880_000_002, -1)]);
    }

    #[test]
    fn the_memory_is_cleared_rather_than_grow_past_its_cap() {
        let memory = RateMemory::default();
        for i in 0..MEMORY_CAP {
            memory.set(&format!("s{i}"), Seen::default());
        }
        let over = Seen {
            refused_until_ms: 9,
            stale: vec![],
        };
        memory.set("s0", over.clone());
        assert_eq!(
            memory.get("s0").refused_until_ms,
            9,
            "an update is not a new entry"
        );
        memory.set("new", over);
        assert_eq!(
            (
                memory.get("s1").refused_until_ms,
                memory.get("new").refused_until_ms
            ),
            (0, 9)
        );
    }
}
