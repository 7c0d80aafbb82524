//! The sliding rate limit through the real stack: concurrent requests of one user against the
//! counters in Dynoxide, answered over HTTP: exactly the limit, no refusal within it however
//! concurrent, no second burst at the edge of the span.

use std::time::{Duration, Instant};

use futures::future::join_all;
use reqwest::StatusCode;

use crate::support::spawn_with;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_requests_of_one_user_get_exactly_the_limit_through() {
    let stack = spawn_with(true, |o| o.config.rate_limit_per_minute = 5).await;
    let token = stack.token("alice");

    let replies = join_all((0..20).map(|_| stack.send("GET", "/orders", Some(&token), None))).await;

    let limited: Vec<_> = replies
        .iter()
        .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    let mut retry_afters: Vec<u64> = limited
        .iter()
        .map(|r| r.headers["retry-after"].to_str().unwrap().parse().unwrap())
        .collect();
    retry_afters.sort_unstable();
    retry_afters.dedup();
    println!(
        "e2e: {} of 20 served, {} answered 429 with Retry-After {retry_afters:?}",
        replies.len() - limited.len(),
        limited.len()
    );
    assert!(
        replies
            .iter()
            .all(|r| r.status == StatusCode::OK || r.status == StatusCode::TOO_MANY_REQUESTS),
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(replies.len() - limited.len(), 5);
    for reply in &limited {
        assert_eq!(reply.code(), "RATE_LIMITED");
        let retry_after: u64 = reply.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            (59..=62).contains(&retry_after),
            "Retry-After {retry_after}: the first grant's 2-second bucket leaves the span within 62 s"
        );
        assert_eq!(reply.body["details"]["retry_after_seconds"], retry_after);
    }
    assert_eq!(
        stack.list_orders("bob").await.status,
        StatusCode::OK,
        "other users are not affected"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_requests_under_the_limit_are_all_served() {
    let stack = spawn_with(false, |o| o.config.rate_limit_per_minute = 200).await;
    let token = stack.token("alice");

    let replies =
        join_all((0..100).map(|_| stack.send("GET", "/orders", Some(&token), None))).await;

    let statuses: Vec<StatusCode> = replies.iter().map(|r| r.status).collect();
    let served = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    println!("e2e: 100 concurrent requests under a limit of 200: {served} served");
    assert_eq!(served, 100, "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_orders_with_one_key_replay_under_the_default_limit() {
    let stack = spawn_with(false, |o| {
        o.config.rate_limit_per_minute = shared::Config::default().rate_limit_per_minute;
    })
    .await;
    let product = stack.product("10.00", 100).await;

    let replies = join_all((0..50).map(|_| {
        let (stack, product) = (&stack, &product);
        async move {
            stack
                .order("alice", "retry-storm", &[(product.as_str(), 1)])
                .await
        }
    }))
    .await;

    let count = |status: StatusCode| replies.iter().filter(|r| r.status == status).count();
    println!(
        "e2e: 50 same-key orders at the default limit: 201={} 200={} 429={}",
        count(StatusCode::CREATED),
        count(StatusCode::OK),
        count(StatusCode::TOO_MANY_REQUESTS)
    );
    assert_eq!(count(StatusCode::CREATED), 1);
    assert_eq!(
        count(StatusCode::OK),
        49,
        "every duplicate replays, none is refused"
    );
    assert_eq!(stack.stock(&product).await, 99);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_edge_of_the_span_gives_no_second_burst() {
    let limit = 10;
    let stack = spawn_with(false, |o| o.config.rate_limit_per_minute = limit).await;
    let token = stack.token("alice");
    // A burst: when it began, when its last answer came, how many were served.
    let burst = |count: usize| {
        let (stack, token) = (&stack, &token);
        async move {
            let began = Instant::now();
            let replies =
                join_all((0..count).map(|_| stack.send("GET", "/orders", Some(token), None))).await;
            let served = replies
                .iter()
                .filter(|r| r.status == StatusCode::OK)
                .count();
            (began, Instant::now(), served)
        }
    };
    let started = Instant::now();
    let mut bursts = vec![burst(10).await];
    // Before the first burst is 60 s old: nothing. Once its 2-second bucket has surely left the
    // span (at most 62 s after it): the whole limit again, and no more.
    for (offset, count) in [(58_000, 10), (62_500, 12)] {
        tokio::time::sleep_until((started + Duration::from_millis(offset)).into()).await;
        bursts.push(burst(count).await);
    }
    let served: Vec<usize> = bursts.iter().map(|(_, _, n)| *n).collect();
    println!("e2e: bursts at 0, 58, 62.5 s under a limit of {limit}: served {served:?}");
    assert_eq!(served, [10, 0, 10]);
    // No 60 s span held more than the limit: two bursts whose grants could lie within 60 s of
    // each other never add up past it.
    for (i, (first_began, _, first)) in bursts.iter().enumerate() {
        for (_, last_ended, then) in &bursts[i + 1..] {
            if last_ended.duration_since(*first_began) < Duration::from_secs(60) {
                assert!(first + then <= limit as usize);
            }
        }
    }
}
