//! The DynamoDB rate counters' item (`adapters/dynamodb/rate_limits.rs`): refusals taken back out
//! and answered from the item by another instance, an earlier design's item ignored, TTL, the
//! item's size at a limit of 10,000, and races of many instances on one subject: no refusal within
//! the limit however concurrent, exactly the limit granted. What the port promises for one
//! subject over time runs against both stores in `tests/store_contract/rate_limits.rs`.

use std::collections::HashMap;
use std::sync::Arc;

use shared::ports::RateDecision;

use super::*;

#[tokio::test]
async fn refusals_are_taken_back_and_another_instance_reads_the_wait_from_the_item()
-> anyhow::Result<()> {
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
