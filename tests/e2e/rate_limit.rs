//! The sliding rate limit through the real stack: concurrent requests of one user against the
//! log in Dynoxide, answered over HTTP.

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
            (59..=60).contains(&retry_after),
            "Retry-After {retry_after}: the first grant leaves the span within a minute"
        );
        assert_eq!(reply.body["details"]["retry_after_seconds"], retry_after);
    }
    assert_eq!(
        stack
            .send("GET", "/orders", Some(&stack.token("bob")), None)
            .await
            .status,
        StatusCode::OK,
        "other users are not affected"
    );
}
