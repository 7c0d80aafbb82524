//! The DynamoDB adapter against a real DynamoDB API: Dynoxide in-process on a port-0 listener,
//! one fresh database per test, reached through the real AWS SDK client over HTTP.
//! This file holds the harness; the tests sit in one module per concern.

mod control;
mod journal;
mod rate_limits;
mod reads;
mod settlement;
mod shards;
mod transactions;

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use chrono::{DateTime, TimeZone, Utc};
use shared::adapters::dynamodb::{DynamoStore, ensure_tables};
use shared::config::TableNames;
use shared::domain::{
    IdempotencyKey, Money, NewProduct, Order, OrderId, OrderItem, OrderStatus, ProductId,
    ProductPatch, Quantity, UserId,
};
use shared::ports::{
    IdempotencyStore, OrderQuery, OrderReader, PlaceOrderError, ProductCatalog, RateCounter,
    Reachable, StockLocks, StockReserver, StoreError,
};

/// A running emulator with the tables created, and the adapter and a raw client on it.
struct Stack {
    store: DynamoStore,
    client: Client,
    tables: TableNames,
}

fn client_for(port: u16) -> Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .credentials_provider(Credentials::new("x", "x", None, None, "test"))
        .build();
    Client::from_conf(config)
}

async fn start() -> anyhow::Result<Stack> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let database = dynoxide::Database::memory().context("opening the in-memory database")?;
    tokio::spawn(dynoxide::server::serve_on(listener, database));
    let client = client_for(port);
    let tables = TableNames {
        products: "t-products".into(),
        orders: "t-orders".into(),
        idempotency: "t-idempotency".into(),
        locks: "t-stock-locks".into(),
        rate_limits: "t-rate-limits".into(),
        connections: "t-connections".into(),
        holds: "t-holds".into(),
        webhooks: "t-webhooks".into(),
    };
    ensure_tables(&client, &tables)
        .await
        .context("first ensure_tables")?;
    ensure_tables(&client, &tables)
        .await
        .context("second ensure_tables (idempotent)")?;
    Ok(Stack {
        store: DynamoStore::new(client.clone(), tables.clone()),
        client,
        tables,
    })
}

/// 2026-01-01T00:00:00Z plus `seconds`: millisecond precision, as stored.
fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_767_225_600 + seconds, 0).unwrap()
}

fn price() -> Money {
    Money::parse("9.99").unwrap()
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

    async fn record(
        &self,
        user: &str,
        key: &str,
    ) -> anyhow::Result<Option<shared::ports::IdempotencyRecord>> {
        Ok(self
            .store
            .get_idempotency_record(&UserId::new(user), &IdempotencyKey::parse(key).unwrap())
            .await?)
    }

    /// Every page of a listing, following cursors; fails on an endless chain.
    async fn all_orders(
        &self,
        user: &str,
        status: Option<OrderStatus>,
        limit: u32,
    ) -> anyhow::Result<Vec<Vec<String>>> {
        let mut pages = Vec::new();
        let mut cursor = None;
        loop {
            let query = OrderQuery {
                user_id: UserId::new(user),
                status,
                limit,
                cursor,
            };
            let page = self.store.list_orders(&query).await?;
            anyhow::ensure!(page.items.len() <= limit as usize, "page over the limit");
            pages.push(page.items.iter().map(|o| o.id.to_string()).collect());
            anyhow::ensure!(pages.len() < 50, "cursor chain does not end");
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(pages),
            }
        }
    }
}

impl Stack {
    /// Places `order` (one line) as a checkout of a hold does: a hold on the line, then the
    /// order that consumes it, at the order's creation time.
    async fn place_from_hold(&self, order: &Order) -> anyhow::Result<()> {
        let line = &order.items[0];
        let hold = shared::domain::Hold::place(
            order.user_id.clone(),
            line.product_id.clone(),
            line.quantity,
            line.unit_price,
            order.created_at,
            Duration::from_secs(86_400),
        );
        shared::ports::HoldStore::place_hold(&self.store, &hold, 100).await?;
        let consumed = hold.consumed(order.id.clone(), order.created_at);
        self.store
            .place_order_from_hold(order, "fp", &consumed, order.created_at)
            .await?;
        Ok(())
    }
}

/// An order as the use case builds it: its id derived from the user and the key.
fn order(user: &str, key: &str, lines: &[(&ProductId, i64)], created: DateTime<Utc>) -> Order {
    let items = lines
        .iter()
        .map(|(product, q)| OrderItem {
            product_id: (*product).clone(),
            quantity: Quantity::parse(*q).unwrap(),
            unit_price: price(),
            shards: shared::domain::ShardSplit::default(),
        })
        .collect();
    let user = UserId::new(user);
    let key = IdempotencyKey::parse(key).unwrap();
    Order::place(OrderId::for_key(&user, &key), user, key, items, created)
}
