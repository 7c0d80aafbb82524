//! Stock layouts against Dynoxide: create, re-shard both ways, restock, delete, and the
//! per-shard reads, each through the SDK as in AWS.

use super::*;

fn patch(stock: Option<u32>, shards: Option<u16>) -> ProductPatch {
    ProductPatch {
        name: None,
        price: None,
        stock,
        stock_shards: shards,
    }
}

#[tokio::test]
async fn a_layout_is_created_re_sharded_both_ways_restocked_and_deleted_exactly()
-> anyhow::Result<()> {
    let stack = start().await?;
    let id = ProductId::new("hot");
    let created = stack
        .store
        .create_product(
            id.clone(),
            NewProduct {
                name: "Hot".into(),
                price: price(),
                stock: 10,
                stock_shards: 4,
            },
            at(0),
        )
        .await?;
    assert_eq!((created.stock, created.stock_shards), (10, 4));
    assert_eq!(
        stack.store.shard_stocks(&id, true).await?,
        Some(vec![3, 3, 2, 2])
    );
    assert_eq!(stack.store.get_product(&id).await?.unwrap().stock, 10);
    // The listing sums too, and never shows a shard item as a product.
    let page = stack.store.list_products(10, None).await?;
    assert_eq!(page.items.len(), 1, "{:?}", page.items);
    assert_eq!(page.items[0].stock, 10);
    // A shard item is not a product of its own.
    assert_eq!(
        stack.store.get_product(&ProductId::new("hot#1")).await?,
        None
    );

    for (shards, expected) in [
        (16_u16, vec![1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0]),
        (2, vec![5, 5]),
        (1, vec![10]),
        (3, vec![4, 3, 3]),
    ] {
        let product = stack
            .store
            .update_product(&id, &patch(None, Some(shards)), at(1))
            .await?
            .unwrap();
        assert_eq!((product.stock, product.stock_shards), (10, shards));
        assert_eq!(stack.store.shard_stocks(&id, true).await?, Some(expected));
    }
    let restocked = stack
        .store
        .update_product(&id, &patch(Some(7), None), at(2))
        .await?
        .unwrap();
    assert_eq!(restocked.stock, 7);
    assert_eq!(
        stack.store.shard_stocks(&id, true).await?,
        Some(vec![3, 2, 2])
    );

    assert!(stack.store.delete_product(&id, at(3)).await?);
    assert_eq!(stack.store.get_product(&id).await?, None);
    assert!(!stack.store.delete_product(&id, at(4)).await?);
    assert_eq!(
        stack
            .store
            .update_product(&id, &patch(None, Some(2)), at(5))
            .await?,
        None
    );
    Ok(())
}
