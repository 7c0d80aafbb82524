//! The sweep (the reconciler): every journal entry older than the sweep delay belongs to a writer
//! that died or failed between its steps, and is finished or undone here (the module above says
//! how each kind of entry is settled).

use chrono::{DateTime, Utc};

use super::super::items::{self, Item, RESTORE_TOKEN, TAKE_TOKEN};
use super::super::{DynamoStore, sdk_failure};
use super::{Entry, Owner, RESTORE, TAKE, TOKEN_LEN};
use crate::domain::{OrderId, OrderStatus, ProductId, StockShard, UserId};
use crate::ports::{JournalSweep, StockJournal, StockTaken, StoreError, UnsentOrder};

/// The stock shard an item of the products table is: a shard item names its product in
/// `shard_of` and its shard after the last `#` of its id; any other item is shard 0.
fn shard_of_item(item: &Item) -> Option<StockShard> {
    let id = item.get("id")?.as_s().ok()?;
    match item.get("shard_of").and_then(|v| v.as_s().ok()) {
        None => Some(StockShard::first(ProductId::new(id.as_str()))),
        Some(product) => Some(StockShard {
            product_id: ProductId::new(product.as_str()),
            shard: id.rsplit_once('#')?.1.parse().ok()?,
        }),
    }
}

impl StockJournal for DynamoStore {
    async fn sweep_stock_journal(
        &self,
        older_than: DateTime<Utc>,
    ) -> Result<JournalSweep, StoreError> {
        let cutoff = older_than.timestamp_millis();
        let mut sweep = JournalSweep::default();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.tables.products)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_failure)?;
            for item in page.items() {
                let Some(shard) = shard_of_item(item) else {
                    continue;
                };
                for (name, value) in item {
                    if !name.starts_with('~') {
                        continue;
                    }
                    let Some(entry) = value.as_s().ok().and_then(|v| Entry::parse(v)) else {
                        tracing::warn!(%shard, name, "an unreadable stock journal entry is left alone");
                        continue;
                    };
                    if entry.at_ms > cutoff {
                        continue;
                    }
                    self.settle_entry(&shard, name, &entry, &mut sweep).await?;
                }
            }
            match page.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(sweep),
            }
        }
    }
}

impl DynamoStore {
    /// Finishes what the writer of one stale entry left undone.
    async fn settle_entry(
        &self,
        shard: &StockShard,
        name: &str,
        entry: &Entry,
        sweep: &mut JournalSweep,
    ) -> Result<(), StoreError> {
        let Some(token) = name.get(2..2 + TOKEN_LEN) else {
            return Ok(());
        };
        if name.starts_with(TAKE) {
            let owned = match &entry.owner {
                Owner::Order(id) => match self.order_of_take(id).await? {
                    Some((found, _)) if found != token => false,
                    // Placed, its message perhaps never sent: the caller sends it, then releases.
                    Some((_, Some(user_id))) => {
                        sweep.unsent.push(UnsentOrder {
                            order_id: id.clone(),
                            user_id,
                            placed_at: DateTime::from_timestamp_millis(entry.at_ms)
                                .unwrap_or_default(),
                            taken: StockTaken {
                                token: token.to_owned(),
                                shards: vec![(shard.clone(), entry.units)],
                            },
                        });
                        return Ok(());
                    }
                    Some((_, None)) => true,
                    None => false,
                },
                Owner::Hold(_) => {
                    self.owner_token(&entry.owner, TAKE_TOKEN).await? == Some(token.to_owned())
                }
            };
            if owned {
                if self.remove_entry(shard, name).await? {
                    sweep.released += 1;
                }
            } else if self.give_back(shard, entry.units, name).await? {
                tracing::warn!(%shard, owner = ?entry.owner, units = entry.units, "a stock take whose owner was never written: units given back");
                sweep.undone += 1;
            }
        } else if name.starts_with(RESTORE) {
            let committed =
                self.owner_token(&entry.owner, RESTORE_TOKEN).await? == Some(token.to_owned());
            if committed {
                if self.give_back(shard, entry.units, name).await? {
                    tracing::warn!(%shard, owner = ?entry.owner, units = entry.units, "a committed stock restore left unapplied: units given back");
                    sweep.applied += 1;
                }
            } else if self.remove_entry(shard, name).await? {
                sweep.dropped += 1;
            }
        }
        Ok(())
    }

    /// The take token of order `id`, read consistently, and its user while it is PENDING (its
    /// message may never have been sent); `None` when the order is unknown or has no token.
    async fn order_of_take(
        &self,
        id: &OrderId,
    ) -> Result<Option<(String, Option<UserId>)>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.tables.orders)
            .set_key(Some(items::order_key(id)))
            .consistent_read(true)
            .projection_expression("#t, #s, user_id")
            .expression_attribute_names("#t", TAKE_TOKEN)
            .expression_attribute_names("#s", "status")
            .send()
            .await
            .map_err(sdk_failure)?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        let Some(token) = text(TAKE_TOKEN) else {
            return Ok(None);
        };
        let pending = text("status").as_deref() == Some(OrderStatus::Pending.as_str());
        Ok(Some((
            token,
            text("user_id").filter(|_| pending).map(UserId::new),
        )))
    }
}
