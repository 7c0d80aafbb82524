//! The cost of one order: requests and capacity units per order, priced.

use std::fmt::Write;

use serde_json::Value;

use crate::outcome::show;

use super::{ModeRun, fmt, header};

pub(super) fn cost_section(md: &mut String, runs: &[ModeRun]) {
    let _ = writeln!(md, "## Cost of one order\n");
    if runs.iter().all(|r| {
        r.result("cost")
            .is_none_or(|c| c.get("usd_per_million_orders").is_none())
    }) {
        let status: Vec<String> = runs
            .iter()
            .map(|r| {
                format!(
                    "{}: {}",
                    r.label,
                    r.result("cost")
                        .and_then(|c| c.get("status"))
                        .map_or("not run".to_owned(), show)
                )
            })
            .collect();
        let _ = writeln!(md, "Cost unavailable ({}).\n", status.join("; "));
        return;
    }
    header(md, "per order", runs);
    let mut keys: Vec<(String, String)> = Vec::new();
    for run in runs {
        if let Some(cost) = run.result("cost") {
            for object in [
                "requests_per_order_by_operation",
                "units_per_order_by_table",
            ] {
                for (key, _) in cost
                    .get(object)
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    let entry = (object.to_owned(), key.clone());
                    if !keys.contains(&entry) {
                        keys.push(entry);
                    }
                }
            }
        }
    }
    for (object, key) in &keys {
        let cells: Vec<String> = runs
            .iter()
            .map(|r| {
                r.result("cost")
                    .and_then(|c| c.get(object))
                    .map(|o| match &o[key.as_str()] {
                        Value::Object(units) => format!(
                            "read {} / write {}",
                            show(&units["read"]),
                            show(&units["write"])
                        ),
                        other => show(other),
                    })
                    .unwrap_or_default()
            })
            .collect();
        let what = if object.starts_with("requests") {
            "requests"
        } else {
            "capacity units"
        };
        let _ = writeln!(md, "| {what}: {key} | {} |", cells.join(" | "));
    }
    for (key, name) in [
        ("dynamodb_requests_per_order", "DynamoDB requests"),
        ("read_units_per_order", "DynamoDB read units"),
        ("write_units_per_order", "DynamoDB write units"),
        ("sqs_requests_per_order", "SQS requests"),
        ("consumer_invocations_per_order", "consumer invocations"),
        ("create_order_p50_ms", "create-order HTTP p50 (ms)"),
        (
            "usd_per_million_dynamodb",
            "USD per million orders: DynamoDB",
        ),
        (
            "usd_per_million_lambda_requests",
            "USD per million orders: Lambda requests",
        ),
        (
            "usd_per_million_lambda_duration",
            "USD per million orders: Lambda duration",
        ),
        ("usd_per_million_sqs", "USD per million orders: SQS"),
        (
            "usd_per_million_http_api",
            "USD per million orders: HTTP API",
        ),
        (
            "usd_per_million_websocket",
            "USD per million orders: WebSocket messages",
        ),
        ("usd_per_million_orders", "**USD per million orders**"),
    ] {
        let cells: Vec<String> = runs
            .iter()
            .map(|r| fmt(r.number("cost", key), ""))
            .collect();
        let _ = writeln!(md, "| {name} | {} |", cells.join(" | "));
    }
    let _ = writeln!(md);
    if let Some(assumptions) = runs
        .iter()
        .find_map(|r| r.result("cost")?.get("assumptions")?.as_str())
    {
        let _ = writeln!(
            md,
            "Prices: us-east-1: DynamoDB on-demand $0.625 per million write \
             units and $0.125 per million read units; Lambda arm64 $0.0000133334 per GB-s and \
             $0.20 per million requests; SQS $0.40 per million requests; HTTP API $1.00 per \
             million; WebSocket $1.00 per million messages. Assumptions: {assumptions}.\n"
        );
    }
}
