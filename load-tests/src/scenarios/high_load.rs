//! High load: virtual users ramp from 1 to 50, then hold; each loops over a mix of 70 % product
//! reads, 20 % orders and 10 % reads of its own earlier order. Figures only (goal: p99 < 100 ms).

use std::time::Instant;

use crate::client::Answer;
use crate::outcome::ScenarioResult;
use crate::stats::Latencies;

use super::{Sizes, Target};

/// Products the reads spread over.
const READ_PRODUCTS: usize = 3;
/// Stock of the product every order takes one unit of: never the limit.
const HUGE_STOCK: u64 = 1_000_000_000;
/// The goal for p99 at full load.
const P99_GOAL_MS: f64 = 100.0;

/// What one virtual user measured.
#[derive(Default)]
struct VuFigures {
    product_reads: Latencies,
    orders: Latencies,
    order_reads: Latencies,
    /// Every request while all virtual users were running.
    at_full_load: Latencies,
    errors: u64,
    error_samples: Vec<String>,
}

impl VuFigures {
    fn tally(&mut self, answer: &Answer, expected: &[u16]) {
        if !expected.contains(&answer.status) {
            self.errors += 1;
            if self.error_samples.len() < 3 {
                self.error_samples.push(answer.summary());
            }
        }
    }
}

/// Ramps, holds, and reports requests/s, orders/s, latency percentiles and the error rate.
pub async fn run(target: &Target, sizes: &Sizes) -> anyhow::Result<ScenarioResult> {
    let mut result = ScenarioResult::report("high-load", &target.label);
    let mut products = Vec::new();
    for i in 0..READ_PRODUCTS {
        products.push(
            target
                .api
                .create_product(&format!("read-{i}"), 1_000)
                .await?,
        );
    }
    let order_product = target.api.create_product("high-load", HUGE_STOCK).await?;

    let started = Instant::now();
    let vus = sizes.vus.max(1);
    let end = started + sizes.ramp + sizes.hold;
    let full_load_from = started + sizes.ramp;
    let step = sizes.ramp / u32::try_from(vus.saturating_sub(1).max(1)).unwrap_or(1);
    let tasks: Vec<_> = (0..vus)
        .map(|vu| {
            let api = target.api.clone();
            let user = api.user(&format!("vu-{vu}"));
            let products = products.clone();
            let order_product = order_product.clone();
            let begin = started + step * u32::try_from(vu).unwrap_or(0);
            tokio::spawn(async move {
                tokio::time::sleep_until(begin.into()).await;
                let mut figures = VuFigures::default();
                let mut my_orders: Vec<String> = Vec::new();
                let mut iteration: usize = vu;
                while Instant::now() < end {
                    let sent = Instant::now();
                    let (answer, kind) = match iteration % 10 {
                        // 7 in 10: a product page.
                        0..=6 => {
                            let id = &products[iteration % products.len()];
                            let answer = api.get(&format!("/products/{id}"), None).await;
                            figures.tally(&answer, &[200]);
                            (answer, 0)
                        }
                        // 2 in 10: an order (a 409 would be expected under contention).
                        7 | 8 => {
                            let key = format!("hl-{vu}-{iteration}");
                            let answer = api.place_order(&user, &key, &order_product, 1).await;
                            figures.tally(&answer, &[201, 409]);
                            if answer.status == 201 {
                                my_orders.push(answer.data_str("id").to_owned());
                            }
                            (answer, 1)
                        }
                        // 1 in 10: one of my earlier orders (a product page before the first).
                        _ => match my_orders.last() {
                            Some(id) => {
                                let answer =
                                    api.get(&format!("/orders/{id}"), Some(&user.token)).await;
                                figures.tally(&answer, &[200]);
                                (answer, 2)
                            }
                            None => {
                                let id = &products[0];
                                let answer = api.get(&format!("/products/{id}"), None).await;
                                figures.tally(&answer, &[200]);
                                (answer, 0)
                            }
                        },
                    };
                    match kind {
                        0 => figures.product_reads.record(answer.latency),
                        1 => figures.orders.record(answer.latency),
                        _ => figures.order_reads.record(answer.latency),
                    }
                    if sent >= full_load_from {
                        figures.at_full_load.record(answer.latency);
                    }
                    iteration += 1;
                }
                figures
            })
        })
        .collect();
    let mut product_reads = Latencies::new();
    let mut orders = Latencies::new();
    let mut order_reads = Latencies::new();
    let mut at_full_load = Latencies::new();
    let mut errors = 0;
    let mut samples = Vec::new();
    for task in tasks {
        let figures = task.await?;
        product_reads.merge(&figures.product_reads);
        orders.merge(&figures.orders);
        order_reads.merge(&figures.order_reads);
        at_full_load.merge(&figures.at_full_load);
        errors += figures.errors;
        samples.extend(figures.error_samples.into_iter().take(2));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut overall = Latencies::new();
    overall.merge(&product_reads);
    overall.merge(&orders);
    overall.merge(&order_reads);
    let requests = overall.count();

    result.put("virtual_users", vus as u64);
    result.put("ramp_s", sizes.ramp.as_secs_f64());
    result.put("hold_s", sizes.hold.as_secs_f64());
    result.put("requests", requests);
    result.put("requests_per_s", requests as f64 / elapsed);
    result.put("orders_per_s", orders.count() as f64 / elapsed);
    result.put(
        "product_reads_per_s",
        product_reads.count() as f64 / elapsed,
    );
    for (name, latencies) in [
        ("all", &overall),
        ("product_read", &product_reads),
        ("order", &orders),
        ("order_read", &order_reads),
        ("full_load", &at_full_load),
    ] {
        result.put(&format!("{name}_p50_ms"), latencies.quantile_ms(0.50));
        result.put(&format!("{name}_p95_ms"), latencies.quantile_ms(0.95));
        result.put(&format!("{name}_p99_ms"), latencies.quantile_ms(0.99));
    }
    result.put("errors", errors);
    result.put(
        "error_rate",
        if requests == 0 {
            0.0
        } else {
            errors as f64 / requests as f64
        },
    );
    if !samples.is_empty() {
        result.put("error_samples", samples.join("; "));
    }
    let p99 = at_full_load.quantile_ms(0.99);
    result.put(
        "goal_p99_under_100ms_at_full_load",
        if p99 < P99_GOAL_MS { "met" } else { "missed" },
    );
    Ok(result)
}
