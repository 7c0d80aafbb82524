//! Holds: 20 users each hold a unit; half check out from their hold, half let it expire. The
//! expired units must come back, the checked-out ones must not, and no hold may stay ACTIVE.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::outcome::ScenarioResult;
use crate::stats::Latencies;

use super::{Sizes, Target, all_at_once};

/// Users, one hold each.
const USERS: usize = 20;
/// The product's stock.
const STOCK: u64 = 100;

/// PASS iff every hold and checkout is 201, the stock returns to `100 - checked out` within the
/// grace after the holds' expiry, and no hold reads ACTIVE afterwards.
pub async fn run(target: &Target, sizes: &Sizes) -> anyhow::Result<ScenarioResult> {
    let mut result = ScenarioResult::pass("holds", &target.label);
    let product = target.api.create_product("holds", STOCK).await?;
    let users: Vec<_> = (0..USERS)
        .map(|n| target.api.user(&format!("hold-{n}")))
        .collect();

    let holds = all_at_once(USERS, |n| {
        let api = target.api.clone();
        let user = users[n].clone();
        let product = product.clone();
        async move {
            api.post(
                "/holds",
                &user.token,
                &json!({"product_id": product, "quantity": 1}),
            )
            .await
        }
    })
    .await;
    let mut hold_latency = Latencies::new();
    let mut hold_ids = Vec::new();
    let mut latest_expiry: Option<DateTime<Utc>> = None;
    for answer in &holds {
        hold_latency.record(answer.latency);
        result.check(
            answer.status == 201,
            format!("POST /holds answered {}", answer.summary()),
        );
        hold_ids.push(answer.data_str("hold_id").to_owned());
        if let Ok(expiry) = answer.data_str("expires_at").parse::<DateTime<Utc>>() {
            latest_expiry = latest_expiry.max(Some(expiry));
        }
    }

    // The first half check out from their holds.
    let checkouts = all_at_once(USERS / 2, |n| {
        let api = target.api.clone();
        let user = users[n].clone();
        let hold_id = hold_ids[n].clone();
        async move {
            api.post(
                "/orders",
                &user.token,
                &json!({"idempotency_key": "checkout", "hold_id": hold_id}),
            )
            .await
        }
    })
    .await;
    let mut checkout_latency = Latencies::new();
    let mut checked_out = 0u64;
    for answer in &checkouts {
        checkout_latency.record(answer.latency);
        if answer.status == 201 {
            checked_out += 1;
        }
        result.check(
            answer.status == 201,
            format!("a checkout answered {}", answer.summary()),
        );
    }

    // The other half expire; the sweeper gives their units back.
    let expected = STOCK - checked_out;
    let expiry = latest_expiry.unwrap_or_else(Utc::now);
    let wait_until =
        Instant::now() + (expiry - Utc::now()).to_std().unwrap_or_default() + sizes.hold_grace;
    let mut stock = target.api.stock(&product).await?;
    while stock != expected && Instant::now() < wait_until {
        tokio::time::sleep(Duration::from_millis(100)).await;
        stock = target.api.stock(&product).await?;
    }
    let returned_after_expiry = (Utc::now() - expiry).num_milliseconds() as f64 / 1000.0;

    let mut still_active = 0u64;
    for (n, hold_id) in hold_ids.iter().enumerate() {
        let answer = target
            .api
            .get(&format!("/holds/{hold_id}"), Some(&users[n].token))
            .await;
        if answer.data_str("status") == "ACTIVE" {
            still_active += 1;
        }
    }

    result.put("holds", USERS as u64);
    result.put("checked_out", checked_out);
    result.put("hold_p50_ms", hold_latency.quantile_ms(0.50));
    result.put("hold_p99_ms", hold_latency.quantile_ms(0.99));
    result.put("checkout_p50_ms", checkout_latency.quantile_ms(0.50));
    result.put("checkout_p99_ms", checkout_latency.quantile_ms(0.99));
    result.put("final_stock", stock);
    result.put("expected_stock", expected);
    if stock == expected {
        result.put("stock_back_after_expiry_s", returned_after_expiry);
    }
    result.put("holds_still_active", still_active);
    result.check(
        stock == expected,
        format!(
            "stock is {stock} {} s after the holds expired, expected {expected}",
            sizes.hold_grace.as_secs()
        ),
    );
    result.check(
        still_active == 0,
        format!("{still_active} holds still read ACTIVE"),
    );
    Ok(result)
}
