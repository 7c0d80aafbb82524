//! Rate limits with an explicit `now` (`domain/rate_window.rs`): exactly the limit per 60-second
//! span counted in 2-second buckets, the wait a refusal names, no second burst at a minute
//! boundary, limit changes, and a long random schedule checked against a brute-force count.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shared::ports::{RateCounter, RateDecision};

use super::*;

contract! {
    a_full_span_refuses_until_its_oldest_bucket_has_left_it,
    a_minute_boundary_gives_no_second_burst,
    a_changed_limit_applies_to_the_grants_in_the_span_at_once,
    a_long_random_schedule_never_exceeds_the_limit_nor_refuses_below_it,
}

async fn a_full_span_refuses_until_its_oldest_bucket_has_left_it<S: RateCounter>(
    store: &S,
) -> anyhow::Result<()> {
    assert_eq!(allowed(&burst(store, "alice", at(0), 5, 5).await?), 5);
    // The grants of 0 s sit in the 2-second bucket [0 s, 2 s), which counts until 62 s.
    assert_eq!(store.try_count("alice", at(1), 5).await?, limited(61));
    assert_eq!(
        store.try_count("alice", at_ms(61_900), 5).await?,
        limited(1),
        "0.1 s rounds up to 1"
    );
    assert_eq!(
        store.try_count("bob", at(1), 5).await?,
        RateDecision::Allowed,
        "subjects are counted apart"
    );
    assert_eq!(
        allowed(&burst(store, "alice", at(62), 5, 6).await?),
        5,
        "the bucket has left the span: the whole limit again, and no more"
    );
    assert_eq!(store.try_count("carol", at(0), 0).await?, limited(60));
    Ok(())
}

async fn a_minute_boundary_gives_no_second_burst<S: RateCounter>(store: &S) -> anyhow::Result<()> {
    let limit = 10;
    // 59 s and 61 s fall in different epoch minutes: a per-minute counter would allow 2 x limit.
    let first = burst(store, "alice", at(59), limit, 10).await?;
    let second = burst(store, "alice", at(61), limit, 10).await?;

    assert_eq!(allowed(&first), 10);
    // 59 s is in the bucket [58 s, 60 s), which counts until 120 s.
    assert!(second.iter().all(|d| *d == limited(59)), "{second:?}");
    assert_eq!(
        store.try_count("alice", at_ms(119_500), limit).await?,
        limited(1)
    );
    assert_eq!(
        allowed(&burst(store, "alice", at(120), limit, 11).await?),
        10,
        "the whole limit again once the first burst's bucket has left the span, and no more"
    );
    Ok(())
}

async fn a_changed_limit_applies_to_the_grants_in_the_span_at_once<S: RateCounter>(
    store: &S,
) -> anyhow::Result<()> {
    for (i, second) in [0, 2, 4, 6, 8].into_iter().enumerate() {
        assert_eq!(
            store.try_count("alice", at(second), 5).await?,
            RateDecision::Allowed,
            "grant {i}"
        );
    }
    // Lowered to 3: five count; two fit once the buckets of 0, 2 and 4 s have left, at 66 s.
    assert_eq!(store.try_count("alice", at(10), 3).await?, limited(56));
    assert_eq!(store.try_count("alice", at(65), 3).await?, limited(1));
    assert_eq!(
        store.try_count("alice", at(66), 3).await?,
        RateDecision::Allowed
    );
    // Raised to 6 at 67 s: 6, 8 and 66 s count, so three more, then refused.
    assert_eq!(
        burst(store, "alice", at(67), 6, 4).await?,
        [
            RateDecision::Allowed,
            RateDecision::Allowed,
            RateDecision::Allowed,
            limited(1)
        ]
    );
    Ok(())
}

async fn a_long_random_schedule_never_exceeds_the_limit_nor_refuses_below_it<S: RateCounter>(
    store: &S,
) -> anyhow::Result<()> {
    let limit = 7;
    let mut rng = StdRng::seed_from_u64(11);
    let mut now = 0_i64;
    let mut times = Vec::new();
    for _ in 0..1_500 {
        // Bursts (same millisecond), steady trickles and long pauses, across many minutes.
        now += match rng.random_range(0..10) {
            0..=3 => 0,
            4..=7 => rng.random_range(1..6_000),
            8 => rng.random_range(6_000..40_000),
            _ => rng.random_range(40_000..130_000),
        };
        times.push(now);
    }
    let mut granted: Vec<i64> = Vec::new();
    for (i, &t) in times.iter().enumerate() {
        let decision = store.try_count("alice", at_ms(t), limit as u32).await?;
        let in_last_minute = granted.iter().filter(|g| **g > t - 60_000).count();
        let in_last_62_s = granted.iter().filter(|g| **g > t - 62_000).count();
        match decision {
            RateDecision::Allowed => {
                assert!(
                    in_last_minute < limit,
                    "request {i} at {t} ms: over the limit"
                );
                granted.push(t);
            }
            RateDecision::Limited { retry_after_secs } => {
                // Refused only when the span and at most one bucket before it are full.
                assert!(
                    in_last_62_s >= limit,
                    "request {i} at {t} ms refused with {in_last_62_s} grants in 62 s"
                );
                assert!((1..=62).contains(&retry_after_secs));
            }
        }
    }
    // No 60 s span holds more than the limit, and spans that reached it exist (the schedule
    // did push against it).
    let mut fullest = 0;
    for (i, &t) in granted.iter().enumerate() {
        let in_span = granted[i..].iter().take_while(|g| **g < t + 60_000).count();
        fullest = fullest.max(in_span);
    }
    assert_eq!(fullest, limit);
    Ok(())
}
