//! The scenarios through the library against a local stack started in this process (ephemeral
//! ports, payment consumer on, every payment succeeding), in both lock modes.

use load_tests::{Api, Scenario, Sizes, Target, Verdict};
use localstack::{LocalSettings, Stack, StackOptions};
use shared::config::DEVELOPMENT_JWT_SECRET;

async fn start(stock_locks: bool) -> (Stack, Target) {
    let mut options = StackOptions {
        config: shared::Config {
            rate_limit_per_minute: 0,
            ..shared::Config::default()
        },
        local: LocalSettings::ephemeral(),
        seed_products: false,
        run_workers: true,
    };
    options.config.locks.enabled = stock_locks;
    options.config.payments.success_rate = 1.0;
    let stack = Stack::start(options).await.expect("the local stack starts");
    let label = if stock_locks { "locks-on" } else { "locks-off" };
    let target = Target {
        api: Api::new(
            &stack.http_url(),
            DEVELOPMENT_JWT_SECRET,
            &load_tests::bench::run_id(),
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
