//! How long a placement may wait for busy stock shards and for locks: until a reserve before the
//! deadline of the invocation serving it (Lambda's `Context::deadline`, which the local gateway
//! sets too), so that a contended order is answered 409 `LOCK_CONFLICT` before the function is cut
//! off, never a timeout's 5xx. The waits' own limits (`stock_patience`'s, the lock attempts) still
//! apply inside it; whichever ends first ends the wait.

use std::time::{Duration, Instant, SystemTime};

/// What a placement keeps for itself after its last wait: releasing its locks, the order's
/// write and its enqueue (a round trip of tens of ms each, more with the SDK's retries of a
/// throttled one), a push and the answer.
pub const RESERVE: Duration = Duration::from_millis(1_500);

/// The instant a placement stops waiting, if it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitBudget {
    until: Option<Instant>,
}

impl WaitBudget {
    /// No deadline: a caller that is never cut off (the load tests' ceiling, unit tests), where
    /// only the waits' own limits apply.
    pub const UNLIMITED: WaitBudget = WaitBudget { until: None };

    /// `remaining` is how long the caller has at `now` before it is cut off.
    pub fn from_remaining(now: Instant, remaining: Duration) -> Self {
        WaitBudget {
            until: Some(now + remaining.saturating_sub(RESERVE)),
        }
    }

    /// From an invocation deadline on the wall clock (`now_wall` is the same moment as `now`).
    /// A deadline already past leaves no time to wait.
    pub fn until_deadline(deadline: SystemTime, now_wall: SystemTime, now: Instant) -> Self {
        let remaining = deadline.duration_since(now_wall).unwrap_or(Duration::ZERO);
        Self::from_remaining(now, remaining)
    }

    /// Whether a pause of `pause` from `now` still ends inside the budget, leaving time for a try.
    pub fn allows(&self, now: Instant, pause: Duration) -> bool {
        self.until.is_none_or(|until| now + pause < until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_keeps_the_reserve_before_the_deadline() {
        let now = Instant::now();
        let budget = WaitBudget::from_remaining(now, Duration::from_secs(10));
        let waits = Duration::from_secs(10) - RESERVE;
        assert!(budget.allows(now, waits - Duration::from_millis(1)));
        assert!(!budget.allows(now, waits));
    }

    #[test]
    fn a_lambda_deadline_on_the_wall_clock_becomes_the_same_budget() {
        let now = Instant::now();
        let wall = SystemTime::now();
        let budget = WaitBudget::until_deadline(wall + Duration::from_secs(10), wall, now);
        assert_eq!(
            budget,
            WaitBudget::from_remaining(now, Duration::from_secs(10))
        );
    }

    #[test]
    fn a_deadline_inside_the_reserve_or_past_allows_no_wait() {
        let now = Instant::now();
        let wall = SystemTime::now();
        for deadline in [wall + RESERVE / 2, wall - Duration::from_secs(1)] {
            let budget = WaitBudget::until_deadline(deadline, wall, now);
            assert!(!budget.allows(now, Duration::ZERO), "{deadline:?}");
        }
    }

    #[test]
    fn without_a_deadline_every_wait_is_allowed() {
        assert!(WaitBudget::UNLIMITED.allows(Instant::now(), Duration::from_secs(3_600)));
    }
}
