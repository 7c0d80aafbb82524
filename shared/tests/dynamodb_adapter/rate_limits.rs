//! The sliding rate log against Dynoxide: exact refusals and waits with an explicit `now`, no
//! double burst at a minute boundary, a long random schedule checked against a brute-force
//! sliding count, limit changes, and races of many instances on one subject.

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
async fn a_full_log_refuses_with_the_exact_wait_until_its_oldest_grant_is_60_seconds_old()
-> anyhow::Result<()> {
    let stack = start().await?;
    // An item of the per-minute design left behind by a deploy: a different key, never read.
    stack
        .client
        .put_item()
        .table_name(&stack.tables.rate_limits)
        .item("pk", AttributeValue::S("alice#29453760".into()))
        .item("request_count", AttributeValue::N("99".into()))
        .send()
        .await?;

    assert_eq!(
        allowed(&burst(&stack.store, "alice", at(0), 5, 5).await?),
        5
    );
    assert_eq!(stack.store.try_count("alice", at(1), 5).await?, limited(59));
    assert_eq!(
        stack.store.try_count("alice", at_ms(59_900), 5).await?,
        limited(1),
        "0.1 s rounds up to 1"
    );
    assert_eq!(
        stack.store.try_count("alice", at(60), 5).await?,
        RateDecision::Allowed,
        "a grant exactly 60 s old no longer counts"
    );
    assert_eq!(
        stack.store.try_count("bob", at(1), 5).await?,
        RateDecision::Allowed,
        "subjects are counted apart"
    );
    assert_eq!(stack.store.try_count("carol", at(0), 0).await?, limited(60));
    Ok(())
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
    assert!(second.iter().all(|d| *d == limited(58)), "{second:?}");
    assert_eq!(
        stack
            .store
            .try_count("alice", at_ms(118_999), limit)
            .await?,
        limited(1)
    );
    assert_eq!(
        allowed(&burst(&stack.store, "alice", at(119), limit, 11).await?),
        10,
        "the whole limit again once the first burst is 60 s old, and no more"
    );
    Ok(())
}

/// The allowed requests of a schedule by brute force: each request is allowed iff fewer than
/// `limit` allowed requests lie in the 60 s before it; a refusal waits until enough age out.
fn sliding_reference(times: &[i64], limit: usize) -> Vec<RateDecision> {
    let mut granted: Vec<i64> = Vec::new();
    times
        .iter()
        .map(|&now| {
            let recent: Vec<i64> = granted
                .iter()
                .copied()
                .filter(|t| *t > now - 60_000)
                .collect();
            if recent.len() < limit {
                granted.push(now);
                RateDecision::Allowed
            } else {
                RateDecision::limited_until(recent[recent.len() - limit], now)
            }
        })
        .collect()
}

#[tokio::test]
async fn a_long_random_schedule_matches_a_brute_force_sliding_count() -> anyhow::Result<()> {
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
    let expected = sliding_reference(&times, limit);
    let mut granted = Vec::new();
    for (i, &t) in times.iter().enumerate() {
        let decision = stack
            .store
            .try_count("alice", at_ms(t), limit as u32)
            .await?;
        assert_eq!(decision, expected[i], "request {i} at {t} ms");
        if decision == RateDecision::Allowed {
            granted.push(t);
        }
    }
    // The invariant itself, independent of the reference: no 60 s span holds more than the
    // limit, and spans that reached it exist (the schedule did push against it).
    let mut fullest = 0;
    for (i, &t) in granted.iter().enumerate() {
        let in_span = granted[i..].iter().take_while(|g| **g < t + 60_000).count();
        fullest = fullest.max(in_span);
    }
    println!(
        "random schedule: {} requests over {} min, {} allowed, fullest 60 s span {fullest} (limit {limit})",
        times.len(),
        now / 60_000,
        granted.len()
    );
    assert_eq!(fullest, limit);
    Ok(())
}

