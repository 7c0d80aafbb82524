//! Cost: what one order costs in AWS requests and capacity, read from the local stack's meter
//! (`GET {aws-endpoint}/_local/meter`) around a run of orders by [`BUYERS`] buyers with their
//! WebSockets open (each buyer's orders one after another, the buyers at once), each order
//! settled (paid or failed) before the meter is read, then priced per million orders with the
//! us-east-1 prices of `docs/scaling.md`. `make bench` runs it on a stack with the shipped
//! defaults (rate limit on, 80 % payment success).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

use crate::client::TerminalEvents;
use crate::outcome::{ScenarioResult, round};
use crate::stats::Latencies;

use super::{Sizes, Target};

/// DynamoDB on-demand, per million write request units.
const DDB_WRITE_PER_MILLION: f64 = 0.625;
/// DynamoDB on-demand, per million read request units.
const DDB_READ_PER_MILLION: f64 = 0.125;
/// Lambda arm64, per GB-second.
const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;
/// Lambda, per million requests.
const LAMBDA_PER_MILLION: f64 = 0.20;
/// SQS, per million requests (64 KB each).
const SQS_PER_MILLION: f64 = 0.40;
/// API Gateway HTTP API, per million requests.
const HTTP_API_PER_MILLION: f64 = 1.00;
/// API Gateway WebSocket, per million messages.
const WEBSOCKET_PER_MILLION: f64 = 1.00;
/// The functions' memory (template.yaml), in GB.
const LAMBDA_GB: f64 = 0.125;
/// The simulated provider waits 50-200 ms per charge: its mean, per order the consumer settles.
const PAYMENT_MEAN_S: f64 = 0.125;
/// Buyers placing the orders, each over its own WebSocket; each places its share of the orders one
/// after another (10 of 200: under the default 120 a minute).
const BUYERS: u32 = 20;
/// Events pushed per settled order (OrderProcessing, then OrderPaid or OrderFailed).
const PUSHES_PER_ORDER: f64 = 2.0;

