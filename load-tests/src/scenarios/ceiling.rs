//! Ceiling: the calls one order makes, replayed straight against the same emulators with the same
//! client code and concurrency as the flash sale, without the HTTP gateway, JWT or rate limit:
//! the `PlaceOrder` use case from many tasks until a product is sold out. Its orders/s is what the
//! flash sale could reach at best; its own queue keeps the payment consumer out of it.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use shared::application::{AppError, Placed};
use shared::domain::{OrderRequest, UserId};
use shared::{AwsApp, Config, Endpoint, Function};

use crate::client::sqs_client;
use crate::outcome::ScenarioResult;
use crate::stats::{Latencies, UnexpectedErrors};

use super::{Sizes, Target};

/// What one task saw.
#[derive(Default)]
struct Task {
    created: u64,
    last_created: Option<Instant>,
    latencies: Latencies,
    lock_conflicts: u64,
    errors: UnexpectedErrors,
    sold_out_at: Option<Instant>,
}

/// Sells a dedicated product out through `PlaceOrder` and reports orders/s and latency.
pub async fn run(target: &Target, sizes: &Sizes) -> anyhow::Result<ScenarioResult> {
    let mut result = ScenarioResult::report("ceiling", &target.label);
    let Some(endpoint) = target.aws_endpoint.clone() else {
        result.put("status", "unavailable: no --aws-endpoint");
        return Ok(result);
    };
    let run_id = target.api.run_id().to_owned();
    let sqs = sqs_client(&endpoint).await;
    let queue_url = sqs
        .create_queue()
        .queue_name(format!("ceiling-{run_id}"))
        .send()
        .await
        .context("creating the ceiling's own queue")?
        .queue_url()
        .context("CreateQueue answered no URL")?
        .to_owned();

    let mut config = Config {
        aws_endpoint_url: Some(endpoint),
        aws_region: "us-east-1".to_owned(),
        order_queue_url: Some(queue_url.clone()),
        ws_management_endpoint: None,
        ..Config::default()
    };
    config.auth.jwt_secret = Some(target.jwt_secret.clone());
    config.locks.enabled = target.stock_locks;
    let footprint = Function::Http(Endpoint::CreateOrder).footprint();
    let app = AwsApp::connect(&config, &footprint)
        .await
        .context("connecting the use case to the emulators")?;

    let stock = sizes.ceiling_stock;
    let product = target.api.create_product("ceiling", stock).await?;
    let start = Instant::now() + Duration::from_millis(100);
    let tasks: Vec<_> = (0..sizes.ceiling_tasks)
        .map(|n| {
            let app = std::sync::Arc::clone(&app);
            let product = product.clone();
            let user =
                UserId::parse(&format!("load-{run_id}-ceil-{n}")).expect("a printable user id");
            tokio::spawn(async move {
                tokio::time::sleep_until(start.into()).await;
                let place = app.place_order();
                let mut seen = Task::default();
                for attempt in 0.. {
                    let body = json!({
                        "idempotency_key": format!("ceil-{n}-{attempt}"),
                        "items": [{"product_id": product, "quantity": 1}],
                    });
                    let request =
                        OrderRequest::parse(&body, None).expect("a well-formed order request");
                    let sent = Instant::now();
                    let outcome = place.run(&user, &request, "load-test-ceiling").await;
                    let now = Instant::now();
                    match outcome {
                        Ok(Placed::Created(_)) => {
                            seen.errors.end_streak();
                            seen.created += 1;
                            seen.last_created = Some(now);
                            seen.latencies.record(now - sent);
                        }
                        Ok(Placed::Replayed(_)) => {}
                        Err(AppError::InsufficientStock { .. }) => {
                            seen.sold_out_at = Some(now);
                            break;
                        }
                        Err(AppError::LockConflict { .. }) => seen.lock_conflicts += 1,
                        Err(error) => {
                            if seen.errors.record(|| format!("{error:#}")) {
                                break;
                            }
                        }
                    }
                }
                seen
            })
        })
        .collect();
    let mut latencies = Latencies::new();
    let mut created = 0;
    let mut conflicts = 0;
    let mut other = 0;
    let mut samples = Vec::new();
    let mut sold_out: Option<Instant> = None;
    let mut last_created: Option<Instant> = None;
    for task in tasks {
        let seen = task.await?;
        latencies.merge(&seen.latencies);
        created += seen.created;
        conflicts += seen.lock_conflicts;
        other += seen.errors.count;
        samples.extend(seen.errors.samples);
        sold_out = match (sold_out, seen.sold_out_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        last_created = last_created.max(seen.last_created);
    }
    let end = sold_out.or(last_created).unwrap_or_else(Instant::now);
    let elapsed = end
        .saturating_duration_since(start)
        .max(Duration::from_millis(1));
    // The queue's messages would otherwise wait there forever; the orders stay PENDING.
    let _ = sqs.delete_queue().queue_url(&queue_url).send().await;

    result.put("stock", stock);
    result.put("tasks", sizes.ceiling_tasks as u64);
    result.put("created", created);
    result.put("sale_s", elapsed.as_secs_f64());
    result.put("orders_per_s", created as f64 / elapsed.as_secs_f64());
    result.put("p50_ms", latencies.quantile_ms(0.50));
    result.put("p99_ms", latencies.quantile_ms(0.99));
    result.put("lock_conflicts", conflicts);
    result.put("other_errors", other);
    if !samples.is_empty() {
        samples.truncate(3);
        result.put("error_samples", samples.join("; "));
    }
    result.check(
        created == stock,
        format!("{created} orders created for a stock of {stock}"),
    );
    Ok(result)
}
