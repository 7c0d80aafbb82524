//! Sliding-window rate limiting shared by every Lambda instance: an exact log of each subject's
//! last `L` grant times, kept as a ring in one item (`n` the next slot, `ts` the times, `lim` the
//! `L` it was built for), granted by one conditional UpdateItem and removed by TTL.
//!
//! A request at `now` may take slot `n` when the ring is still filling or `ts[n]` (the oldest of
//! the last `L` grants) is at least 60 s old; the condition makes that check and the write one
//! atomic step, so concurrent instances never grant past the limit between them. On a failed
//! condition the item comes back with the error (`ALL_OLD`), which says either "refused until
//! `ts[n]` + 60 s" or which slot to try next: no read call, and a warm instance spends one write
//! per request. Item size is about `L` × 9 bytes (2 WCU a request at the default `L` = 120).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use chrono::{DateTime, Utc};

use super::items::{self, Item, RateLog};
use super::{DynamoStore, is_condition_failure, sdk_failure};
use crate::ports::{RATE_SPAN_MS, RateCounter, RateDecision, StoreError};

/// Writes one request may spend. Every failed condition means another writer changed the ring
/// since the state this attempt was built on, so `L` + 1 attempts always reach either a grant or
/// a full ring (a true refusal) for `L` ≤ 15; only heavier contention on one subject runs out.
const ATTEMPTS: u32 = 16;
/// Backoff between contended attempts (full jitter); the first retry, after a stale hint, is
/// immediate.
const BACKOFF_BASE: Duration = Duration::from_millis(4);
const BACKOFF_CAP: Duration = Duration::from_millis(100);
/// Answer when the attempts run out under contention: refused, retry in a second. Refusing
/// rather than allowing keeps the limit a hard bound.
const CONTENDED: RateDecision = RateDecision::Limited {
    retry_after_secs: 1,
};
/// Hints kept per process before the map is cleared (a hint is only a guess; losing it costs one
/// extra write).
const HINTS_CAP: usize = 10_000;

/// Per-instance guesses of each subject's next slot, so the common request is one write.
#[derive(Debug, Default)]
pub(super) struct SlotHints(Mutex<HashMap<String, u32>>);

impl SlotHints {
    fn get(&self, subject: &str) -> Option<u32> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(subject)
            .copied()
    }

    fn set(&self, subject: &str, next: u32) {
        let mut hints = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if hints.len() >= HINTS_CAP && !hints.contains_key(subject) {
            hints.clear();
        }
        hints.insert(subject.to_owned(), next);
    }
}

/// The next write for one request, decided from the ring as last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// No item: write the first grant.
    Create,
    /// Write `now` into `slot`, if the ring is still as expected.
    Take { slot: u32 },
    /// The ring was built for another limit (or is inconsistent): replace it, if unchanged since
    /// read, by `ring`, which already holds this request's grant when `decision` allows it.
    Rebuild {
        old: RateLog,
        ring: RateLog,
        decision: RateDecision,
    },
    /// Refused without a write.
    Refuse(RateDecision),
}

/// What to do about a request at `now_ms` given the ring (`None`: no item).
fn plan(log: Option<RateLog>, now_ms: i64, limit: u32) -> Step {
    let Some(log) = log else {
        return Step::Create;
    };
    let size = log.grants.len();
    let full = size == limit as usize;
    let consistent = log.built_for == limit
        && log.next < limit
        && size <= limit as usize
        && (full || log.next as usize == size);
    if !consistent {
        return rebuild(log, now_ms, limit);
    }
    if !full {
        return Step::Take { slot: log.next };
    }
    let oldest = log.grants[log.next as usize];
    if oldest <= now_ms - RATE_SPAN_MS {
        Step::Take { slot: log.next }
    } else {
        Step::Refuse(RateDecision::limited_until(oldest, now_ms))
    }
}

