//! The rate limit's rule, shared by every store: no subject gets more than its limit in any 60
//! seconds, and a request is refused only when the grants that may fall in its span already fill
//! it (docs/decisions.md, "Rate limiting").
//!
//! Grants are counted per 2-second bucket (bucket `b` holds the grants made in
//! `[b × 2 s, (b + 1) × 2 s)`). A request at `now` counts the 31 buckets from `bucket(now) - 30`
//! to `bucket(now)`: they cover `(now - 60 s, now]` and up to 2 s more, so no 60 seconds ever hold
//! more grants than the limit, and a refusal can come early by at most one bucket (2 s) at the
//! edge of the span, never because of concurrency. A store adds each request to its bucket first
//! (an atomic increment, which loses no race), then judges the counts it got back; a refused
//! request is taken out again.

/// The span a rate limit counts over.
pub const RATE_SPAN_MS: i64 = 60_000;
/// The width of a bucket.
pub const RATE_BUCKET_MS: i64 = 2_000;
/// Buckets before the current one that still count.
const SPAN_BUCKETS: i64 = RATE_SPAN_MS / RATE_BUCKET_MS;

/// The bucket a time (epoch ms) falls in.
pub fn rate_bucket(at_ms: i64) -> i64 {
    at_ms.div_euclid(RATE_BUCKET_MS)
}

/// Whether bucket `bucket` counts for a request in bucket `now_bucket`. A later bucket counts
/// too: a concurrent request that read the clock after this one (or an instance whose clock runs
/// ahead) made its grant by the time this one is judged.
pub fn rate_bucket_counts(bucket: i64, now_bucket: i64) -> bool {
    bucket >= now_bucket - SPAN_BUCKETS
}

/// A request at `now_ms` judged by the counts `(bucket, grants)` read back after it was added to
/// its own bucket: `None` when it is within `limit`, else the time (epoch ms) from which a request
/// like it would be. Buckets that no longer count are ignored.
pub fn rate_verdict(
    counts: impl IntoIterator<Item = (i64, i64)>,
    now_ms: i64,
    limit: u32,
) -> Option<i64> {
    let now_bucket = rate_bucket(now_ms);
    let mut counting: Vec<(i64, i64)> = counts
        .into_iter()
        .filter(|(bucket, grants)| rate_bucket_counts(*bucket, now_bucket) && *grants > 0)
        .collect();
    let total: i64 = counting.iter().map(|(_, grants)| grants).sum();
    if total <= i64::from(limit) {
        return None;
    }
    // Without this request, `total - 1` grants count; it would fit once enough of the oldest
    // buckets have left the span.
    counting.sort_unstable();
    let mut others = total - 1;
    let mut fits_at = now_ms;
    for (bucket, grants) in counting {
        if others < i64::from(limit) {
            break;
        }
        others -= grants;
        // A later bucket's grants count as made now: the wait is never more than the span.
        fits_at = (bucket.min(now_bucket) + SPAN_BUCKETS + 1) * RATE_BUCKET_MS;
    }
    Some(fits_at)
}

/// `Retry-After` for a request at `now_ms` refused until `fits_at_ms`: whole seconds rounded up,
/// at least 1 (a `Retry-After: 0` would invite a retry refused within the same second).
pub fn rate_retry_after_secs(fits_at_ms: i64, now_ms: i64) -> u64 {
    u64::try_from(fits_at_ms - now_ms)
        .unwrap_or(0)
        .div_ceil(1000)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Grants in every 60 s span of `times` (sorted epoch ms), by brute force.
    fn most_in_any_span(times: &[i64]) -> usize {
        times
            .iter()
            .map(|start| {
                times
                    .iter()
                    .filter(|t| **t >= *start && **t < start + RATE_SPAN_MS)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    /// Requests at `times`, each added to its bucket and judged: whether each was granted.
    fn run(times: &[i64], limit: u32) -> Vec<bool> {
        let mut buckets: std::collections::BTreeMap<i64, i64> = Default::default();
        let mut granted = Vec::new();
        for now in times {
            *buckets.entry(rate_bucket(*now)).or_default() += 1;
            match rate_verdict(buckets.iter().map(|(b, g)| (*b, *g)), *now, limit) {
                None => granted.push(true),
                Some(_) => {
                    *buckets.entry(rate_bucket(*now)).or_default() -= 1;
                    granted.push(false);
                }
            }
        }
        granted
    }

    /// The `Retry-After` of a request at `now_ms`.
    fn wait(counts: &[(i64, i64)], now_ms: i64, limit: u32) -> Option<u64> {
        rate_verdict(counts.iter().copied(), now_ms, limit)
            .map(|fits_at| rate_retry_after_secs(fits_at, now_ms))
    }

    #[test]
    fn within_the_limit_everything_is_granted() {
        assert_eq!(rate_verdict([(0, 3)], 0, 3), None);
        // Bucket [0 s, 2 s) counts until 62 s.
        assert_eq!(rate_verdict([(0, 4)], 0, 3), Some(62_000));
        assert_eq!(rate_retry_after_secs(62_000, 61_999), 1);
        assert_eq!(rate_retry_after_secs(62_000, 62_000), 1, "never 0");
    }

    #[test]
    fn a_refusal_waits_until_enough_old_buckets_leave_the_span() {
        // Two grants at 0-2 s, one at 10 s; a third request at 20 s under a limit of 3, then a
        // fourth: it fits once bucket 0 leaves, at (0 + 31) × 2 s = 62 s.
        let counts = [(0, 2), (5, 1), (10, 1)];
        assert_eq!(wait(&counts, 20_000, 3), Some(42));
        // A long-gone bucket does not count; a later one does, as if made now.
        assert_eq!(wait(&[(-100, 50), (10, 1)], 20_000, 1), None);
        assert_eq!(wait(&[(12, 1), (10, 1)], 20_000, 1), Some(62));
        // At 61.999 s bucket 0 still counts (the conservative edge); at 62 s it is out.
        assert_eq!(wait(&[(0, 1), (30, 1)], 61_999, 1), Some(1));
        assert_eq!(wait(&[(0, 1), (31, 1)], 62_000, 1), None);
    }

    #[test]
    fn no_span_of_60_seconds_ever_holds_more_than_the_limit() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for limit in [1, 5, 20] {
            let mut at = 0i64;
            let mut times = Vec::new();
            for _ in 0..2_000 {
                // Bursts and gaps around the span's edge.
                at += match rng.random_range(0..10) {
                    0 => rng.random_range(55_000..65_000),
                    1..=3 => rng.random_range(0..3_000),
                    _ => rng.random_range(0..50),
                };
                times.push(at);
            }
            let granted = run(&times, limit);
            let granted_times: Vec<i64> = times
                .iter()
                .zip(&granted)
                .filter(|(_, g)| **g)
                .map(|(t, _)| *t)
                .collect();
            assert!(most_in_any_span(&granted_times) <= limit as usize);
            // Nothing refused while the 62 s before it held fewer grants than the limit.
            for (i, now) in times.iter().enumerate() {
                let recent = (0..i)
                    .filter(|j| granted[*j] && times[*j] > now - RATE_SPAN_MS - RATE_BUCKET_MS)
                    .count();
                if recent < limit as usize {
                    assert!(granted[i], "refused at {now} with {recent} recent");
                }
            }
        }
    }
}
