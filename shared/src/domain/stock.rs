//! Stock shards: a hot product's units split over several items, each its own DynamoDB partition
//! (docs/scaling.md). Shard 0 is the product item itself, so a product with one
//! shard is stored and costs exactly as an unsharded one. This module holds the arithmetic: where
//! an order's units come from, how a total is spread, and how a split is written down so the same
//! units go back to the same shards.

use std::fmt;

use super::ProductId;

/// One stock item of a product: shard 0 is the product item, shard k > 0 its own item.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StockShard {
    /// The product.
    pub product_id: ProductId,
    /// The shard, `0..stock_shards`.
    pub shard: u16,
}

impl StockShard {
    /// The product item's own stock.
    pub fn first(product_id: ProductId) -> Self {
        StockShard {
            product_id,
            shard: 0,
        }
    }
}

/// The product id for shard 0 and `<product id>#<shard>` for the others: the shard item's key and
/// its lock's key. Product ids never contain `#` (they are UUIDs).
impl fmt::Display for StockShard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.shard {
            0 => write!(f, "{}", self.product_id),
            k => write!(f, "{}#{k}", self.product_id),
        }
    }
}

/// Where a line's (or a hold's) units were taken from: `(shard, units)` parts in ascending shard
/// order. Empty means all from shard 0, the only layout of an unsharded product.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardSplit(Vec<(u16, u32)>);

impl ShardSplit {
    /// Every unit from one shard.
    pub fn single(shard: u16, units: u32) -> Self {
        Self::from_parts(vec![(shard, units)])
    }

    /// Parts merged per shard, empty ones dropped, sorted; all in shard 0 is the empty split.
    pub fn from_parts(mut parts: Vec<(u16, u32)>) -> Self {
        parts.retain(|(_, units)| *units > 0);
        parts.sort_unstable();
        let mut merged: Vec<(u16, u32)> = Vec::with_capacity(parts.len());
        for (shard, units) in parts {
            match merged.last_mut() {
                Some((last, total)) if *last == shard => *total += units,
                _ => merged.push((shard, units)),
            }
        }
        if matches!(merged.as_slice(), [(0, _)]) {
            merged.clear();
        }
        ShardSplit(merged)
    }

    /// The parts of a line of `quantity` units: `[(0, quantity)]` for the empty split.
    pub fn parts(&self, quantity: u32) -> Vec<(u16, u32)> {
        if self.0.is_empty() {
            vec![(0, quantity)]
        } else {
            self.0.clone()
        }
    }

    /// Whether every unit is in shard 0 (nothing to write down).
    pub fn is_first_only(&self) -> bool {
        self.0.is_empty()
    }

    /// The one shard every unit comes from; `None` for a split over several.
    pub fn single_shard(&self, quantity: u32) -> Option<u16> {
        match self.parts(quantity).as_slice() {
            [(shard, _)] => Some(*shard),
            _ => None,
        }
    }

    /// A split from one shard moved to another of `shards`, not in `avoid`: the `pick`-th of
    /// them (wrapping). `None` when there is none, or the split is over several shards.
    pub fn moved(&self, quantity: u32, shards: u16, avoid: &[u16], pick: usize) -> Option<Self> {
        let current = self.single_shard(quantity)?;
        let others: Vec<u16> = (0..shards)
            .filter(|k| *k != current && !avoid.contains(k))
            .collect();
        if others.is_empty() {
            return None;
        }
        Some(Self::single(others[pick % others.len()], quantity))
    }
}

/// How `total` units spread over `shards` shards: as even as can be, the remainder on the first.
pub fn spread(total: u32, shards: u16) -> Vec<u32> {
    let n = u32::from(shards.max(1));
    (0..n)
        .map(|k| total / n + u32::from(k < total % n))
        .collect()
}