/// A ring for `limit` from whatever `old` holds. The grants still inside the span are the whole
/// recent history (the old limit let no more than the old ring holds into any span), so keeping
/// the newest `limit` of them, oldest first, gives the exact sliding answer under the new limit:
/// lowering the limit refuses until enough of the recent grants age out; raising it allows the
/// difference at once. Grants of a corrupted order are sorted back into order.
fn rebuild(old: RateLog, now_ms: i64, limit: u32) -> Step {
    let mut kept: Vec<i64> = old
        .grants
        .iter()
        .copied()
        .filter(|at| *at > now_ms - RATE_SPAN_MS)
        .collect();
    kept.sort_unstable();
    kept.drain(..kept.len().saturating_sub(limit as usize));
    let decision = if kept.len() < limit as usize {
        kept.push(now_ms);
        RateDecision::Allowed
    } else {
        RateDecision::limited_until(kept[0], now_ms)
    };
    let ring = RateLog {
        next: (kept.len() % limit as usize) as u32,
        grants: kept,
        built_for: limit,
    };
    Step::Rebuild {
        old,
        ring,
        decision,
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
            return Ok(RateDecision::Limited {
                retry_after_secs: (RATE_SPAN_MS / 1000) as u64,
            });
        }
        let now_ms = now.timestamp_millis();
        let mut step = match self.rate_hints.get(subject) {
            Some(slot) => Step::Take { slot },
            None => Step::Create,
        };
        for attempt in 0..=ATTEMPTS {
            if let Step::Refuse(decision) = step {
                return Ok(decision);
            }
            if attempt == ATTEMPTS {
                break;
            }
            if attempt > 1 {
                tokio::time::sleep(crate::retry::full_jitter(
                    BACKOFF_BASE,
                    attempt - 2,
                    BACKOFF_CAP,
                ))
                .await;
            }
            match self.write_step(subject, &step, now_ms, limit).await? {
                Written::Applied => {
                    let (next, decision) = match &step {
                        Step::Create => (1 % limit, RateDecision::Allowed),
                        Step::Take { slot } => ((slot + 1) % limit, RateDecision::Allowed),
                        Step::Rebuild { ring, decision, .. } => (ring.next, *decision),
                        Step::Refuse(_) => unreachable!("refusals are never written"),
                    };
                    self.rate_hints.set(subject, next);
                    return Ok(decision);
                }
                Written::Refused(current) => {
                    let log = current.as_ref().map(RateLog::try_from).transpose()?;
                    if let Some(log) = &log {
                        self.rate_hints.set(subject, log.next);
                    }
                    step = plan(log, now_ms, limit);
                }
            }
        }
        tracing::warn!(
            subject,
            "rate log stayed contended for {ATTEMPTS} writes; refused"
        );
        Ok(CONTENDED)
    }
}

/// How a conditional write ended.
enum Written {
    Applied,
    /// The condition was false; the item as it was then (`None`: no item).
    Refused(Option<Item>),
}