/// Places the orders, waits for their payment, reads the meter and prices one order.
pub async fn run(target: &Target, sizes: &Sizes) -> anyhow::Result<ScenarioResult> {
    let mut result = ScenarioResult::report("cost", &target.label);
    let Some(endpoint) = target.aws_endpoint.clone() else {
        result.put("status", "unavailable: no --aws-endpoint");
        return Ok(result);
    };
    target.settle_queue().await;
    let http = reqwest::Client::new();
    let meter_url = format!("{}/_local/meter", endpoint.trim_end_matches('/'));
    let reset = http
        .get(format!("{meter_url}?reset=true"))
        .send()
        .await
        .context("reading the meter")?;
    if !reset.status().is_success() {
        result.put(
            "status",
            format!(
                "unavailable: the meter answered {}",
                reset.status().as_u16()
            ),
        );
        return Ok(result);
    }

    let orders = sizes.cost_orders;
    let product = target
        .api
        .create_product("cost", u64::from(orders) * 2)
        .await?;
    let events: TerminalEvents = Arc::default();
    let mut buyers = Vec::new();
    let mut watchers = Vec::new();
    for b in 0..BUYERS {
        let user = target.api.user(&format!("cost-{b}"));
        watchers.push(
            target
                .api
                .watch_terminal_events(&target.ws_url, &user.token, Arc::clone(&events))
                .await?,
        );
        buyers.push(user);
    }
    // The meter counts from here: the product and the connections are set-up, not the orders. Its
    // capacity metering parses every DynamoDB body, so it is on for this scenario only.
    http.get(format!("{meter_url}?reset=true&capacity=on"))
        .send()
        .await?;

    let placed = futures::future::join_all(buyers.iter().enumerate().map(|(b, user)| {
        let product = &product;
        async move {
            let mut answers = Vec::new();
            for n in (0..orders).filter(|n| n % BUYERS == b as u32) {
                let answer = target
                    .api
                    .place_order(user, &format!("cost-{n}"), product, 1)
                    .await;
                answers.push((n, answer));
            }
            answers
        }
    }))
    .await;
    let mut latencies = Latencies::new();
    let mut ids = Vec::new();
    for (n, answer) in placed.into_iter().flatten() {
        result.check(
            answer.status == 201,
            format!("order {n} answered {}", answer.summary()),
        );
        latencies.record(answer.latency);
        ids.push(answer.data_str("id").to_owned());
    }
    let deadline = Instant::now() + sizes.settle_wait;
    loop {
        let settled = {
            let events = events.lock().expect("the events map is never poisoned");
            ids.iter().filter(|id| events.contains_key(*id)).count()
        };
        if settled == ids.len() || Instant::now() >= deadline {
            result.check(
                settled == ids.len(),
                format!(
                    "{} of {} orders never settled",
                    ids.len() - settled,
                    ids.len()
                ),
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the consumer's batch deletes land before reading.
    if let Some(probe) = target.queue_probe().await {
        probe.wait_empty(Duration::from_secs(10)).await;
    }
    for watcher in watchers {
        watcher.abort();
    }
    let meter: Value = http
        .get(format!("{meter_url}?capacity=off"))
        .send()
        .await?
        .json()
        .await
        .context("the meter's JSON")?;

    price(&mut result, &meter, f64::from(orders), &latencies);
    Ok(result)
}

/// Puts the per-order requests and units and the cost per million orders into `result`.
fn price(result: &mut ScenarioResult, meter: &Value, orders: f64, latencies: &Latencies) {
    let requests = meter["requests"].as_object().cloned().unwrap_or_default();
    let per_order = |n: &Value| n.as_f64().unwrap_or(0.0) / orders;
    let mut dynamodb_requests = 0.0;
    let mut sqs_requests = 0.0;
    let mut by_operation = serde_json::Map::new();
    for (operation, count) in &requests {
        let n = per_order(count);
        by_operation.insert(operation.clone(), round(n));
        if operation.starts_with("DynamoDB.") {
            dynamodb_requests += n;
        } else if operation.starts_with("SQS.") {
            sqs_requests += n;
        }
    }
    let mut reads = 0.0;
    let mut writes = 0.0;
    let mut by_table = serde_json::Map::new();
    for (table, units) in meter["capacity"].as_object().into_iter().flatten() {
        let read = per_order(&units["read"]);
        let write = per_order(&units["write"]);
        reads += read;
        writes += write;
        by_table.insert(
            table.clone(),
            json!({"read": round(read), "write": round(write)}),
        );
    }
    let batches = ["SQS.DeleteMessageBatch", "SQS.DeleteMessage"]
        .iter()
        .filter_map(|op| requests.get(*op))
        .map(per_order)
        .sum::<f64>();
    // One consumer invocation per batch that was deleted; without deletes, one per order.
    let consumer_invocations = if batches > 0.0 { batches } else { 1.0 };
    let create_order_s = latencies.quantile_ms(0.5) / 1000.0;
    let consumer_s = PAYMENT_MEAN_S;

    let dynamodb = (writes * DDB_WRITE_PER_MILLION) + (reads * DDB_READ_PER_MILLION);
    let lambda_requests = (1.0 + consumer_invocations) * LAMBDA_PER_MILLION;
    let lambda_duration = (create_order_s + consumer_s) * LAMBDA_GB * LAMBDA_GB_SECOND * 1e6;
    let sqs = sqs_requests * SQS_PER_MILLION;
    let http_api = HTTP_API_PER_MILLION;
    let websocket = PUSHES_PER_ORDER * WEBSOCKET_PER_MILLION;
    let total = dynamodb + lambda_requests + lambda_duration + sqs + http_api + websocket;

    result.put("orders", orders);
    result.put("create_order_p50_ms", latencies.quantile_ms(0.5));
    result.put("dynamodb_requests_per_order", dynamodb_requests);
    result.put("read_units_per_order", reads);
    result.put("write_units_per_order", writes);
    result.put("sqs_requests_per_order", sqs_requests);
    result.put("consumer_invocations_per_order", consumer_invocations);
    result.put(
        "requests_per_order_by_operation",
        Value::Object(by_operation),
    );
    result.put("units_per_order_by_table", Value::Object(by_table));
    result.put("usd_per_million_dynamodb", dynamodb);
    result.put("usd_per_million_lambda_requests", lambda_requests);
    result.put("usd_per_million_lambda_duration", lambda_duration);
    result.put("usd_per_million_sqs", sqs);
    result.put("usd_per_million_http_api", http_api);
    result.put("usd_per_million_websocket", websocket);
    result.put("usd_per_million_orders", total);
    result.put(
        "assumptions",
        format!(
            "128 MB arm64 functions; create-order billed for the HTTP p50 of the orders \
             ({:.1} ms, an upper bound: it includes the gateway and the network); one consumer \
             invocation per DeleteMessageBatch, billed {PAYMENT_MEAN_S} s per order (the simulated \
             provider's mean wait, charges one at a time); one HTTP API request and \
             {PUSHES_PER_ORDER} WebSocket messages per order; SQS counts every request the stack \
             made meanwhile, the consumer's empty long polls included; the stack runs with the \
             shipped defaults (rate limit 120 a minute per user, whose counter writes are in these \
             figures; 80 % payment success, a failed payment giving its unit back); \
             connection-minutes and data transfer left out",
            latencies.quantile_ms(0.5)
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_meter_is_priced_per_order() {
        let meter = json!({
            "requests": {"DynamoDB.TransactWriteItems": 10, "SQS.SendMessage": 10, "SQS.DeleteMessageBatch": 1},
            "capacity": {"orders": {"read": 5.0, "write": 40.0}},
        });
        let mut latencies = Latencies::new();
        latencies.record(Duration::from_millis(10));
        let mut result = ScenarioResult::report("cost", "t");
        price(&mut result, &meter, 10.0, &latencies);
        assert_eq!(result.number("write_units_per_order"), Some(4.0));
        assert_eq!(result.number("dynamodb_requests_per_order"), Some(1.0));
        assert_eq!(result.number("sqs_requests_per_order"), Some(1.1));
        assert_eq!(result.number("consumer_invocations_per_order"), Some(0.1));
        // 4 writes * 0.625 + 0.5 reads * 0.125 = 2.5625
        assert_eq!(result.number("usd_per_million_dynamodb"), Some(2.563));
    }
}
