//! The rate counters against Dynoxide (`domain/rate_window.rs`, `adapters/dynamodb/rate_limits.rs`):
//! refusals and waits with an explicit `now`, no double burst at a minute boundary, a long random
//! schedule checked against a brute-force sliding count, limit changes, the item's size at a limit
//! of 10,000, and races of many instances on one subject: no refusal within the limit however
//! concurrent, exactly the limit granted.

use std::collections::HashMap;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shared::ports::RateDecision;

use super::*;

/// `at(0)` plus `ms` milliseconds.
fn at_ms(ms: i64) -> DateTime<Utc> {
    at(0) + chrono::Duration::milliseconds(ms)
}

fn limited(retry_after_secs: u64) -> RateDecision {
    RateDecision::Limited { retry_after_secs }
}

/// Decisions for `count` requests of `subject` at `now`.
async fn burst(
    store: &DynamoStore,
    subject: &str,
    now: DateTime<Utc>,
    limit: u32,
    count: usize,
) -> anyhow::Result<Vec<RateDecision>> {
    let mut decisions = Vec::with_capacity(count);
    for _ in 0..count {
        decisions.push(store.try_count(subject, now, limit).await?);
    }
    Ok(decisions)
}

fn allowed(decisions: &[RateDecision]) -> usize {
    decisions
        .iter()
        .filter(|d| **d == RateDecision::Allowed)
        .count()
}

#[tokio::test]
async fn a_full_span_refuses_until_its_oldest_bucket_has_left_it() -> anyhow::Result<()> {
    let stack = start().await?;
    // An item of an earlier design left behind by a deploy: another key, never read.
    stack
        .client
        .put_item()
        .table_name(&stack.tables.rate_limits)
        .item("pk", AttributeValue::S("alice#log".into()))
        .item("n", AttributeValue::N("99".into()))
        .send()
        .await?;

    assert_eq!(
        allowed(&burst(&stack.store, "alice", at(0), 5, 5).await?),
        5
    );
    // The grants of 0 s sit in the 2-second bucket [0 s, 2 s), which counts until 62 s.
    assert_eq!(stack.store.try_count("alice", at(1), 5).await?, limited(61));
    let fresh = DynamoStore::new(stack.client.clone(), stack.tables.clone());
    assert_eq!(
        fresh.try_count("alice", at_ms(61_900), 5).await?,
        limited(1),
        "0.1 s rounds up to 1"
    );
    assert_eq!(
        fresh.try_count("alice", at(62), 5).await?,
        RateDecision::Allowed,
        "the bucket has left the span"
    );
    assert_eq!(
        stack.store.try_count("bob", at(1), 5).await?,
        RateDecision::Allowed,
        "subjects are counted apart"
    );
    assert_eq!(stack.store.try_count("carol", at(0), 0).await?, limited(60));
    // Refused requests were taken back out, and the bucket of 0 s left the item with the write
    // of 62 s: its grant is all that is left.
    assert_eq!(counted(&stack, "alice").await?, 1);
    Ok(())
}

/// The grants an item's counters hold, stale buckets included.
async fn counted(stack: &Stack, subject: &str) -> anyhow::Result<i64> {
    let item = counters(stack, subject).await?;
    Ok(item
        .iter()
        .filter(|(name, _)| name.starts_with('c'))
        .map(|(_, v)| v.as_n().map_or(0, |n| n.parse::<i64>().unwrap_or(0)))
        .sum())
}

/// A subject's counters item.
async fn counters(stack: &Stack, subject: &str) -> anyhow::Result<HashMap<String, AttributeValue>> {
    stack
        .client
        .get_item()
        .table_name(&stack.tables.rate_limits)
        .key("pk", AttributeValue::S(format!("{subject}#w")))
        .consistent_read(true)
        .send()
        .await?
        .item
        .context("the counters item")
}

