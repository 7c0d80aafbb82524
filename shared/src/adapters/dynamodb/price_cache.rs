//! The products orders are priced from, kept for [`PRICE_TTL`] by each function instance.
//!
//! Every order reads its products for the price, and in a flash sale every order reads the same
//! product item, shard 0: one partition key serves at most 3,000 read units a second, so the read
//! alone would cap a product near 6,000 orders a second (eventually consistent, half a unit each)
//! whatever its stock shards. Kept for a second, the item is read about once a second per warm
//! instance instead. Only products with stock shards are kept, the ones set up for a hot sale:
//! their orders never refuse on the stock a price read shows (each shard's conditional write
//! decides), and `ProductCatalog::get_products` already promises a read that "may lag a change by
//! a moment", so a price change reaches new orders within the second. An unsharded product is
//! read every time, so its fail-fast stock check sees a restock or a cancel at once
//! (docs/decisions.md, "Stock outside transactions").

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::{Product, ProductId};

/// How long a product read for its price is reused.
pub(super) const PRICE_TTL: Duration = Duration::from_secs(1);

/// Most products kept; past it the cache starts afresh (a shop's hot products fit many times).
const CAPACITY: usize = 4_096;

/// Products read for prices, with when they were read.
#[derive(Debug, Default)]
pub(super) struct PriceCache {
    entries: Mutex<HashMap<ProductId, (Instant, Product)>>,
}

impl PriceCache {
    /// The products among `ids` read less than [`PRICE_TTL`] ago.
    pub(super) fn fresh(&self, ids: &[&ProductId]) -> HashMap<ProductId, Product> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        ids.iter()
            .filter_map(|id| {
                let (read, product) = entries.get(*id)?;
                (now.saturating_duration_since(*read) < PRICE_TTL)
                    .then(|| ((*id).clone(), product.clone()))
            })
            .collect()
    }

    /// Keeps a product just read.
    pub(super) fn keep(&self, product: &Product) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(product.id.clone(), (Instant::now(), product.clone()));
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::domain::Money;

    fn product(id: &str) -> Product {
        Product {
            id: ProductId::new(id),
            name: "Lamp".into(),
            price: Money::ZERO,
            stock: 1,
            stock_shards: 1,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn a_product_is_reused_within_the_ttl_and_only_if_kept() {
        let cache = PriceCache::default();
        let (a, b) = (ProductId::new("a"), ProductId::new("b"));
        cache.keep(&product("a"));

        let fresh = cache.fresh(&[&a, &b]);

        assert_eq!(fresh.len(), 1);
        assert_eq!(fresh[&a].id, a);
    }

    #[test]
    fn an_entry_older_than_the_ttl_is_read_again() {
        let cache = PriceCache::default();
        let a = ProductId::new("a");
        cache.entries.lock().unwrap().insert(
            a.clone(),
            (Instant::now().checked_sub(PRICE_TTL).unwrap(), product("a")),
        );

        assert!(cache.fresh(&[&a]).is_empty());
    }
}
