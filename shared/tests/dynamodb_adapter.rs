//! The DynamoDB adapter against a real DynamoDB API: Dynoxide in-process on a port-0 listener,
//! one fresh database per test, reached through the real AWS SDK client over HTTP.

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

fn order(
    id: &str,
    user: &str,
    key: &str,
    lines: &[(&ProductId, i64)],
    created: DateTime<Utc>,
) -> Order {
    let items = lines
        .iter()
        .map(|(product, q)| OrderItem {
            product_id: (*product).clone(),
            quantity: Quantity::parse(*q).unwrap(),
            unit_price: price(),
        })
        .collect();
    Order::place(
        OrderId::new(id),
        UserId::new(user),
        IdempotencyKey::parse(key).unwrap(),
        items,
        created,
    )
}

#[tokio::test]
async fn dynoxide_gives_one_cancellation_reason_per_action_in_action_order() -> anyhow::Result<()> {
    let stack = start().await?;
    let p = stack.product("p", 1).await?;
    let decrement = Update::builder()
        .table_name(&stack.tables.products)
        .key("id", AttributeValue::S(p.as_str().into()))
        .update_expression("SET stock = stock - :q")
        .condition_expression("stock >= :q")
        .expression_attribute_values(":q", AttributeValue::N("2".into()))
        .build()?;
    let put = Put::builder()
        .table_name(&stack.tables.orders)
        .item("id", AttributeValue::S("o".into()))
        .condition_expression("attribute_not_exists(id)")
        .build()?;
    let error = stack
        .client
        .transact_write_items()
        .transact_items(TransactWriteItem::builder().update(decrement).build())
        .transact_items(TransactWriteItem::builder().put(put).build())
        .send()
        .await
        .expect_err("the decrement's condition is false");
    let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
        error.as_service_error()
    else {
        panic!("expected TransactionCanceledException, got {error:?}");
    };
    let codes: Vec<Option<&str>> = cancelled
        .cancellation_reasons()
        .iter()
        .map(|r| r.code())
        .collect();
    assert_eq!(codes, [Some("ConditionalCheckFailed"), Some("None")]);
    Ok(())
}

#[tokio::test]
async fn place_order_decrements_stock_and_writes_order_and_record_together() -> anyhow::Result<()> {
    let stack = start().await?;
    let a = stack.product("a", 10).await?;
    let b = stack.product("b", 3).await?;
    let placed = order("o1", "alice", "k1", &[(&a, 4), (&b, 3)], at(10));

    stack.store.place_order(&placed, "fp-1").await?;

    assert_eq!(stack.store.get_product(&a).await?.unwrap().stock, 6);
    let b_now = stack.store.get_product(&b).await?.unwrap();
    assert_eq!((b_now.stock, b_now.updated_at), (0, at(10)));
    assert_eq!(
        stack.store.get_order(&placed.id).await?,
        Some(placed.clone())
    );
    let record = stack.record("alice", "k1").await?.unwrap();
    assert_eq!(
        (record.order_id, record.request_fingerprint.as_str()),
        (placed.id, "fp-1")
    );
    assert_eq!(
        stack.record("bob", "k1").await?,
        None,
        "keys are scoped to their user"
    );
    Ok(())
}

#[tokio::test]
async fn insufficient_stock_names_the_product_and_writes_nothing() -> anyhow::Result<()> {
    let stack = start().await?;
    let a = stack.product("a", 10).await?;
    let b = stack.product("b", 1).await?;
    let placed = order("o1", "alice", "k1", &[(&a, 2), (&b, 5)], at(10));

    let result = stack.store.place_order(&placed, "fp").await;

    assert!(
        matches!(&result, Err(PlaceOrderError::InsufficientStock { product_id }) if *product_id == b),
        "{result:?}"
    );
    assert_eq!(stack.raw_stock(&a).await?, Some(10));
    assert_eq!(stack.raw_stock(&b).await?, Some(1));
    assert_eq!(stack.store.get_order(&placed.id).await?, None);
    assert_eq!(stack.record("alice", "k1").await?, None);

    let ghost = ProductId::new("no-such-product");
    let result = stack
        .store
        .place_order(
            &order("o2", "alice", "k2", &[(&a, 1), (&ghost, 1)], at(11)),
            "fp",
        )
        .await;
    assert!(
        matches!(&result, Err(PlaceOrderError::InsufficientStock { product_id }) if *product_id == ghost),
        "{result:?}"
    );
    assert_eq!(stack.raw_stock(&a).await?, Some(10));
    Ok(())
}

