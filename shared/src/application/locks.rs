//! Per-shard lock items around order placement (one per product unless it has stock shards):
//! taken in ascending (product id, shard) order (so two orders never wait on each other in a
//! cycle), retried with jittered exponential backoff while the attempts and the invocation's
//! [`WaitBudget`] last, and released only with the token that took them.

use std::time::{Duration, Instant};

use super::WaitBudget;
use crate::config::LockSettings;
use crate::domain::StockShard;
use crate::ports::{Clock, StockLocks};
use crate::retry::full_jitter;

use super::AppError;

/// Locks held by one request; give them back with [`HeldLocks::release`].
pub(super) struct HeldLocks {
    token: String,
    shards: Vec<StockShard>,
}

/// Takes every lock or none: on a lock that stays busy past its attempts or past `budget` (which
/// all the shards share: they are taken one after another), the ones already taken are released
/// and the busy shard's product is reported.
pub(super) async fn lock_shards(
    locks: &impl StockLocks,
    clock: &impl Clock,
    settings: &LockSettings,
    budget: &WaitBudget,
    shards: &[StockShard],
) -> Result<HeldLocks, AppError> {
    let mut sorted = shards.to_vec();
    sorted.sort();
    sorted.dedup();
    let mut held = HeldLocks {
        token: uuid::Uuid::new_v4().to_string(),
        shards: Vec::with_capacity(sorted.len()),
    };
    for shard in sorted {
        match take(locks, clock, settings, budget, &shard, &held.token).await {
            Ok(true) => held.shards.push(shard),
            Ok(false) => {
                held.release(locks).await;
                return Err(AppError::LockConflict {
                    product_id: shard.product_id,
                });
            }
            Err(e) => {
                held.release(locks).await;
                return Err(e.into());
            }
        }
    }
    Ok(held)
}

async fn take(
    locks: &impl StockLocks,
    clock: &impl Clock,
    settings: &LockSettings,
    budget: &WaitBudget,
    shard: &StockShard,
    token: &str,
) -> Result<bool, crate::ports::StoreError> {
    for attempt in 0..settings.attempts {
        if locks
            .try_lock(shard, token, clock.now(), settings.lease)
            .await?
        {
            return Ok(true);
        }
        let pause = backoff(settings, attempt);
        if attempt + 1 == settings.attempts || !budget.allows(Instant::now(), pause) {
            break;
        }
        tokio::time::sleep(pause).await;
    }
    Ok(false)
}

/// The pause before lock attempt `attempt + 1`.
fn backoff(settings: &LockSettings, attempt: u32) -> Duration {
    full_jitter(settings.base_backoff, attempt, settings.max_backoff)
}

impl HeldLocks {
    /// Releases every lock this request still owns. A failed release is logged, not returned:
    /// the lease expires on its own and the stock transaction never depended on the lock.
    pub(super) async fn release(self, locks: &impl StockLocks) {
        for shard in &self.shards {
            if let Err(e) = locks.unlock(shard, &self.token).await {
                tracing::warn!(shard = %shard, error = %e, "lock release failed; the lease will expire");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::in_memory::{FixedClock, InMemoryStore};
    use crate::domain::ProductId;

    fn shard(product: &str) -> StockShard {
        StockShard::first(ProductId::new(product))
    }

    fn settings() -> LockSettings {
        LockSettings {
            enabled: true,
            lease: Duration::from_secs(5),
            attempts: 3,
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
        }
    }

    #[tokio::test]
    async fn takes_all_locks_and_releases_them_by_token() {
        let store = InMemoryStore::default();
        let clock = FixedClock::default();
        let ids = [shard("b"), shard("a")];
        let held = lock_shards(&store, &clock, &settings(), &WaitBudget::UNLIMITED, &ids)
            .await
            .unwrap();
        assert!(
            !store
                .try_lock(&ids[0], "other", clock.now(), Duration::from_secs(5))
                .await
                .unwrap()
        );
        held.release(&store).await;
        assert!(
            store
                .try_lock(&ids[0], "other", clock.now(), Duration::from_secs(5))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn busy_lock_gives_lock_conflict_and_releases_what_was_taken() {
        let store = InMemoryStore::default();
        let clock = FixedClock::default();
        assert!(
            store
                .try_lock(&shard("b"), "holder", clock.now(), Duration::from_secs(5))
                .await
                .unwrap()
        );
        let err = lock_shards(
            &store,
            &clock,
            &settings(),
            &WaitBudget::UNLIMITED,
            &[shard("a"), shard("b")],
        )
        .await
        .err()
        .unwrap();
        assert!(matches!(err, AppError::LockConflict { product_id } if product_id.as_str() == "b"));
        assert!(
            store
                .try_lock(&shard("a"), "next", clock.now(), Duration::from_secs(5))
                .await
                .unwrap(),
            "a was released"
        );
    }

    #[tokio::test]
    async fn a_busy_lock_gives_up_inside_the_invocation_budget() {
        // Held by another order: the default settings would try it for up to 60 x 100 ms.
        let store = InMemoryStore::default();
        let clock = FixedClock::default();
        assert!(
            store
                .try_lock(&shard("a"), "holder", clock.now(), Duration::from_secs(60))
                .await
                .unwrap()
        );
        let settings = LockSettings {
            enabled: true,
            ..LockSettings::default()
        };
        let for_waiting = Duration::from_millis(300);
        let started = Instant::now();
        let budget =
            WaitBudget::from_remaining(started, crate::application::budget::RESERVE + for_waiting);

        let err = lock_shards(
            &store,
            &clock,
            &settings,
            &budget,
            &[shard("a"), shard("b")],
        )
        .await
        .err()
        .unwrap();

        let waited = started.elapsed();
        assert!(matches!(err, AppError::LockConflict { .. }), "{err:?}");
        // A sleep may end a timer tick late; 60 tries without the budget take seconds.
        assert!(
            waited < for_waiting + Duration::from_millis(50),
            "gave up after {waited:?}, past the {for_waiting:?} the budget left for waiting"
        );
    }

    #[test]
    fn backoff_never_exceeds_the_ceiling() {
        let s = LockSettings {
            base_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(400),
            ..settings()
        };
        for attempt in 0..30 {
            assert!(backoff(&s, attempt) <= Duration::from_millis(400));
        }
    }
}
