//! The local stack's own per-connection message rate: a token bucket that a client sending
//! messages faster than [`MESSAGES_PER_SECOND`] (after a burst of [`BURST`]) runs dry, and is then
//! closed with 1008 (policy violation) instead of being served.
//!
//! API Gateway publishes no per-connection message quota (only the account's 10,000 requests/s,
//! shared by every API): these figures are this stack's, chosen so that one flooding client cannot
//! monopolize the handlers of a local stack while any real client (a browser that sends a ping now
//! and then) never comes near them.

use std::time::Instant;

/// Messages a connection may send per second, sustained.
pub(super) const MESSAGES_PER_SECOND: f64 = 50.0;
/// Messages a connection may send at once, after being quiet.
pub(super) const BURST: f64 = 100.0;

/// One connection's remaining allowance.
#[derive(Debug)]
pub(super) struct MessageBudget {
    tokens: f64,
    refilled_at: Instant,
}

impl MessageBudget {
    /// A full bucket at `now`.
    pub(super) fn new(now: Instant) -> Self {
        MessageBudget {
            tokens: BURST,
            refilled_at: now,
        }
    }

    /// Takes one message's token at `now`; `false` when the connection is over its rate.
    pub(super) fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.refilled_at);
        self.tokens = (self.tokens + elapsed.as_secs_f64() * MESSAGES_PER_SECOND).min(BURST);
        self.refilled_at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// How long a drained bucket takes to hold one message again.
#[cfg(test)]
fn one_message() -> std::time::Duration {
    std::time::Duration::from_secs_f64(1.0 / MESSAGES_PER_SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_next_message_is_refused() {
        let start = Instant::now();
        let mut budget = MessageBudget::new(start);

        let passed = (0..BURST as usize * 3)
            .take_while(|_| budget.take(start))
            .count();

        assert_eq!(passed, BURST as usize);
        assert!(!budget.take(start));
    }

    #[test]
    fn a_client_at_the_sustained_rate_is_never_refused() {
        let start = Instant::now();
        let mut budget = MessageBudget::new(start);

        for i in 1..=10_000u32 {
            assert!(budget.take(start + one_message() * i), "message {i}");
        }
    }

    #[test]
    fn the_bucket_refills_with_time_up_to_the_burst() {
        let start = Instant::now();
        let mut budget = MessageBudget::new(start);
        while budget.take(start) {}

        let later = start + std::time::Duration::from_secs(3600);
        let passed = (0..BURST as usize * 3)
            .take_while(|_| budget.take(later))
            .count();

        assert_eq!(
            passed, BURST as usize,
            "an hour's quiet refills no more than the burst"
        );
        assert!(budget.take(later + one_message()));
    }
}