#[tokio::test]
async fn duplicate_key_wins_over_stock_and_writes_nothing() -> anyhow::Result<()> {
    let stack = start().await?;
    let a = stack.product("a", 5).await?;
    let first = order("o1", "alice", "k1", &[(&a, 2)], at(10));
    stack.store.place_order(&first, "fp-1").await?;

    // Same user and key, and more units than are left: the key must be what is reported.
    let second = order("o2", "alice", "k1", &[(&a, 4)], at(11));
    let result = stack.store.place_order(&second, "fp-2").await;

    assert!(
        matches!(result, Err(PlaceOrderError::DuplicateKey)),
        "{result:?}"
    );
    assert_eq!(stack.raw_stock(&a).await?, Some(3));
    assert_eq!(stack.store.get_order(&second.id).await?, None);
    assert_eq!(
        stack.record("alice", "k1").await?.unwrap().order_id,
        first.id
    );
    let again = order("o3", "alice", "k1", &[(&a, 1)], at(12));
    assert!(matches!(
        stack.store.place_order(&again, "fp-1").await,
        Err(PlaceOrderError::DuplicateKey)
    ));
    assert_eq!(stack.raw_stock(&a).await?, Some(3));
    Ok(())
}

#[tokio::test]
async fn cancel_restores_stock_exactly_once() -> anyhow::Result<()> {
    let stack = start().await?;
    let a = stack.product("a", 10).await?;
    let b = stack.product("b", 10).await?;
    let placed = order("o1", "alice", "k1", &[(&a, 3), (&b, 1)], at(10));
    stack.store.place_order(&placed, "fp").await?;
    let cancelled = placed.cancelled(at(20)).unwrap();

    assert!(stack.store.cancel_order(&cancelled).await?);
    assert!(
        !stack.store.cancel_order(&cancelled).await?,
        "a second cancel changes nothing"
    );

    assert_eq!(stack.raw_stock(&a).await?, Some(10));
    assert_eq!(stack.raw_stock(&b).await?, Some(10));
    let stored = stack.store.get_order(&placed.id).await?.unwrap();
    assert_eq!(stored, cancelled);
    assert_eq!(
        (stored.status, stored.cancelled_at),
        (OrderStatus::Cancelled, Some(at(20)))
    );
    assert!(
        !stack
            .store
            .cancel_order(&order("ghost", "alice", "k9", &[(&a, 1)], at(10)))
            .await?
    );
    assert_eq!(stack.raw_stock(&a).await?, Some(10));
    Ok(())
}

#[tokio::test]
async fn soft_deleted_product_is_hidden_but_cancel_still_restores_its_stock() -> anyhow::Result<()>
{
    let stack = start().await?;
    let a = stack.product("a", 10).await?;
    let placed = order("o1", "alice", "k1", &[(&a, 3)], at(10));
    stack.store.place_order(&placed, "fp").await?;

    assert!(stack.store.delete_product(&a, at(15)).await?);
    assert!(
        !stack.store.delete_product(&a, at(16)).await?,
        "already deleted"
    );
    assert!(
        !stack
            .store
            .delete_product(&ProductId::new("nope"), at(16))
            .await?
    );

    assert_eq!(stack.store.get_product(&a).await?, None);
    assert_eq!(
        stack.store.get_products(std::slice::from_ref(&a)).await?,
        vec![]
    );
    let patch = ProductPatch {
        stock: Some(99),
        ..ProductPatch::default()
    };
    assert_eq!(stack.store.update_product(&a, &patch, at(17)).await?, None);
    let buy = stack
        .store
        .place_order(&order("o2", "alice", "k2", &[(&a, 1)], at(18)), "fp")
        .await;
    assert!(
        matches!(&buy, Err(PlaceOrderError::InsufficientStock { product_id }) if *product_id == a),
        "{buy:?}"
    );

    assert!(
        stack
            .store
            .cancel_order(&placed.cancelled(at(20)).unwrap())
            .await?
    );
    assert_eq!(stack.raw_stock(&a).await?, Some(10));
    assert_eq!(
        stack.store.get_product(&a).await?,
        None,
        "restoring stock does not undelete"
    );
    Ok(())
}