#[tokio::test]
async fn a_minute_boundary_gives_no_second_burst() -> anyhow::Result<()> {
    let stack = start().await?;
    let limit = 10;
    // 59 s and 61 s fall in different epoch minutes: the per-minute counter allowed 2 x limit.
    let first = burst(&stack.store, "alice", at(59), limit, 10).await?;
    let second = burst(&stack.store, "alice", at(61), limit, 10).await?;
    println!(
        "boundary: {} allowed at t=59 s, {} at t=61 s, refusals at 61 s say {:?}",
        allowed(&first),
        allowed(&second),
        second[0]
    );
    assert_eq!(allowed(&first), 10);
    // 59 s is in the bucket [58 s, 60 s), which counts until 120 s.
    assert!(second.iter().all(|d| *d == limited(59)), "{second:?}");
    assert_eq!(
        stack
            .store
            .try_count("alice", at_ms(119_500), limit)
            .await?,
        limited(1)
    );
    assert_eq!(
        allowed(&burst(&stack.store, "alice", at(120), limit, 11).await?),
        10,
        "the whole limit again once the first burst's bucket has left the span, and no more"
    );
    Ok(())
}

#[tokio::test]
async fn a_long_random_schedule_never_exceeds_the_limit_nor_refuses_below_it() -> anyhow::Result<()>
{
    let stack = start().await?;
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
    let mut early = 0;
    for (i, &t) in times.iter().enumerate() {
        let decision = stack
            .store
            .try_count("alice", at_ms(t), limit as u32)
            .await?;
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
                if in_last_minute < limit {
                    early += 1;
                }
            }
        }
    }
    // The invariant itself: no 60 s span holds more than the limit, and spans that reached it
    // exist (the schedule did push against it).
    let mut fullest = 0;
    for (i, &t) in granted.iter().enumerate() {
        let in_span = granted[i..].iter().take_while(|g| **g < t + 60_000).count();
        fullest = fullest.max(in_span);
    }
    println!(
        "random schedule: {} requests over {} min, {} allowed, fullest 60 s span {fullest} \
         (limit {limit}), {early} refused in the last 2 s before an exact log would allow",
        times.len(),
        now / 60_000,
        granted.len()
    );
    assert_eq!(fullest, limit);
    Ok(())
}

#[tokio::test]
async fn a_changed_limit_applies_to_the_grants_in_the_span_at_once() -> anyhow::Result<()> {
    let stack = start().await?;
    for (i, second) in [0, 2, 4, 6, 8].into_iter().enumerate() {
        assert_eq!(
            stack.store.try_count("alice", at(second), 5).await?,
            RateDecision::Allowed,
            "grant {i}"
        );
    }
    // Lowered to 3: five count; two fit once the buckets of 0, 2 and 4 s have left, at 66 s.
    assert_eq!(
        stack.store.try_count("alice", at(10), 3).await?,
        limited(56)
    );
    let fresh = DynamoStore::new(stack.client.clone(), stack.tables.clone());
    assert_eq!(fresh.try_count("alice", at(65), 3).await?, limited(1));
    assert_eq!(
        fresh.try_count("alice", at(66), 3).await?,
        RateDecision::Allowed
    );
    // Raised to 6 at 67 s: 6, 8 and 66 s count, so three more, then refused.
    let raised = burst(&fresh, "alice", at(67), 6, 4).await?;
    assert_eq!(
        raised,
        [
            RateDecision::Allowed,
            RateDecision::Allowed,
            RateDecision::Allowed,
            limited(1)
        ]
    );
    Ok(())
}

#[tokio::test]
async fn counters_removed_by_ttl_start_over() -> anyhow::Result<()> {
    let stack = start().await?;
    assert_eq!(
        allowed(&burst(&stack.store, "alice", at(0), 3, 4).await?),
        3
    );
    let item = counters(&stack, "alice").await?;
    assert_eq!(
        item.get("expires_at"),
        Some(&AttributeValue::N((at(0).timestamp() + 180).to_string())),
        "TTL: the span plus two minutes after the last write"
    );
    stack
        .client
        .delete_item()
        .table_name(&stack.tables.rate_limits)
        .key("pk", AttributeValue::S("alice#w".into()))
        .send()
        .await?;
    let fresh = DynamoStore::new(stack.client.clone(), stack.tables.clone());
    assert_eq!(
        allowed(&burst(&fresh, "alice", at(1), 3, 4).await?),
        3,
        "the item is created anew"
    );
    Ok(())
}

/// The size DynamoDB bills for an item: names plus values, numbers at one byte per two
/// significant digits plus one.
fn billed_size(item: &HashMap<String, AttributeValue>) -> usize {
    fn value(v: &AttributeValue) -> usize {
        match v {
            AttributeValue::S(s) => s.len(),
            AttributeValue::N(n) => n.trim_start_matches('-').len().div_ceil(2) + 1,
            _ => unreachable!("the counters hold strings and numbers"),
        }
    }
    item.iter().map(|(k, v)| k.len() + value(v)).sum()
}