#[tokio::test]
async fn a_changed_limit_rebuilds_the_log_from_the_grants_in_the_span() -> anyhow::Result<()> {
    let stack = start().await?;
    for (i, second) in [0, 2, 4, 6, 8].into_iter().enumerate() {
        assert_eq!(
            stack.store.try_count("alice", at(second), 5).await?,
            RateDecision::Allowed,
            "grant {i}"
        );
    }
    // Lowered to 3: the newest three (4, 6, 8 s) count; the third newest leaves at 64 s.
    assert_eq!(
        stack.store.try_count("alice", at(10), 3).await?,
        limited(54)
    );
    assert_eq!(stack.store.try_count("alice", at(63), 3).await?, limited(1));
    assert_eq!(
        stack.store.try_count("alice", at(64), 3).await?,
        RateDecision::Allowed
    );
    // Raised to 6 at 65 s: 6, 8 and 64 s are in the span, so three more, then refused.
    let raised = burst(&stack.store, "alice", at(65), 6, 4).await?;
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
async fn a_log_removed_by_ttl_starts_over_despite_a_warm_hint() -> anyhow::Result<()> {
    let stack = start().await?;
    assert_eq!(
        allowed(&burst(&stack.store, "alice", at(0), 3, 4).await?),
        3
    );
    let item = stack
        .client
        .get_item()
        .table_name(&stack.tables.rate_limits)
        .key("pk", AttributeValue::S("alice#log".into()))
        .consistent_read(true)
        .send()
        .await?
        .item
        .context("the log item")?;
    assert_eq!(
        item.get("expires_at"),
        Some(&AttributeValue::N((at(0).timestamp() + 180).to_string())),
        "TTL: the span plus two minutes after the newest grant"
    );
    stack
        .client
        .delete_item()
        .table_name(&stack.tables.rate_limits)
        .key("pk", AttributeValue::S("alice#log".into()))
        .send()
        .await?;
    assert_eq!(
        allowed(&burst(&stack.store, "alice", at(1), 3, 4).await?),
        3,
        "the hinted slot fails its condition on the missing item; the item is created anew"
    );
    Ok(())
}

/// The size DynamoDB bills for an item: names plus values, numbers at one byte per two
/// significant digits plus one, a list at 3 bytes plus one per element.
fn billed_size(item: &HashMap<String, AttributeValue>) -> usize {
    fn value(v: &AttributeValue) -> usize {
        match v {
            AttributeValue::S(s) => s.len(),
            AttributeValue::N(n) => n.trim_start_matches('-').len().div_ceil(2) + 1,
            AttributeValue::L(items) => 3 + items.iter().map(|i| 1 + value(i)).sum::<usize>(),
            _ => unreachable!("the rate log holds strings, numbers and a list"),
        }
    }
    item.iter().map(|(k, v)| k.len() + value(v)).sum()
}

#[tokio::test]
async fn a_full_log_at_the_default_limit_is_about_a_kilobyte() -> anyhow::Result<()> {
    let stack = start().await?;
    for i in 0..120 {
        stack
            .store
            .try_count("user:alice", at_ms(1_000 + i * 450), 120)
            .await?;
    }
    let item = stack
        .client
        .get_item()
        .table_name(&stack.tables.rate_limits)
        .key("pk", AttributeValue::S("user:alice#log".into()))
        .send()
        .await?
        .item
        .context("the log item")?;
    let size = billed_size(&item);
    println!(
        "a full log at limit 120: {size} bytes, {} WCU a write",
        size.div_ceil(1024)
    );
    assert!((1_024..2_048).contains(&size), "{size} bytes");
    Ok(())
}

/// `tasks` concurrent clients, each making `each` requests for one subject at `now`, spread
/// over `instances` (Lambda instances: one store, one hint cache each).
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
async fn fifty_concurrent_clients_on_ten_instances_get_exactly_the_limit_cold_and_warm()
-> anyhow::Result<()> {
    let stack = start().await?;
    let instances: Vec<DynamoStore> = (0..10)
        .map(|_| DynamoStore::new(stack.client.clone(), stack.tables.clone()))
        .collect();

    let cold = race(&instances, at(0), 20, 50, 5).await?;
    println!("race, cold caches: {:?}", tally(&cold));
    assert_eq!(allowed(&cold), 20);
    assert!(
        cold.iter()
            .all(|d| matches!(d, RateDecision::Allowed) || *d == limited(60) || *d == limited(1)),
        "a refusal waits for the first grant to age out, or 1 s when contention ran out"
    );

    // Every instance's hint now names a slot of a full ring; 60 s later all of it has aged out.
    let warm = race(&instances, at(60), 20, 50, 5).await?;
    println!("race, warm caches: {:?}", tally(&warm));
    assert_eq!(allowed(&warm), 20);
    Ok(())
}