#[tokio::test]
async fn products_are_created_patched_and_read_in_batches_over_100() -> anyhow::Result<()> {
    let stack = start().await?;
    let mut ids = Vec::new();
    for i in 0..130 {
        ids.push(stack.product(&format!("p{i:03}"), i).await?);
    }
    let patch = ProductPatch {
        name: Some("Renamed".into()),
        price: Some(Money::parse("1000").unwrap()),
        stock: None,
    };
    let patched = stack
        .store
        .update_product(&ids[1], &patch, at(5))
        .await?
        .unwrap();
    assert_eq!(
        (
            patched.name.as_str(),
            patched.price.to_string(),
            patched.stock
        ),
        ("Renamed", "1000.00".into(), 1)
    );
    assert_eq!((patched.created_at, patched.updated_at), (at(0), at(5)));
    assert_eq!(stack.store.get_product(&ids[1]).await?, Some(patched));
    assert_eq!(
        stack
            .store
            .update_product(&ProductId::new("nope"), &patch, at(5))
            .await?,
        None
    );
    stack.store.delete_product(&ids[2], at(6)).await?;

    let mut asked: Vec<ProductId> = ids.iter().rev().cloned().collect();
    asked.push(ProductId::new("unknown"));
    asked.push(ids[7].clone());
    let found = stack.store.get_products(&asked).await?;

    let expected: Vec<ProductId> = ids
        .iter()
        .rev()
        .filter(|id| **id != ids[2])
        .cloned()
        .collect();
    assert_eq!(
        found.iter().map(|p| p.id.clone()).collect::<Vec<_>>(),
        expected,
        "asked order, unknown, deleted and repeats left out"
    );
    assert_eq!(found.iter().find(|p| p.id == ids[42]).unwrap().stock, 42);
    Ok(())
}

#[tokio::test]
async fn list_products_pages_without_gaps_and_skips_deleted() -> anyhow::Result<()> {
    let stack = start().await?;
    let mut live = HashSet::new();
    for i in 0..9 {
        let id = stack.product(&format!("p{i}"), 1).await?;
        if i % 3 == 1 {
            stack.store.delete_product(&id, at(1)).await?;
        } else {
            live.insert(id);
        }
    }

    let mut seen = Vec::new();
    let mut cursor = None;
    for _ in 0..20 {
        let page = stack.store.list_products(2, cursor).await?;
        assert!(page.items.len() <= 2);
        seen.extend(page.items.into_iter().map(|p| p.id));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }

    assert!(cursor.is_none(), "listing never ended");
    assert_eq!(seen.len(), live.len(), "no duplicates: {seen:?}");
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), live);
    assert!(matches!(
        stack.store.list_products(2, Some("%%%".into())).await,
        Err(StoreError::InvalidCursor)
    ));
    Ok(())
}

#[tokio::test]
async fn list_orders_is_newest_first_filtered_and_paged_by_user() -> anyhow::Result<()> {
    let stack = start().await?;
    let a = stack.product("a", 1000).await?;
    for i in 0..12 {
        let placed = order(
            &format!("a-{i:02}"),
            "alice",
            &format!("ka{i}"),
            &[(&a, 1)],
            at(100 + i),
        );
        stack.store.place_order(&placed, "fp").await?;
        if i % 4 == 0 {
            stack
                .store
                .place_order(
                    &order(
                        &format!("b-{i:02}"),
                        "bob",
                        &format!("kb{i}"),
                        &[(&a, 1)],
                        at(100 + i),
                    ),
                    "fp",
                )
                .await?;
        }
        if i % 3 == 0 {
            assert!(
                stack
                    .store
                    .cancel_order(&placed.cancelled(at(200)).unwrap())
                    .await?
            );
        }
    }
    let ids = |range: &[i64]| {
        range
            .iter()
            .map(|i| format!("a-{i:02}"))
            .collect::<Vec<_>>()
    };

    let pages = stack.all_orders("alice", None, 5).await?;
    assert_eq!(pages.concat(), ids(&[11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]));
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [5, 5, 2]);

    let pending = stack
        .all_orders("alice", Some(OrderStatus::Pending), 3)
        .await?;
    assert_eq!(pending.concat(), ids(&[11, 10, 8, 7, 5, 4, 2, 1]));
    assert_eq!(pending[0].len(), 3, "the first page is full: {pending:?}");
    let cancelled = stack
        .all_orders("alice", Some(OrderStatus::Cancelled), 10)
        .await?;
    assert_eq!(cancelled, [ids(&[9, 6, 3, 0])]);
    assert_eq!(
        stack.all_orders("bob", None, 50).await?.concat(),
        ["b-08", "b-04", "b-00"]
    );

    let first = stack
        .store
        .list_orders(&OrderQuery {
            user_id: UserId::new("alice"),
            status: None,
            limit: 2,
            cursor: None,
        })
        .await?;
    let alice_cursor = first.next_cursor.expect("more pages");
    let foreign = OrderQuery {
        user_id: UserId::new("bob"),
        status: None,
        limit: 2,
        cursor: Some(alice_cursor),
    };
    assert!(matches!(
        stack.store.list_orders(&foreign).await,
        Err(StoreError::InvalidCursor)
    ));
    let product_cursor = stack.store.list_products(1, None).await?.next_cursor;
    for bad in [Some("garbage!".to_owned()), product_cursor] {
        let query = OrderQuery {
            user_id: UserId::new("alice"),
            status: None,
            limit: 2,
            cursor: bad,
        };
        assert!(matches!(
            stack.store.list_orders(&query).await,
            Err(StoreError::InvalidCursor)
        ));
    }
    Ok(())
}

