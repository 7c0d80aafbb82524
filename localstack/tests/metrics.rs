//! The business metrics of a flash sale, three ways that must agree: what the buyers got (201s and
//! refusals by `error_code`), the EMF lines the `local-stack` process wrote to its stdout (summed
//! here with a parser of this test's own), and what its `GET /_local/metrics` and `GET /metrics`
//! answer.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::{LocalStackProcess, token};

/// Units on sale, and buyers who want one each.
const UNITS: u32 = 12;
const BUYERS: usize = 40;

/// Sums of the EMF lines in `output`: per metric name its (sum, value count), and per
/// `Reason` the sum of `OrdersRefused`; with the number of lines.
#[derive(Debug, Default)]
struct EmfSums {
    lines: u64,
    metrics: BTreeMap<String, (f64, u64)>,
    refusals: BTreeMap<String, f64>,
}

fn sum_emf_lines(output: &str) -> EmfSums {
    let mut sums = EmfSums::default();
    for line in output
        .lines()
        .filter(|line| line.starts_with('{') && line.contains(r#""_aws":"#))
    {
        let object: Value = serde_json::from_str(line).expect("an EMF line is JSON");
        sums.lines += 1;
        for directive in object["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
            for metric in directive["Metrics"].as_array().unwrap() {
                let name = metric["Name"].as_str().unwrap();
                let values: Vec<f64> = match &object[name] {
                    Value::Array(values) => values.iter().map(|v| v.as_f64().unwrap()).collect(),
                    value => vec![value.as_f64().expect("a numeric value")],
                };
                let entry = sums.metrics.entry(name.to_owned()).or_default();
                entry.0 += values.iter().sum::<f64>();
                entry.1 += values.len() as u64;
                if name == "OrdersRefused" {
                    let reason = object["Reason"].as_str().expect("a refusal has a Reason");
                    *sums.refusals.entry(reason.to_owned()).or_default() += values[0];
                }
            }
        }
    }
    sums
}

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flash_sales_metrics_endpoints_equal_the_emf_lines_written_and_what_buyers_got() {
    let mut stack = tokio::task::spawn_blocking(|| {
        LocalStackProcess::start(&[("METRICS_NAMESPACE", "OrderProcessing/metrics-test")])
    })
    .await
    .unwrap();
    let http = stack.http_url();
    let client = reqwest::Client::new();
    let (status, product) = send(
        client
            .post(format!("{http}/products"))
            .bearer_auth(stack.admin_token())
            .json(&json!({"name": "Flash", "price": "9.99", "stock": UNITS})),
    )
    .await;
    assert_eq!(status, 201, "{product}");
    let product_id = product["data"]["id"].as_str().unwrap().to_owned();
    let order = |key: &str| json!({"idempotency_key": key, "items": [{"product_id": product_id, "quantity": 1}]});

    // The sale: every buyer at once.
    let answers: Vec<(u16, Value)> = futures::future::join_all((0..BUYERS).map(|i| {
        let request = client
            .post(format!("{http}/orders"))
            .bearer_auth(token(&format!("buyer-{i}"), None))
            .json(&order(&format!("sale-{i}")));
        send(request)
    }))
    .await;
    // A buyer who got an order sends the same request again: a replay.
    let winner = answers
        .iter()
        .position(|(status, _)| *status == 201)
        .expect("someone got an order");
    let replay = send(
        client
            .post(format!("{http}/orders"))
            .bearer_auth(token(&format!("buyer-{winner}"), None))
            .json(&order(&format!("sale-{winner}"))),
    )
    .await;
    let created = answers.iter().filter(|(status, _)| *status == 201).count();
    let mut refused: BTreeMap<String, f64> = BTreeMap::new();
    for (status, body) in answers.iter().filter(|(status, _)| *status != 201) {
        let code = body["error_code"]
            .as_str()
            .unwrap_or_else(|| panic!("{status} {body}"));
        *refused.entry(code.to_owned()).or_default() += 1.0;
    }

    // Every placed order settles (the consumer's lines are written when its batch ends).
    let started = Instant::now();
    let report = loop {
        let (_, report) = send(client.get(format!("{http}/_local/metrics"))).await;
        let settled = report["metrics"]["PaymentsPaid"]["sum"].as_f64().unwrap()
            + report["metrics"]["PaymentsFailed"]["sum"].as_f64().unwrap();
        if settled as usize >= created {
            break report;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{settled} of {created} orders settled: {report}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let prometheus = client
        .get(format!("{http}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    stack.terminate();
    let output = tokio::task::spawn_blocking(move || {
        stack.wait_for_exit(Duration::from_secs(8));
        stack.output()
    })
    .await
    .unwrap();
    let emf = sum_emf_lines(&output);

    // What the buyers got...
    // (A declined payment gives its unit back, so a late buyer may still get one.)
    assert!(
        created >= UNITS as usize,
        "{created} orders for {UNITS} units"
    );
    assert!(refused.contains_key("INSUFFICIENT_STOCK"), "{refused:?}");
    assert_eq!(refused.values().sum::<f64>(), (BUYERS - created) as f64);
    assert_eq!(replay.0, 200, "{replay:?}");
    // ...is what the lines say...
    assert_eq!(emf.metrics["OrdersPlaced"].0, created as f64);
    assert_eq!(emf.metrics["OrdersReplayed"].0, 1.0);
    assert_eq!(emf.refusals, refused);
    assert_eq!(
        emf.metrics["SettleLag"].1, created as u64,
        "one lag per settled order"
    );
    // ...and the endpoint answers exactly the lines' sums, metric by metric.
    assert_eq!(report["malformed_lines"], 0, "{report}");
    assert_eq!(
        report["lines"], emf.lines,
        "every line written reached the board"
    );
    for (name, (sum, count)) in &emf.metrics {
        let served = &report["metrics"][name];
        assert_eq!(served["sum"].as_f64(), Some(*sum), "{name}: {served}");
        assert_eq!(served["count"].as_u64(), Some(*count), "{name}: {served}");
    }
    for (name, served) in report["metrics"].as_object().unwrap() {
        if !emf.metrics.contains_key(name) {
            assert_eq!(served["sum"], 0.0, "{name} is in no line: {served}");
        }
    }
    for (reason, sum) in &emf.refusals {
        let served = &report["metrics"]["OrdersRefused"]["dimensions"]["Reason"][reason]["sum"];
        assert_eq!(
            served.as_f64(),
            Some(*sum),
            "OrdersRefused{{Reason={reason}}}"
        );
    }
    assert!(
        prometheus.contains(&format!("order_processing_orders_placed_total {created}\n")),
        "{prometheus}"
    );
}
