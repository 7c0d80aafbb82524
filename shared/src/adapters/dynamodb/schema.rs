//! Table creation for the local stack and tests (in AWS, `template.yaml` owns the tables).
//! Idempotent and safe to run from several processes at once.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification, TimeToLiveStatus,
};

use crate::config::TableNames;
use crate::ports::StoreError;

use super::index;
/// The TTL attribute (epoch seconds) of idempotency records, lock items and rate counters.
const TTL_ATTRIBUTE: &str = "expires_at";
/// How long to wait for a new table to become ACTIVE.
const TABLE_ACTIVE_WAIT: Duration = Duration::from_secs(60);

/// Keys and indexes of one table.
struct TableSpec<'a> {
    name: &'a str,
    hash: &'static str,
    range: Option<&'static str>,
    indexes: &'static [IndexSpec],
    ttl: bool,
}

/// A global secondary index; every key attribute is a string.
struct IndexSpec {
    name: &'static str,
    hash: &'static str,
    range: Option<&'static str>,
    /// Projects the keys only (else every attribute): its entries change only when its key does.
    keys_only: bool,
}

/// Creates every table the adapter uses (on-demand capacity) unless it exists, waits until each
/// is ACTIVE, and turns on TTL where items expire. TTL errors are logged, not returned: an
/// emulator without TTL still serves every request correctly.
pub async fn ensure_tables(client: &Client, tables: &TableNames) -> Result<(), StoreError> {
    let specs = [
        TableSpec {
            name: &tables.products,
            hash: "id",
            range: None,
            indexes: &[],
            ttl: false,
        },
        TableSpec {
            name: &tables.orders,
            hash: "id",
            range: None,
            indexes: &[
                IndexSpec {
                    name: index::USER_ORDERS,
                    hash: "user_id",
                    range: Some("user_created"),
                    keys_only: true,
                },
                // Sparse: only PENDING and PROCESSING orders carry `unsettled_shard`.
                IndexSpec {
                    name: index::UNSETTLED,
                    hash: "unsettled_shard",
                    range: Some("created_at"),
                    keys_only: true,
                },
            ],
            ttl: false,
        },
        TableSpec {
            name: &tables.idempotency,
            hash: "user_id",
            range: Some("idempotency_key"),
            indexes: &[],
            ttl: true,
        },
        TableSpec {
            name: &tables.locks,
            hash: "product_id",
            range: None,
            indexes: &[],
            ttl: true,
        },
        TableSpec {
            name: &tables.connections,
            hash: "connection_id",
            range: None,
            indexes: &[IndexSpec {
                name: index::USER_CONNECTIONS,
                hash: "user_id",
                range: None,
                keys_only: false,
            }],
            ttl: true,
        },
        TableSpec {
            name: &tables.rate_limits,
            hash: "pk",
            range: None,
            indexes: &[],
            ttl: true,
        },
        TableSpec {
            name: &tables.holds,
            hash: "id",
            range: None,
            indexes: &[IndexSpec {
                name: index::ACTIVE_HOLDS,
                hash: "sweep_shard",
                range: Some("hold_expires_at"),
                keys_only: false,
            }],
            ttl: true,
        },
        TableSpec {
            name: &tables.webhooks,
            hash: "pk",
            range: None,
            indexes: &[],
            ttl: true,
        },
    ];
    for spec in &specs {
        create_table(client, spec).await?;
    }
    for spec in &specs {
        client
            .wait_until_table_exists()
            .table_name(spec.name)
            .wait(TABLE_ACTIVE_WAIT)
            .await
            .map_err(StoreError::unavailable)?;
        check_indexes(client, spec).await?;
    }
    for spec in specs.iter().filter(|s| s.ttl) {
        enable_ttl(client, spec.name).await;
    }
    Ok(())
}

