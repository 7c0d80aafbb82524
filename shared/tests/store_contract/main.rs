//! One contract for both stores: every scenario is a generic async fn over the ports, and
//! `contract!` runs it against the in-memory fake and against the DynamoDB adapter on Dynoxide.
//! This file holds the harness, the macro and the arrangement helpers; scenarios sit by concern.

/// Two `#[tokio::test]`s per scenario, `in_memory::<scenario>` and `dynamodb::<scenario>`, each
/// on a fresh store. A scenario the fake cannot honestly keep would be marked `#[dynamodb_only]`,
/// with a one-line comment at the call saying why; none is today.
macro_rules! contract {
    ($( $(#[$mark:ident])? $scenario:ident ),* $(,)?) => {
        mod in_memory {
            $( contract!(@in_memory [$($mark)?] $scenario); )*
        }
        mod dynamodb {
            $(
                #[tokio::test]
                async fn $scenario() -> anyhow::Result<()> {
                    super::$scenario(&crate::dynamodb().await?).await
                }
            )*
        }
    };
    (@in_memory [] $scenario:ident) => {
        #[tokio::test]
        async fn $scenario() -> anyhow::Result<()> {
            super::$scenario(&crate::in_memory()).await
        }
    };
    (@in_memory [dynamodb_only] $scenario:ident) => {};
}

#[path = "../common/arrange.rs"]
mod arrange;
#[path = "../common/emulator.rs"]
mod emulator;

mod catalog;
mod conditions;
mod cursors;
mod holds;
mod placement;
mod rate_limits;
mod settlement;

use anyhow::Context;
use arrange::{allowed, at, at_ms, burst, limited, order, place_from_hold, price};
use chrono::{DateTime, Utc};
use shared::adapters::dynamodb::DynamoStore;
use shared::adapters::in_memory::InMemoryStore;
use shared::domain::{IdempotencyKey, NewProduct, Order, OrderId, ProductId, ShardSplit, UserId};
use shared::ports::{IdempotencyStore, ProductCatalog};

/// A fresh fake.
fn in_memory() -> InMemoryStore {
    InMemoryStore::default()
}

/// The DynamoDB adapter on a fresh Dynoxide with its tables created.
async fn dynamodb() -> anyhow::Result<DynamoStore> {
    let (client, tables) = emulator::provisioned().await?;
    Ok(DynamoStore::new(client, tables))
}

/// Creates product `id` with `stock` units over `shards` stock shards, at `at(0)`.
async fn product<S: ProductCatalog>(
    store: &S,
    id: &str,
    stock: u32,
    shards: u16,
) -> anyhow::Result<ProductId> {
    let new = NewProduct {
        name: format!("Product {id}"),
        price: price(),
        stock,
        stock_shards: shards,
    };
    Ok(store
        .create_product(ProductId::new(id), new, at(0))
        .await?
        .id)
}

/// A live product's stock, summed over its shards.
async fn stock<S: ProductCatalog>(store: &S, id: &ProductId) -> anyhow::Result<u32> {
    let product = store.get_product(id).await?.context("no such product")?;
    Ok(product.stock)
}

/// The id the application derives for `user`'s order placed with `key`.
fn order_id(user: &str, key: &str) -> OrderId {
    OrderId::for_key(&UserId::new(user), &key_of(key))
}

/// What `user`'s `key` placed: the order and the request's fingerprint.
async fn record<S: IdempotencyStore>(
    store: &S,
    user: &str,
    key: &str,
) -> anyhow::Result<Option<(Order, Option<String>)>> {
    let found = store
        .get_idempotency_record(&UserId::new(user), &key_of(key))
        .await?;
    Ok(found.map(|r| (r.order, r.request_fingerprint)))
}

fn key_of(key: &str) -> IdempotencyKey {
    IdempotencyKey::parse(key).unwrap()
}

/// An order whose lines take their units from the given shards.
fn sharded_order(
    user: &str,
    key: &str,
    lines: &[(&ProductId, i64, ShardSplit)],
    created: DateTime<Utc>,
) -> Order {
    let plain: Vec<_> = lines.iter().map(|(product, q, _)| (*product, *q)).collect();
    let mut placed = order(user, key, &plain, created);
    for (item, (_, _, shards)) in placed.items.iter_mut().zip(lines) {
        item.shards = shards.clone();
    }
    placed
}
