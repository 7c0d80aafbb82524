//! Flash-sale races: many buyers, little stock, exactly the right number of winners.

use reqwest::StatusCode;

use crate::both_lock_modes;
use crate::support::{count_code, count_status, spawn};

/// 50 distinct buyers race for the last unit: one 201, 49 refusals, stock 0.
async fn fifty_buyers_for_one_unit(locks: bool) {
    let stack = spawn(locks).await;
    let product = stack.product("49.90", 1).await;

    let replies = stack
        .orders_at_once(50, |i| format!("buyer-{i}"), "flash", &[(&product, 1)])
        .await;

    let created = count_status(&replies, StatusCode::CREATED);
    let insufficient = count_code(&replies, "INSUFFICIENT_STOCK");
    let lock_conflicts = count_code(&replies, "LOCK_CONFLICT");
    println!(
        "locks={locks}: 201={created} INSUFFICIENT_STOCK={insufficient} LOCK_CONFLICT={lock_conflicts}"
    );
    assert_eq!(created, 1, "exactly one winner");
    assert_eq!(
        insufficient + lock_conflicts,
        49,
        "every loser is refused with a 409: {:?}",
        replies.iter().map(|r| r.code()).collect::<Vec<_>>()
    );
    assert!(
        replies
            .iter()
            .filter(|r| r.status != StatusCode::CREATED)
            .all(|r| r.status == StatusCode::CONFLICT)
    );
    if !locks {
        assert_eq!(lock_conflicts, 0, "no lock items without STOCK_LOCKS");
    }
    assert_eq!(stack.stock(&product).await, 0);
}
both_lock_modes!(fifty_buyers_for_one_unit);

/// 40 buyers of 2 units each against stock 25: 12 orders fit, stock ends at 1, never below.
async fn buyers_beyond_stock_never_oversell(locks: bool) {
    let stack = spawn(locks).await;
    let product = stack.product("3.00", 25).await;

    let replies = stack
        .orders_at_once(40, |i| format!("buyer-{i}"), "k", &[(&product, 2)])
        .await;

    let created = count_status(&replies, StatusCode::CREATED) as u64;
    let stock = stack.stock(&product).await;
    println!("locks={locks}: created={created} stock_left={stock}");
    assert_eq!(stock + 2 * created, 25, "stock is conserved");
    if !locks {
        assert_eq!(
            created, 12,
            "without locks nothing but stock refuses an order"
        );
    }
    assert!(
        replies
            .iter()
            .all(|r| r.status == StatusCode::CREATED || r.status == StatusCode::CONFLICT)
    );
}
both_lock_modes!(buyers_beyond_stock_never_oversell);

/// 3 x 0.10 + 2 x 999.99 = 2000.28 exactly, with price snapshots in the items.
async fn multi_item_total_is_exact(locks: bool) {
    let stack = spawn(locks).await;
    let cheap = stack.product("0.10", 10).await;
    let dear = stack.product("999.99", 10).await;

    let reply = stack
        .order(
            "alice",
            "basket",
            &[(cheap.as_str(), 3), (dear.as_str(), 2)],
        )
        .await;

    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["data"]["total_amount"], "2000.28");
    assert_eq!(reply.body["data"]["items"][0]["unit_price"], "0.10");
    assert_eq!(reply.body["data"]["items"][1]["unit_price"], "999.99");
    assert_eq!(
        (stack.stock(&cheap).await, stack.stock(&dear).await),
        (7, 8)
    );
    let id = reply.body["data"]["id"].as_str().unwrap();
    let read = stack
        .send(
            "GET",
            &format!("/orders/{id}"),
            Some(&stack.token("alice")),
            None,
        )
        .await;
    assert_eq!(read.body["data"]["total_amount"], "2000.28");
    assert_eq!(read.body["data"]["status"], "PENDING");
}
both_lock_modes!(multi_item_total_is_exact);