async fn create_table(client: &Client, spec: &TableSpec<'_>) -> Result<(), StoreError> {
    let mut attributes = vec![spec.hash];
    let mut request = client
        .create_table()
        .table_name(spec.name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(spec.hash, KeyType::Hash)?);
    if let Some(range) = spec.range {
        attributes.push(range);
        request = request.key_schema(key(range, KeyType::Range)?);
    }
    for index in spec.indexes {
        let mut builder = GlobalSecondaryIndex::builder()
            .index_name(index.name)
            .key_schema(key(index.hash, KeyType::Hash)?)
            .projection(
                Projection::builder()
                    .projection_type(if index.keys_only {
                        ProjectionType::KeysOnly
                    } else {
                        ProjectionType::All
                    })
                    .build(),
            );
        attributes.push(index.hash);
        if let Some(range) = index.range {
            attributes.push(range);
            builder = builder.key_schema(key(range, KeyType::Range)?);
        }
        request =
            request.global_secondary_indexes(builder.build().map_err(StoreError::unavailable)?);
    }
    attributes.sort_unstable();
    attributes.dedup();
    for name in attributes {
        let definition = AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(StoreError::unavailable)?;
        request = request.attribute_definitions(definition);
    }
    match request.send().await {
        Ok(_) => {
            tracing::info!(table = spec.name, "created table");
            Ok(())
        }
        // Already there, or being created by a concurrent caller: the wait that follows covers both.
        Err(e) if error_code(&e) == Some("ResourceInUseException") => Ok(()),
        Err(e) => Err(StoreError::unavailable(e)),
    }
}

/// Refuses a table that exists with other indexes than this version queries: one created by an
/// older version (kept in `LOCAL_DATA_DIR`), which this version would answer 500s from.
async fn check_indexes(client: &Client, spec: &TableSpec<'_>) -> Result<(), StoreError> {
    if spec.indexes.is_empty() {
        return Ok(());
    }
    let output = client
        .describe_table()
        .table_name(spec.name)
        .send()
        .await
        .map_err(StoreError::unavailable)?;
    let mut found: Vec<String> = output
        .table
        .iter()
        .flat_map(|table| table.global_secondary_indexes())
        .filter_map(|index| index.index_name().map(str::to_owned))
        .collect();
    found.sort_unstable();
    let mut wanted: Vec<String> = spec.indexes.iter().map(|i| i.name.to_owned()).collect();
    wanted.sort_unstable();
    if found == wanted {
        return Ok(());
    }
    Err(StoreError::Corrupt(format!(
        "table {} has the indexes {found:?}, but this version needs {wanted:?}: it was created by \
         an older version of the stack (a LOCAL_DATA_DIR kept from before). Start with an empty \
         LOCAL_DATA_DIR, or move the data as docs/deploy.md says (\"Moving to the lean order \
         items\")",
        spec.name
    )))
}

async fn enable_ttl(client: &Client, table: &str) {
    let current = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await;
    if let Ok(output) = &current {
        let status = output
            .time_to_live_description
            .as_ref()
            .and_then(|d| d.time_to_live_status.as_ref());
        if matches!(
            status,
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        ) {
            return;
        }
    }
    let specification = match TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(TTL_ATTRIBUTE)
        .build()
    {
        Ok(specification) => specification,
        Err(e) => {
            tracing::warn!(table, error = %e, "cannot build the TTL specification");
            return;
        }
    };
    let result = client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(specification)
        .send()
        .await;
    match result {
        Ok(_) => tracing::info!(table, attribute = TTL_ATTRIBUTE, "enabled TTL"),
        // "already enabled" from a concurrent caller, or an endpoint without TTL support.
        Err(e) => tracing::warn!(
            table,
            code = error_code(&e),
            error = %aws_sdk_dynamodb::error::DisplayErrorContext(&e),
            "TTL not enabled"
        ),
    }
}

fn key(name: &str, key_type: KeyType) -> Result<KeySchemaElement, StoreError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(StoreError::unavailable)
}

fn error_code<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> Option<&str> {
    error
        .as_service_error()
        .and_then(ProvideErrorMetadata::code)
}
