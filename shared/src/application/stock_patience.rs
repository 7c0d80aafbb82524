//! How long a placement (an order from items, a hold) keeps at it while the stock shard it
//! picked is busy: throttled at its key's limit, its journal full, or in another transaction
//! (`adapters/dynamodb/stock_journal/` tries it twice, a few ms apart). Each busy answer moves a
//! one-shard line of a sharded product to another shard at random, where the product's other
//! keys may have budget now, and pauses briefly; a product of one shard waits for its key. After
//! [`PATIENCE`], or sooner when the invocation's [`WaitBudget`] runs out, the answer is 409
//! `LOCK_CONFLICT` (docs/decisions.md, "Stock outside transactions").

use std::time::{Duration, Instant};

use super::WaitBudget;
use crate::retry::full_jitter;

/// How long busy shards are tried before the refusal: inside create-order's 10 s timeout. A
/// saturated product of one shard queues its buyers for seconds (64 buyers at some 30 orders/s
/// wait 2 s on average, and the wait is a lottery), and a buyer is better served late than
/// refused.
pub(super) const PATIENCE: Duration = Duration::from_secs(8);
/// First pause after a busy answer; doubles per answer, with full jitter.
const BACKOFF: Duration = Duration::from_millis(2);
/// Longest pause: longer than the journal's releases wait (`stock_journal`'s 10 ms), so that on
/// a saturated key the releases get its budget first and the takes refused by a full journal,
/// which cost a unit each, stay few.
const BACKOFF_CAP: Duration = Duration::from_millis(250);
/// After this long a placement tries again sooner ([`URGENT_CAP`]), so that on a saturated key
/// the buyers who waited longest are the likeliest to get its next units: random pauses alone make
/// the wait a lottery whose tail runs into [`PATIENCE`].
const URGENT_AFTER: Duration = Duration::from_secs(3);
/// Longest pause once urgent.
const URGENT_CAP: Duration = Duration::from_millis(20);

/// The busy answers one placement met, and since when.
pub(super) struct Patience {
    since: Instant,
    busy: u32,
    budget: WaitBudget,
}

impl Patience {
    /// Patience from now, ending at [`PATIENCE`] or with `budget`, whichever comes first.
    pub(super) fn start(budget: WaitBudget) -> Self {
        Patience {
            since: Instant::now(),
            busy: 0,
            budget,
        }
    }

    /// After a busy answer: the pause before the next try, or `None` once patience ran out.
    pub(super) fn next_pause(&mut self) -> Option<Duration> {
        self.busy += 1;
        let waited = self.since.elapsed();
        if waited >= PATIENCE {
            return None;
        }
        let cap = if waited >= URGENT_AFTER {
            URGENT_CAP
        } else {
            BACKOFF_CAP
        };
        let pause = full_jitter(BACKOFF, self.busy, cap);
        self.budget.allows(Instant::now(), pause).then_some(pause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_stay_short_until_patience_runs_out() {
        let mut patience = Patience::start(WaitBudget::UNLIMITED);
        for _ in 0..50 {
            let pause = patience.next_pause().expect("within patience");
            assert!(pause <= BACKOFF_CAP);
        }
        patience.since = Instant::now() - URGENT_AFTER;
        for _ in 0..50 {
            let pause = patience.next_pause().expect("within patience");
            assert!(pause <= URGENT_CAP, "the longest waiting try sooner");
        }
        patience.since = Instant::now() - PATIENCE;
        assert_eq!(patience.next_pause(), None);
    }

    #[test]
    fn patience_ends_with_the_invocation_budget() {
        let budget =
            WaitBudget::from_remaining(Instant::now(), crate::application::budget::RESERVE);
        let mut patience = Patience::start(budget);
        assert_eq!(
            patience.next_pause(),
            None,
            "no time left before the reserve: refused at the first busy answer"
        );
    }
}