#[tokio::test]
async fn a_lock_is_exclusive_until_its_lease_ends_and_only_its_owner_unlocks_it()
-> anyhow::Result<()> {
    let stack = start().await?;
    let p = ProductId::new("p");
    let lease = Duration::from_secs(5);

    assert!(stack.store.try_lock(&p, "a", at(0), lease).await?);
    assert!(!stack.store.try_lock(&p, "b", at(1), lease).await?, "held");
    assert!(
        stack
            .store
            .try_lock(&ProductId::new("other"), "b", at(1), lease)
            .await?,
        "locks are per product"
    );
    assert!(
        stack.store.try_lock(&p, "b", at(6), lease).await?,
        "expired lease taken over"
    );

    stack.store.unlock(&p, "a").await?;
    assert!(
        !stack.store.try_lock(&p, "c", at(7), lease).await?,
        "a stale owner's unlock left b's lock alone"
    );
    stack.store.unlock(&p, "b").await?;
    assert!(
        stack.store.try_lock(&p, "c", at(7), lease).await?,
        "free after its owner unlocked"
    );
    stack
        .store
        .unlock(&ProductId::new("never-locked"), "x")
        .await?;
    Ok(())
}

#[tokio::test]
async fn rate_counter_allows_exactly_the_limit_per_window() -> anyhow::Result<()> {
    let stack = start().await?;
    let window = at(0).timestamp() / 60;
    let mut allowed = 0;
    for _ in 0..5 {
        if stack.store.try_count("alice", window, 3).await? {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 3);
    assert!(
        stack.store.try_count("alice", window + 1, 3).await?,
        "a new minute starts over"
    );
    assert!(
        stack.store.try_count("bob", window, 3).await?,
        "subjects are counted apart"
    );
    assert!(!stack.store.try_count("carol", window, 0).await?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_concurrent_buyers_of_five_units_get_exactly_five_orders() -> anyhow::Result<()> {
    let stack = start().await?;
    let p = stack.product("hot", 5).await?;

    let buyers: Vec<_> = (0..30)
        .map(|i| {
            let store = stack.store.clone();
            let placed = order(
                &format!("o{i}"),
                &format!("user{i}"),
                "k",
                &[(&p, 1)],
                at(i),
            );
            tokio::spawn(async move {
                // A conflict is the caller's to retry (the port says so); the handler does the same.
                for _ in 0..20 {
                    match store.place_order(&placed, "fp").await {
                        Err(PlaceOrderError::Conflict) => {
                            tokio::time::sleep(Duration::from_millis(5)).await
                        }
                        other => return other,
                    }
                }
                Err(PlaceOrderError::Conflict)
            })
        })
        .collect();

    let mut placed = 0;
    for buyer in buyers {
        match buyer.await? {
            Ok(()) => placed += 1,
            Err(PlaceOrderError::InsufficientStock { product_id }) => assert_eq!(product_id, p),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(placed, 5);
    assert_eq!(stack.raw_stock(&p).await?, Some(0));
    Ok(())
}

#[tokio::test]
async fn reachable_only_while_the_endpoint_answers() -> anyhow::Result<()> {
    let stack = start().await?;
    assert!(stack.store.reachable().await);

    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await?
        .local_addr()?
        .port();
    let nowhere = DynamoStore::new(client_for(closed), stack.tables.clone());
    assert!(!nowhere.reachable().await);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensure_tables_is_safe_to_run_concurrently_and_sets_up_index_and_ttl() -> anyhow::Result<()>
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(dynoxide::server::serve_on(
        listener,
        dynoxide::Database::memory()?,
    ));
    let client = client_for(port);
    let tables = shared::Config::default().tables;

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
    assert_eq!(names, ["status-updated", "user-orders"]);
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
