//! Stock shards through the real stack (docs/scaling.md): with 1, 4 and 16 shards, one winner
//! for the last unit, a flash sale to sell-out that never refuses an order the total covers,
//! orders larger than any one shard, holds, cancels and failed payments across shards, and
//! re-sharding a product with stock in it while orders race the re-shard.

use std::time::Duration;

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_lock_modes;
use crate::support::{TestStack, count_status, spawn, spawn_pipeline};

/// The shard counts every scenario runs with.
const SHARDS: [u16; 3] = [1, 4, 16];

/// Each shard item's units, read straight from the products table (shard 0 is the product item).
async fn shard_units(stack: &TestStack, product: &str, shards: u16) -> Vec<u64> {
    let client = stack.dynamodb().await;
    let mut units = vec![];
    for shard in 0..shards {
        let id = match shard {
            0 => product.to_owned(),
            k => format!("{product}#{k}"),
        };
        let item = client
            .get_item()
            .table_name("products")
            .key("id", aws_sdk_dynamodb::types::AttributeValue::S(id.clone()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .unwrap_or_else(|| panic!("shard item {id} exists"));
        units.push(item["stock"].as_n().unwrap().parse().unwrap());
    }
    units
}

/// 50 buyers for the last unit of a product over 1, 4 and 16 shards: exactly one order.
async fn fifty_buyers_for_one_unit_over_shards(locks: bool) {
    let stack = spawn(locks).await;
    for shards in SHARDS {
        let product = stack.sharded_product("9.90", 1, shards).await;
        let replies = join_all((0..50).map(|i| {
            let (stack, product) = (&stack, &product);
            async move {
                stack
                    .order_retrying(&format!("buyer-{shards}-{i}"), "last", &[(product, 1)])
                    .await
            }
        }))
        .await;
        let created = count_status(&replies, StatusCode::CREATED);
        println!("locks={locks} shards={shards}: created={created}");
        assert_eq!(created, 1, "shards={shards}: exactly one winner");
        assert!(
            replies
                .iter()
                .filter(|r| r.status != StatusCode::CREATED)
                .all(|r| r.code() == "INSUFFICIENT_STOCK"),
            "shards={shards}: every loser is told the stock is gone"
        );
        assert_eq!(stack.stock(&product).await, 0);
    }
}
both_lock_modes!(fifty_buyers_for_one_unit_over_shards);

/// A flash sale to sell-out over 1, 4 and 16 shards: 40 buyers order 1 to 3 units until refused.
/// Every unit is sold exactly once, stock ends at 0, and every refusal says the product's total
/// was below what was asked (no order refused while the stock covered it).
async fn a_flash_sale_sells_out_over_shards_and_refuses_only_when_short(locks: bool) {
    const STOCK: u32 = 240;
    let stack = spawn(locks).await;
    for shards in SHARDS {
        let product = stack.sharded_product("5.00", STOCK, shards).await;
        let per_buyer = join_all((0..40).map(|buyer| {
            let (stack, product) = (&stack, &product);
            async move {
                let user = format!("fan-{shards}-{buyer}");
                let mut bought = 0_u64;
                let mut refusals = vec![];
                for n in 0.. {
                    let quantity = 1 + (buyer + n) % 3;
                    let reply = stack
                        .order_retrying(&user, &format!("k{n}"), &[(product, quantity)])
                        .await;
                    match reply.status {
                        StatusCode::CREATED => bought += quantity as u64,
                        _ => {
                            assert_eq!(reply.code(), "INSUFFICIENT_STOCK", "{}", reply.body);
                            refusals.push(reply.body["details"].clone());
                            if quantity == 1 {
                                break;
                            }
                        }
                    }
                }
                (bought, refusals)
            }
        }))
        .await;
        let sold: u64 = per_buyer.iter().map(|(bought, _)| bought).sum();
        let refusals: Vec<&Value> = per_buyer.iter().flat_map(|(_, r)| r).collect();
        println!(
            "locks={locks} shards={shards}: sold={sold} refusals={}",
            refusals.len()
        );
        assert_eq!(
            sold,
            u64::from(STOCK),
            "shards={shards}: every unit sold once"
        );
        assert_eq!(stack.stock(&product).await, 0, "shards={shards}");
        for details in refusals {
            assert!(
                details["available"].as_u64() < details["requested"].as_u64(),
                "shards={shards}: refused while the total covered it: {details}"
            );
        }
        let units = shard_units(&stack, &product, shards).await;
        assert!(units.iter().all(|u| *u == 0), "{units:?}");
    }
}
both_lock_modes!(a_flash_sale_sells_out_over_shards_and_refuses_only_when_short);

/// An order for more units than any one shard holds takes them from several shards in one
/// transaction; its cancel gives each shard back what it gave.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_order_larger_than_any_shard_takes_from_several_and_a_cancel_returns_them() {
    let stack = spawn(false).await;
    for shards in [4_u16, 16] {
        let product = stack.sharded_product("2.00", 40, shards).await;
        let before = shard_units(&stack, &product, shards).await;
        assert!(before.iter().all(|u| *u <= 10), "{before:?}");

        let big = stack
            .order("whale", &format!("big-{shards}"), &[(&product, 30)])
            .await;
        assert_eq!(big.status, StatusCode::CREATED, "{}", big.body);
        assert_eq!(stack.stock(&product).await, 10);
        let short = stack
            .order("whale", &format!("short-{shards}"), &[(&product, 11)])
            .await;
        assert_eq!(short.code(), "INSUFFICIENT_STOCK", "{}", short.body);
        assert_eq!(short.body["details"]["available"], 10);
        let rest = stack
            .order("minnow", &format!("rest-{shards}"), &[(&product, 10)])
            .await;
        assert_eq!(rest.status, StatusCode::CREATED, "{}", rest.body);
        assert_eq!(stack.stock(&product).await, 0);

        let id = big.body["data"]["id"].as_str().unwrap();
        let cancel = stack.cancel("whale", id).await;
        assert_eq!(cancel.status, StatusCode::OK, "{}", cancel.body);
        assert_eq!(stack.stock(&product).await, 30);
        let after = shard_units(&stack, &product, shards).await;
        println!("shards={shards}: before {before:?}, after the cancel {after:?}");
        assert_eq!(after.iter().sum::<u64>(), 30);
        assert!(
            after.iter().filter(|u| **u > 0).count() >= 3,
            "the 30 units came back to the several shards they came from: {after:?}"
        );
    }
}

/// Holds, their expiry, checkouts, cancels and failed payments on sharded products: with every
/// payment declined, every unit comes back, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn holds_cancels_and_failed_payments_give_units_back_across_shards() {
    let stack = spawn_pipeline(false, |options| {
        options.config.payments.success_rate = 0.0;
        options.config.hold_ttl = Duration::from_secs(1);
        options.local.hold_sweep_interval = Duration::from_millis(200);
    })
    .await;
    for shards in SHARDS {
        let product = stack.sharded_product("3.00", 64, shards).await;
        // Orders (some larger than a shard) that the consumer fails, and one cancelled.
        let mut orders = vec![];
        for (i, quantity) in [9_i64, 1, 20, 2].into_iter().enumerate() {
            let reply = stack
                .order_retrying("buyer", &format!("o{shards}-{i}"), &[(&product, quantity)])
                .await;
            assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
            orders.push(reply.body["data"]["id"].as_str().unwrap().to_owned());
        }
        let cancel = stack.cancel("buyer", &orders[3]).await;
        // The consumer may have claimed it first: either way its units come back once.
        assert!(
            cancel.status == StatusCode::OK || cancel.code() == "ORDER_NOT_CANCELLABLE",
            "{}",
            cancel.body
        );
        // A hold larger than a shard that expires, and one checked out (then failed).
        let expiring = stack.hold("holder", &product, 12).await;
        assert_eq!(expiring.status, StatusCode::CREATED, "{}", expiring.body);
        let kept = stack.hold("buyer", &product, 5).await;
        assert_eq!(kept.status, StatusCode::CREATED, "{}", kept.body);
        let checkout = stack
            .order_from_hold(
                "buyer",
                &format!("h{shards}"),
                kept.body["data"]["hold_id"].as_str().unwrap(),
            )
            .await;
        assert_eq!(checkout.status, StatusCode::CREATED, "{}", checkout.body);
        orders.push(checkout.body["data"]["id"].as_str().unwrap().to_owned());

        for id in &orders {
            let status = stack
                .order_status_when("buyer", id, Duration::from_secs(30), |s| {
                    matches!(s, "FAILED" | "CANCELLED")
                })
                .await;
            assert!(
                matches!(status.as_str(), "FAILED" | "CANCELLED"),
                "{id}: {status}"
            );
        }
        let expired_id = expiring.body["data"]["hold_id"].as_str().unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let hold = stack.read_hold(&stack.token("holder"), expired_id).await;
            if hold.body["data"]["status"] == "EXPIRED" {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{}", hold.body);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // A restore lands one stock write after its status move (the stock journal's apply,
        // docs/decisions.md): wait for it, never past the 64 units there were.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let stock = loop {
            let stock = stack.stock(&product).await;
            assert!(
                stock <= 64,
                "shards={shards}: {stock} units: one came back twice"
            );
            if stock == 64 || tokio::time::Instant::now() > deadline {
                break stock;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        println!(
            "shards={shards}: stock back to {stock}, per shard {:?}",
            shard_units(&stack, &product, shards).await
        );
        assert_eq!(stock, 64, "shards={shards}: every unit back, once");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            stack.stock(&product).await,
            64,
            "shards={shards}: and no more"
        );
    }
}

/// Re-sharding a product with stock in it (1 → 16 → 4 → 1 → 8) while 20 buyers keep ordering:
/// the total stays exact (available + ordered = initial), and a restock to an absolute figure
/// spreads over the shards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn re_sharding_under_orders_keeps_the_total_exact() {
    const STOCK: u32 = 3_000;
    let stack = spawn(false).await;
    let product = stack.sharded_product("1.00", STOCK, 1).await;
    let admin = stack.admin_token();
    let buying = async {
        join_all((0..20).map(|buyer| {
            let (stack, product) = (&stack, &product);
            async move {
                let mut bought = 0_u64;
                for n in 0..40 {
                    let reply = stack
                        .order_retrying(&format!("b{buyer}"), &format!("k{n}"), &[(product, 2)])
                        .await;
                    if reply.status == StatusCode::CREATED {
                        bought += 2;
                    }
                }
                bought
            }
        }))
        .await
        .into_iter()
        .sum::<u64>()
    };
    let resharding = async {
        let mut layouts = vec![];
        for shards in [16_u16, 4, 1, 8] {
            tokio::time::sleep(Duration::from_millis(150)).await;
            let reply = stack
                .send(
                    "PUT",
                    &format!("/products/{product}"),
                    Some(&admin),
                    Some(json!({"stock_shards": shards})),
                )
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            assert_eq!(reply.body["data"]["stock_shards"], shards);
            layouts.push(shards);
        }
        layouts
    };
    let (bought, layouts) = tokio::join!(buying, resharding);
    let stock = stack.stock(&product).await;
    println!("re-sharded through {layouts:?}: bought {bought}, stock {stock}");
    assert_eq!(stock + bought, u64::from(STOCK), "the total is exact");
    let units = shard_units(&stack, &product, 8).await;
    assert_eq!(units.iter().sum::<u64>(), stock, "{units:?}");

    // A restock sets the total, spread over the shards; orders go on.
    let reply = stack
        .send(
            "PUT",
            &format!("/products/{product}"),
            Some(&admin),
            Some(json!({"stock": 100, "stock_shards": 16})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["data"]["stock"], 100);
    let units = shard_units(&stack, &product, 16).await;
    assert_eq!(units, vec![7, 7, 7, 7, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6]);
    let order = stack.order("late", "after", &[(&product, 50)]).await;
    assert_eq!(order.status, StatusCode::CREATED, "{}", order.body);
    assert_eq!(stack.stock(&product).await, 50);

    // A deleted sharded product takes no more orders, on any shard.
    let deleted = stack
        .send(
            "DELETE",
            &format!("/products/{product}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    for n in 0..8 {
        let reply = stack
            .order("late", &format!("gone{n}"), &[(&product, 1)])
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.body);
    }
}