/// Where `quantity` units come from, given each shard's stock: one shard that has enough (the
/// `pick`-th of them, wrapping, so callers spread load with a random `pick`), else the fewest
/// shards, largest first. `None` when the shards together hold fewer than `quantity`.
pub fn plan_take(stocks: &[u32], quantity: u32, pick: usize) -> Option<ShardSplit> {
    let total: u64 = stocks.iter().map(|s| u64::from(*s)).sum();
    if total < u64::from(quantity) {
        return None;
    }
    let enough: Vec<u16> = (0..stocks.len())
        .filter(|k| stocks[*k] >= quantity)
        .filter_map(|k| u16::try_from(k).ok())
        .collect();
    if !enough.is_empty() {
        return Some(ShardSplit::single(enough[pick % enough.len()], quantity));
    }
    let mut order: Vec<usize> = (0..stocks.len()).collect();
    order.sort_by_key(|k| std::cmp::Reverse(stocks[*k]));
    let mut parts = Vec::new();
    let mut missing = quantity;
    for k in order {
        if missing == 0 {
            break;
        }
        let units = stocks[k].min(missing);
        parts.push((u16::try_from(k).ok()?, units));
        missing -= units;
    }
    Some(ShardSplit::from_parts(parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moved_split_takes_every_unit_from_another_shard() {
        for current in 0..8u16 {
            let split = ShardSplit::single(current, 3);
            let mut seen = std::collections::HashSet::new();
            for pick in 0..14 {
                let moved = split.moved(3, 8, &[5], pick).expect("6 others");
                let parts = moved.parts(3);
                let [(shard, 3)] = parts.as_slice() else {
                    panic!("{moved:?} is not one shard's 3 units");
                };
                assert_ne!(*shard, current);
                assert_ne!(*shard, 5, "an avoided shard is not picked");
                assert!(*shard < 8);
                seen.insert(*shard);
            }
            let expected = if current == 5 { 7 } else { 6 };
            assert_eq!(seen.len(), expected, "every other shard is reachable");
        }
        let one = ShardSplit::single(0, 2);
        assert_eq!(
            one.moved(2, 1, &[], 5),
            None,
            "a product of one shard has no other"
        );
        assert_eq!(ShardSplit::single(1, 2).moved(2, 3, &[0, 2], 0), None);
        let several = ShardSplit::from_parts(vec![(1, 1), (2, 1)]);
        assert_eq!(
            several.moved(2, 8, &[], 3),
            None,
            "a split over several shards stays"
        );
        assert_eq!(several.single_shard(2), None);
        assert_eq!(one.single_shard(2), Some(0));
    }

    #[test]
    fn shard_zero_is_the_product_item_and_others_have_their_own_key() {
        let id = ProductId::new("p");
        assert_eq!(StockShard::first(id.clone()).to_string(), "p");
        assert_eq!(
            StockShard {
                product_id: id,
                shard: 7
            }
            .to_string(),
            "p#7"
        );
    }

    #[test]
    fn a_split_all_in_shard_zero_is_empty_and_parts_merge() {
        assert!(ShardSplit::single(0, 5).is_first_only());
        assert_eq!(ShardSplit::single(0, 5).parts(5), vec![(0, 5)]);
        let split = ShardSplit::from_parts(vec![(3, 1), (1, 2), (3, 4), (2, 0)]);
        assert_eq!(split.parts(7), vec![(1, 2), (3, 5)]);
    }

    #[test]
    fn spread_is_even_and_exact() {
        assert_eq!(spread(10, 4), vec![3, 3, 2, 2]);
        assert_eq!(spread(0, 3), vec![0, 0, 0]);
        assert_eq!(spread(5, 1), vec![5]);
        for (total, shards) in [(1_000_000_000, 64), (63, 64), (12_345, 16)] {
            assert_eq!(spread(total, shards).iter().sum::<u32>(), total);
        }
    }

    #[test]
    fn a_plan_takes_from_one_shard_with_enough_or_from_the_fewest_largest() {
        assert_eq!(plan_take(&[5, 1, 5], 3, 0), Some(ShardSplit::single(0, 3)));
        assert_eq!(plan_take(&[5, 1, 5], 3, 1), Some(ShardSplit::single(2, 3)));
        assert_eq!(
            plan_take(&[2, 4, 3], 8, 0).unwrap().parts(8),
            vec![(0, 1), (1, 4), (2, 3)]
        );
        assert_eq!(
            plan_take(&[2, 4, 3], 6, 0).unwrap().parts(6),
            vec![(1, 4), (2, 2)]
        );
        assert_eq!(plan_take(&[2, 4, 3], 10, 0), None);
        assert_eq!(plan_take(&[0], 1, 0), None);
    }
}