impl DynamoStore {
    async fn write_step(
        &self,
        subject: &str,
        step: &Step,
        now_ms: i64,
        limit: u32,
    ) -> Result<Written, StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.tables.rate_limits)
            .set_key(Some(items::rate_log_key(subject)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .expression_attribute_values(":lim", items::number(limit));
        let request = match step {
            Step::Create => request
                .update_expression("SET ts = :ts, n = :next, lim = :lim, expires_at = :ttl")
                .condition_expression("attribute_not_exists(pk)")
                .expression_attribute_values(":ts", items::grant_times(&[now_ms]))
                .expression_attribute_values(":next", items::number(1 % limit))
                .expression_attribute_values(":ttl", items::rate_log_expiry(now_ms)),
            // List indexes cannot be placeholders, so the slot is written into the expression;
            // setting the index just past the end of `ts` appends, which is how the ring fills.
            // `size(ts) = :slot` is "still filling" (no `ts[slot]` yet).
            Step::Take { slot } => request
                .update_expression(format!(
                    "SET ts[{slot}] = :now, n = :next, lim = :lim, expires_at = :ttl"
                ))
                .condition_expression(format!(
                    "n = :slot AND lim = :lim AND (size(ts) = :slot OR ts[{slot}] <= :cutoff)"
                ))
                .expression_attribute_values(":now", items::number(now_ms))
                .expression_attribute_values(":slot", items::number(slot))
                .expression_attribute_values(":next", items::number((slot + 1) % limit))
                .expression_attribute_values(":cutoff", items::number(now_ms - RATE_SPAN_MS))
                .expression_attribute_values(":ttl", items::rate_log_expiry(now_ms)),
            Step::Rebuild { old, ring, .. } => {
                let newest = ring.grants.iter().copied().max().unwrap_or(now_ms);
                request
                    .update_expression("SET ts = :ts, n = :next, lim = :lim, expires_at = :ttl")
                    .condition_expression("n = :old_next AND lim = :old_lim AND ts = :old_ts")
                    .expression_attribute_values(":ts", items::grant_times(&ring.grants))
                    .expression_attribute_values(":next", items::number(ring.next))
                    .expression_attribute_values(":ttl", items::rate_log_expiry(newest.max(now_ms)))
                    .expression_attribute_values(":old_next", items::number(old.next))
                    .expression_attribute_values(":old_lim", items::number(old.built_for))
                    .expression_attribute_values(":old_ts", items::grant_times(&old.grants))
            }
            Step::Refuse(_) => unreachable!("refusals are never written"),
        };
        match request.send().await {
            Ok(_) => Ok(Written::Applied),
            Err(error) if is_condition_failure(&error) => {
                Ok(Written::Refused(match error.into_service_error() {
                    UpdateItemError::ConditionalCheckFailedException(failed) => failed.item,
                    _ => None,
                }))
            }
            Err(error) => Err(sdk_failure(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(next: u32, grants: &[i64], built_for: u32) -> Option<RateLog> {
        Some(RateLog {
            next,
            grants: grants.to_vec(),
            built_for,
        })
    }

    #[test]
    fn a_filling_ring_takes_its_next_slot_and_a_missing_item_is_created() {
        assert_eq!(plan(None, 0, 3), Step::Create);
        assert_eq!(plan(ring(1, &[0], 3), 0, 3), Step::Take { slot: 1 });
    }

    #[test]
    fn a_full_ring_is_refused_until_its_oldest_grant_is_60_seconds_old() {
        let full = || ring(1, &[5_000, 1_000, 3_000], 3);
        assert_eq!(
            plan(full(), 2_000, 3),
            Step::Refuse(RateDecision::Limited {
                retry_after_secs: 59
            })
        );
        assert_eq!(
            plan(full(), 60_999, 3),
            Step::Refuse(RateDecision::Limited {
                retry_after_secs: 1
            })
        );
        assert_eq!(plan(full(), 61_000, 3), Step::Take { slot: 1 });
        assert_eq!(
            plan(full(), 900, 3),
            Step::Refuse(RateDecision::Limited {
                retry_after_secs: 60
            }),
            "a grant stamped after this request's clock read waits the span, not more"
        );
    }

    #[test]
    fn a_lower_limit_keeps_the_newest_grants_in_the_span_and_refuses() {
        let step = plan(ring(0, &[1_000, 2_000, 3_000, 4_000], 4), 10_000, 2);
        let Step::Rebuild { ring, decision, .. } = step else {
            panic!("{step:?}")
        };
        assert_eq!((ring.next, ring.grants), (0, vec![3_000, 4_000]));
        assert_eq!(
            decision,
            RateDecision::Limited {
                retry_after_secs: 53
            }
        );
    }

    #[test]
    fn a_higher_limit_keeps_the_span_and_grants_at_once() {
        let step = plan(ring(1, &[70_000, 20_000], 2), 70_001, 4);
        let Step::Rebuild { ring, decision, .. } = step else {
            panic!("{step:?}")
        };
        assert_eq!((ring.next, ring.grants), (3, vec![20_000, 70_000, 70_001]));
        assert_eq!(decision, RateDecision::Allowed);
    }

    #[test]
    fn an_inconsistent_ring_is_rebuilt_from_its_grants() {
        let step = plan(ring(7, &[1_000], 3), 100_000, 3);
        let Step::Rebuild { ring, decision, .. } = step else {
            panic!("{step:?}")
        };
        assert_eq!((ring.next, ring.grants), (1, vec![100_000]));
        assert_eq!(decision, RateDecision::Allowed);
    }

    #[test]
    fn hints_are_cleared_rather_than_grow_past_their_cap() {
        let hints = SlotHints::default();
        for i in 0..HINTS_CAP {
            hints.set(&format!("s{i}"), 1);
        }
        hints.set("s0", 2);
        assert_eq!(hints.get("s0"), Some(2), "an update is not a new entry");
        hints.set("new", 3);
        assert_eq!((hints.get("s1"), hints.get("new")), (None, Some(3)));
    }
}
