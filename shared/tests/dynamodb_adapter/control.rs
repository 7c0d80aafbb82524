//! Reachability and table creation (lock leases: `tests/store_contract/conditions.rs`).

use super::*;

#[tokio::test]
async fn reachable_only_while_the_endpoint_answers() -> anyhow::Result<()> {
    let stack = start().await?;
    assert_eq!(stack.store.unreachable().await, Vec::<&str>::new());

    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await?
        .local_addr()?
        .port();
    let nowhere = DynamoStore::new(emulator::client_for(closed), stack.tables.clone());
    assert_eq!(nowhere.unreachable().await.len(), 8, "every table");
    Ok(())
}

#[tokio::test]
async fn a_table_that_does_not_answer_is_named_and_the_others_are_not() -> anyhow::Result<()> {
    let stack = start().await?;
    let tables = TableNames {
        orders: format!("{}-gone", stack.tables.orders),
        ..stack.tables.clone()
    };
    let store = DynamoStore::new(stack.client.clone(), tables);
    assert_eq!(store.unreachable().await, ["orders"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensure_tables_is_safe_to_run_concurrently_and_sets_up_index_and_ttl() -> anyhow::Result<()>
{
    let (client, tables) = empty_endpoint().await?;

    let (first, second) = tokio::join!(
        ensure_tables(&client, &tables),
        ensure_tables(&client, &tables)
    );
    first?;
    second?;

    let orders = client
        .describe_table()
        .table_name(&tables.orders)
        .send()
        .await?;
    let indexes: Vec<_> = orders
        .table()
        .and_then(|t| t.global_secondary_indexes.clone())
        .unwrap_or_default();
    let mut names: Vec<_> = indexes
        .iter()
        .map(|i| i.index_name().unwrap_or_default())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["unsettled-orders", "user-orders-keys"]);
    for index in &indexes {
        assert_eq!(
            index.projection().and_then(|p| p.projection_type()),
            Some(&aws_sdk_dynamodb::types::ProjectionType::KeysOnly),
            "{index:?}: a status move writes no index entry"
        );
    }
    for table in [
        &tables.idempotency,
        &tables.locks,
        &tables.rate_limits,
        &tables.connections,
    ] {
        let ttl = client
            .describe_time_to_live()
            .table_name(table)
            .send()
            .await?;
        let description = ttl
            .time_to_live_description()
            .context("no TTL description")?;
        assert_eq!(description.attribute_name(), Some("expires_at"), "{table}");
        assert_eq!(
            description.time_to_live_status(),
            Some(&aws_sdk_dynamodb::types::TimeToLiveStatus::Enabled),
            "{table}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn tables_left_by_an_older_version_are_refused_with_a_clear_message() -> anyhow::Result<()> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        Projection, ProjectionType, ScalarAttributeType,
    };
    let (client, tables) = empty_endpoint().await?;
    // The orders table as the version before the lean order items created it.
    let string = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
    };
    client
        .create_table()
        .table_name(&tables.orders)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("id", KeyType::Hash)?)
        .attribute_definitions(string("id")?)
        .attribute_definitions(string("user_id")?)
        .attribute_definitions(string("user_created")?)
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("user-orders")
                .key_schema(key("user_id", KeyType::Hash)?)
                .key_schema(key("user_created", KeyType::Range)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()?,
        )
        .send()
        .await?;

    let refused = ensure_tables(&client, &tables).await;

    let message = refused
        .expect_err("an old orders table is refused")
        .to_string();
    assert!(
        message.contains("older version") && message.contains("LOCAL_DATA_DIR"),
        "{message}"
    );
    Ok(())
}

/// A fresh Dynoxide with no tables, and the default table names.
async fn empty_endpoint() -> anyhow::Result<(aws_sdk_dynamodb::Client, shared::config::TableNames)>
{
    let client = emulator::empty_endpoint().await?;
    Ok((client, shared::Config::default().tables))
}