#[tokio::test]
async fn the_item_stays_under_a_kilobyte_at_a_limit_of_ten_thousand() -> anyhow::Result<()> {
    let stack = start().await?;
    let subject = "ip:2001:0db8:85a3:0000:0000:8a2e:0370:7334";
    let mut largest = 0;
    // Several requests in every bucket for three minutes: a full span of counters, some of
    // them in the thousands, and buckets leaving it all along.
    for i in 0..360 {
        stack
            .store
            .try_count(subject, at_ms(1_000 + i * 500), 10_000)
            .await?;
        if i % 40 == 0 {
            // A counter in the thousands: its value's bytes count too.
            stack
                .client
                .update_item()
                .table_name(&stack.tables.rate_limits)
                .key("pk", AttributeValue::S(format!("{subject}#w")))
                .update_expression("ADD #c :n")
                .expression_attribute_names(
                    "#c",
                    format!("c{}", (at(0).timestamp_millis() + 1_000 + i * 500) / 2_000),
                )
                .expression_attribute_values(":n", AttributeValue::N("4000".into()))
                .send()
                .await?;
        }
        largest = largest.max(billed_size(&counters(&stack, subject).await?));
    }
    let item = counters(&stack, subject).await?;
    let buckets = item.keys().filter(|k| k.starts_with('c')).count();
    println!(
        "counters at limit 10,000: largest item {largest} bytes ({} WCU a write), {buckets} buckets at the end",
        largest.div_ceil(1024)
    );
    assert!(largest < 1_024, "{largest} bytes");
    assert!(buckets <= 34, "stale buckets leave the item: {buckets}");
    Ok(())
}

/// `tasks` concurrent clients, each making `each` requests for one subject at `now`, spread
/// over `instances` (Lambda instances: one store, one memory each).
async fn race(
    instances: &[DynamoStore],
    now: DateTime<Utc>,
    limit: u32,
    tasks: usize,
    each: usize,
) -> anyhow::Result<Vec<RateDecision>> {
    let barrier = Arc::new(tokio::sync::Barrier::new(tasks));
    let mut handles = Vec::new();
    for task in 0..tasks {
        let store = instances[task % instances.len()].clone();
        let barrier = barrier.clone();
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut decisions = Vec::new();
            for _ in 0..each {
                decisions.push(store.try_count("user:alice", now, limit).await?);
            }
            Ok::<_, StoreError>(decisions)
        }));
    }
    let mut decisions = Vec::new();
    for handle in handles {
        decisions.extend(handle.await??);
    }
    Ok(decisions)
}

fn tally(decisions: &[RateDecision]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for decision in decisions {
        let key = match decision {
            RateDecision::Allowed => "allowed".to_owned(),
            RateDecision::Limited { retry_after_secs } => {
                format!("429 retry-after {retry_after_secs}")
            }
        };
        *counts.entry(key).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_clients_on_ten_instances_get_exactly_the_limit_and_no_refusal_below_it()
-> anyhow::Result<()> {
    let stack = start().await?;
    let instances: Vec<DynamoStore> = (0..10)
        .map(|_| DynamoStore::new(stack.client.clone(), stack.tables.clone()))
        .collect();

    // 100 at once under a limit of 200: every one served.
    let under = race(&instances, at(0), 200, 100, 1).await?;
    println!("race under the limit: {:?}", tally(&under));
    assert_eq!(allowed(&under), 100);

    // 250 more from 50 clients: exactly the 100 left, the rest refused until 62 s.
    let over = race(&instances, at(1), 200, 50, 5).await?;
    println!("race over the limit: {:?}", tally(&over));
    assert_eq!(allowed(&over), 100);
    assert!(
        over.iter()
            .all(|d| matches!(d, RateDecision::Allowed) || *d == limited(61)),
        "a refusal waits for the first bucket to leave the span"
    );

    // Once it has, the whole limit again, on instances that remember the refusal until then.
    let later = race(&instances, at(62), 200, 50, 5).await?;
    println!("race a span later: {:?}", tally(&later));
    assert_eq!(allowed(&later), 200);
    Ok(())
}
