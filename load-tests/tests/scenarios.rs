//! The scenarios through the library against a local stack started in this process (ephemeral
//! ports, payment consumer on, every payment succeeding), in both lock modes.

use load_tests::partitions::{add_partition_figures, partitions_report};
use load_tests::scenarios::in_process_stack_options;
use load_tests::{Api, Scenario, Sizes, Target, Verdict};
use localstack::{LocalSettings, Stack};
use shared::config::{DEVELOPMENT_JWT_SECRET, TableNames};

async fn start(stock_locks: bool) -> (Stack, Target) {
    start_with(stock_locks, LocalSettings::ephemeral()).await
}

async fn start_with(stock_locks: bool, local: LocalSettings) -> (Stack, Target) {
    let mut options = in_process_stack_options(stock_locks, local);
    options.config.payments.success_rate = 1.0;
    let stack = Stack::start(options).await.expect("the local stack starts");
    let label = if stock_locks { "locks-on" } else { "locks-off" };
    let target = Target {
        api: Api::new(
            &stack.http_url(),
            DEVELOPMENT_JWT_SECRET,
            &load_tests::run::run_id(),
        )
        .unwrap(),
        ws_url: stack.ws_url(),
        aws_endpoint: Some(stack.aws_endpoint()),
        order_queue_url: Some(stack.order_queue_url().to_owned()),
        stock_locks,
        label: label.to_owned(),
        jwt_secret: DEVELOPMENT_JWT_SECRET.to_owned(),
    };
    (stack, target)
}

async fn oversell_idempotency_and_a_small_flash_sale_hold(stock_locks: bool) {
    let (stack, target) = start(stock_locks).await;
    let sizes = Sizes {
        flash_stock: 200,
        buyers: 8,
        ..Sizes::quick()
    };

    for scenario in [Scenario::Oversell, Scenario::Idempotency] {
        let result = scenario.run(&target, &sizes).await;
        print!("{}", result.table());
        assert_eq!(result.verdict, Verdict::Pass, "{:?}", result.failures);
    }

    let sale = Scenario::FlashSale.run(&target, &sizes).await;
    print!("{}", sale.table());
    assert_eq!(sale.number("final_stock"), Some(0.0), "{:?}", sale.failures);
    assert_eq!(
        sale.number("created_201"),
        Some(200.0),
        "{:?}",
        sale.failures
    );
    assert_eq!(
        sale.number("units_in_live_orders"),
        Some(200.0),
        "conservation: {:?}",
        sale.failures
    );
    assert_eq!(sale.verdict, Verdict::Pass, "{:?}", sale.failures);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scenarios_pass_with_stock_locks() {
    oversell_idempotency_and_a_small_flash_sale_hold(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scenarios_pass_without_stock_locks() {
    oversell_idempotency_and_a_small_flash_sale_hold(false).await;
}

/// The bench's partition phase in small: one shard under a limit of 20 units/s a key (about 10
/// orders/s), the key throttled, buyers retrying whatever the stack still answers busy, and the
/// sale still exact. 16
/// buyers ask for more than that even from a debug build on a loaded machine (a first version at
/// 50 units/s and 8 buyers was never throttled once, in a `make test` where every test ran at once).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flash_sale_under_the_partition_limit_is_throttled_and_still_sells_out_exactly() {
    let local = LocalSettings {
        partition_limit: true,
        partition_write_units: 20,
        ..LocalSettings::ephemeral()
    };
    let (stack, target) = start_with(false, local).await;
    let aws = stack.aws_endpoint();
    let http = reqwest::Client::new();
    let sizes = Sizes {
        flash_stock: 60,
        buyers: 16,
        stock_shards: 1,
        retry_busy: true,
        ..Sizes::quick()
    };

    partitions_report(&http, &aws, true).await.unwrap();
    let mut sale = Scenario::FlashSale.run(&target, &sizes).await;
    let report = partitions_report(&http, &aws, false).await.unwrap();
    add_partition_figures(&mut sale, &report, &TableNames::defaults());
    print!("{}", sale.table());

    assert_eq!(sale.verdict, Verdict::Pass, "{:?}", sale.failures);
    assert_eq!(sale.number("created_201"), Some(60.0));
    assert_eq!(sale.number("final_stock"), Some(0.0));
    // 16 buyers outrun 10 orders/s: the key is throttled, and the stock write's retries
    // (adapters/dynamodb/stock_journal/) wait for its budget instead of answering the buyer.
    assert!(
        sale.number("limiter_throttled_requests") > Some(0.0),
        "16 buyers outrun 10 orders/s: {:?}",
        sale.figures
    );
    println!(
        "throttled answers the buyers saw: {:?}",
        sale.get("throttled_answers")
    );
    assert_eq!(sale.number("product_keys_written"), Some(1.0));
    // 60 orders at 2 units (the take and its release), plus the product's creation.
    assert!(sale.number("product_key_units") >= Some(120.0));
    // Each order writes `user-orders-keys` once; orders from items never enter `unsettled-orders`.
    assert!(
        sale.get("orders_index_user-orders-keys_hottest_key")
            .is_some(),
        "{:?}",
        sale.figures
    );
    assert!(
        sale.get("orders_index_unsettled-orders_hottest_key")
            .is_none(),
        "{:?}",
        sale.figures
    );
    stack.shutdown().await;
}
