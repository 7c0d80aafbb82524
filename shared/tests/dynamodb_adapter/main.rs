//! The DynamoDB adapter against a real DynamoDB API: Dynoxide in-process on a port-0 listener,
//! one fresh database per test, reached through the real AWS SDK client over HTTP.
//! This file holds the harness; the tests sit in one module per concern.

#[path = "../common/arrange.rs"]
mod arrange;
#[path = "../common/emulator.rs"]
mod emulator;

mod control;
mod journal;
mod rate_limits;
mod settlement;
mod transactions;

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context;
use arrange::{allowed, at, at_ms, burst, limited, order, place_from_hold, price};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use shared::adapters::dynamodb::{DynamoStore, ensure_tables};
use shared::config::TableNames;
use shared::domain::{
    IdempotencyKey, NewProduct, Order, OrderId, OrderStatus, ProductId, ProductPatch, UserId,
};
use shared::ports::{
    OrderReader, PlaceOrderError, ProductCatalog, RateCounter, Reachable, StockReserver, StoreError,
};

/// A running emulator with the tables created, and the adapter and a raw client on it.
struct Stack {
    store: DynamoStore,
    client: Client,
    tables: TableNames,
}

async fn start() -> anyhow::Result<Stack> {
    let (client, tables) = emulator::provisioned().await?;
    ensure_tables(&client, &tables)
        .await
        .context("second ensure_tables (idempotent)")?;
    Ok(Stack {
        store: DynamoStore::new(client.clone(), tables.clone()),
        client,
        tables,
    })
}

impl Stack {
    async fn product(&self, id: &str, stock: u32) -> anyhow::Result<ProductId> {
        let new = NewProduct {
            name: format!("Product {id}"),
            price: price(),
            stock,
            stock_shards: 1,
        };
        let product = self
            .store
            .create_product(ProductId::new(id), new, at(0))
            .await?;
        Ok(product.id)
    }

    /// Stock as stored, read past the adapter so a soft-deleted product can be checked too.
    async fn raw_stock(&self, id: &ProductId) -> anyhow::Result<Option<i64>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.tables.products)
            .key("id", AttributeValue::S(id.as_str().into()))
            .consistent_read(true)
            .send()
            .await?;
        Ok(match output.item.as_ref().and_then(|i| i.get("stock")) {
            Some(AttributeValue::N(n)) => Some(n.parse()?),
            _ => None,
        })
    }
}
