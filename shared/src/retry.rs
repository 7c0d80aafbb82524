//! The one backoff every retry loop uses (lock attempts, transaction conflicts, unprocessed batch
//! keys): exponential with full jitter, so that retries of contending callers spread out instead
//! of lining up with each other.

use std::time::Duration;

/// A pause drawn uniformly from `[0, min(cap, base * 2^attempt)]` (AWS's "full jitter").
pub fn full_jitter(base: Duration, attempt: u32, cap: Duration) -> Duration {
    let ceiling = base.saturating_mul(1 << attempt.min(16)).min(cap);
    let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::random_range(0..=millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_exceeds_the_cap_or_the_doubled_base() {
        let cap = Duration::from_millis(400);
        for attempt in 0..40 {
            let pause = full_jitter(Duration::from_millis(20), attempt, cap);
            assert!(pause <= cap);
            assert!(pause <= Duration::from_millis(20).saturating_mul(1 << attempt.min(16)));
        }
        assert_eq!(
            full_jitter(Duration::ZERO, 3, cap),
            Duration::ZERO,
            "no base, no pause"
        );
    }
}
