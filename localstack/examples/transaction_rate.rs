//! TransactWriteItems per second against the embedded DynamoDB, window by window, over many
//! transactions: shows whether the emulator slows down as transactions accumulate (its
//! `ClientRequestToken` cache). `cargo run --profile local -p order-localstack --example
//! transaction_rate -- [transactions, default 60000] [concurrency, default 16]`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, Put,
    ScalarAttributeType, TransactWriteItem, Update,
};
use localstack::testing::EmbeddedAws;

const WINDOW: u64 = 5_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let total: u64 = args.next().map_or(Ok(60_000), |a| a.parse())?;
    let concurrency: u64 = args.next().map_or(Ok(16), |a| a.parse())?;
    let aws = EmbeddedAws::start("us-east-1").await?;
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .endpoint_url(aws.endpoint())
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    client
        .create_table()
        .table_name("bench")
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()?,
        )
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
    client
        .put_item()
        .table_name("bench")
        .item("pk", AttributeValue::S("stock".into()))
        .item("n", AttributeValue::N(total.to_string()))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;

    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, next, done) = (client.clone(), Arc::clone(&next), Arc::clone(&done));
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= total {
                    return anyhow::Ok(());
                }
                // What an order's transaction is: a conditional decrement and a new item.
                let decrement = Update::builder()
                    .table_name("bench")
                    .key("pk", AttributeValue::S("stock".into()))
                    .update_expression("SET n = n - :one")
                    .condition_expression("n >= :one")
                    .expression_attribute_values(":one", AttributeValue::N("1".into()))
                    .build()?;
                let order = Put::builder()
                    .table_name("bench")
                    .item("pk", AttributeValue::S(format!("order-{n}")))
                    .condition_expression("attribute_not_exists(pk)")
                    .build()?;
                let sent = client
                    .transact_write_items()
                    .transact_items(TransactWriteItem::builder().update(decrement).build())
                    .transact_items(TransactWriteItem::builder().put(order).build())
                    .send()
                    .await;
                if let Err(error) = sent {
                    // A conflict between concurrent transactions: counted as done, not retried.
                    tracing_free_log(&error);
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    let mut window_start = (Instant::now(), 0);
    let mut rates = Vec::new();
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let now = done.load(Ordering::SeqCst);
        if now >= window_start.1 + WINDOW || now >= total {
            let rate = (now - window_start.1) as f64 / window_start.0.elapsed().as_secs_f64();
            println!(
                "transactions {:>6}-{:<6} {:>7.0}/s",
                window_start.1, now, rate
            );
            rates.push(rate);
            window_start = (Instant::now(), now);
        }
        if now >= total {
            break;
        }
    }
    for task in tasks {
        task.await??;
    }
    let overall = total as f64 / started.elapsed().as_secs_f64();
    let (first, last) = (
        rates.first().copied().unwrap_or(0.0),
        rates.last().copied().unwrap_or(0.0),
    );
    println!(
        "{{\"kind\":\"transaction-rate\",\"transactions\":{total},\"concurrency\":{concurrency},\"overall_per_s\":{overall:.0},\"first_window_per_s\":{first:.0},\"last_window_per_s\":{last:.0},\"last_over_first\":{:.3}}}",
        last / first
    );
    aws.stop().await;
    Ok(())
}

fn tracing_free_log(error: &impl std::fmt::Debug) {
    eprintln!("transaction failed: {error:?}");
}
