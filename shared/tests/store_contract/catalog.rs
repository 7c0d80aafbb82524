//! The product catalog: writes and batched reads, and stock layouts created, re-sharded both
//! ways, restocked and deleted, with the per-shard reads.

use shared::domain::{Money, ProductPatch};

use super::*;

contract! {
    products_are_created_patched_and_read_in_batches_over_100,
    a_layout_is_created_re_sharded_both_ways_restocked_and_deleted_exactly,
    a_batch_read_leaves_out_repeats,
    a_batch_read_gives_a_sharded_products_first_shard_only,
}

fn patch(stock: Option<u32>, shards: Option<u16>) -> ProductPatch {
    ProductPatch {
        name: None,
        price: None,
        stock,
        stock_shards: shards,
    }
}

async fn products_are_created_patched_and_read_in_batches_over_100<S: ProductCatalog>(
    store: &S,
) -> anyhow::Result<()> {
    let mut ids = Vec::new();
    for i in 0..130 {
        ids.push(product(store, &format!("p{i:03}"), i, 1).await?);
    }
    let renamed = ProductPatch {
        name: Some("Renamed".into()),
        price: Some(Money::parse("1000").unwrap()),
        stock: None,
        stock_shards: None,
    };
    let patched = store
        .update_product(&ids[1], &renamed, at(5))
        .await?
        .context("p001")?;
    assert_eq!(
        (
            patched.name.as_str(),
            patched.price.to_string(),
            patched.stock
        ),
        ("Renamed", "1000.00".into(), 1)
    );
    assert_eq!((patched.created_at, patched.updated_at), (at(0), at(5)));
    assert_eq!(store.get_product(&ids[1]).await?, Some(patched));
    assert_eq!(
        store
            .update_product(&ProductId::new("nope"), &renamed, at(5))
            .await?,
        None
    );
    assert!(store.delete_product(&ids[2], at(6)).await?);

    let mut asked: Vec<ProductId> = ids.iter().rev().cloned().collect();
    asked.push(ProductId::new("unknown"));
    let found = store.get_products(&asked).await?;

    let expected: Vec<ProductId> = ids
        .iter()
        .rev()
        .filter(|id| **id != ids[2])
        .cloned()
        .collect();
    assert_eq!(
        found.iter().map(|p| p.id.clone()).collect::<Vec<_>>(),
        expected,
        "asked order, unknown and deleted left out"
    );
    assert_eq!(found.iter().find(|p| p.id == ids[42]).unwrap().stock, 42);
    Ok(())
}

async fn a_layout_is_created_re_sharded_both_ways_restocked_and_deleted_exactly<S>(
    store: &S,
) -> anyhow::Result<()>
where
    S: ProductCatalog,
{
    let id = product(store, "hot", 10, 4).await?;
    let created = store.get_product(&id).await?.context("hot")?;
    assert_eq!((created.stock, created.stock_shards), (10, 4));
    assert_eq!(store.shard_stocks(&id, true).await?, Some(vec![3, 3, 2, 2]));
    // The listing sums too, and never shows a shard item as a product.
    let page = store.list_products(10, None).await?;
    assert_eq!(page.items, [created]);
    assert_eq!(store.get_product(&ProductId::new("hot#1")).await?, None);

    for (shards, expected) in [
        (16_u16, vec![1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0]),
        (2, vec![5, 5]),
        (1, vec![10]),
        (3, vec![4, 3, 3]),
    ] {
        let product = store
            .update_product(&id, &patch(None, Some(shards)), at(1))
            .await?
            .context("hot")?;
        assert_eq!((product.stock, product.stock_shards), (10, shards));
        assert_eq!(store.shard_stocks(&id, true).await?, Some(expected));
    }
    let restocked = store
        .update_product(&id, &patch(Some(7), None), at(2))
        .await?
        .context("hot")?;
    assert_eq!(restocked.stock, 7);
    assert_eq!(store.shard_stocks(&id, true).await?, Some(vec![3, 2, 2]));

    assert!(store.delete_product(&id, at(3)).await?);
    assert_eq!(store.get_product(&id).await?, None);
    assert_eq!(store.shard_stocks(&id, true).await?, None);
    assert!(!store.delete_product(&id, at(4)).await?);
    assert_eq!(
        store
            .update_product(&id, &patch(None, Some(2)), at(5))
            .await?,
        None
    );
    Ok(())
}

async fn a_batch_read_leaves_out_repeats<S: ProductCatalog>(store: &S) -> anyhow::Result<()> {
    let a = product(store, "a", 1, 1).await?;
    let b = product(store, "b", 2, 1).await?;

    let found = store
        .get_products(&[b.clone(), a.clone(), b.clone()])
        .await?;

    assert_eq!(found.into_iter().map(|p| p.id).collect::<Vec<_>>(), [b, a]);
    Ok(())
}

async fn a_batch_read_gives_a_sharded_products_first_shard_only<S: ProductCatalog>(
    store: &S,
) -> anyhow::Result<()> {
    let hot = product(store, "hot", 10, 4).await?;

    let found = store.get_products(std::slice::from_ref(&hot)).await?;

    assert_eq!(
        found
            .iter()
            .map(|p| (p.stock, p.stock_shards))
            .collect::<Vec<_>>(),
        [(3, 4)]
    );
    Ok(())
}
