//! Placing a hold: the product's units, the hold and the user's count of active holds on the
//! product, in one transaction. The units show as taken in the product's live `stock` at once.
//! As for an order, a sharded product's units come from a shard picked at random, and from where
//! they are when that shard is short: a hold is refused only when the product's total is short.

use std::time::Duration;

use crate::domain::{
    Hold, HoldRequest, MAX_ACTIVE_HOLDS_PER_PRODUCT, ShardSplit, UserId, plan_take,
};
use crate::metrics::{self, BusinessMetric};
use crate::ports::{Clock, HoldStore, PlaceHoldError, ProductCatalog};

use super::stock_patience::Patience;
use super::{AppError, WaitBudget};

/// Re-plans over the shards after a short shard while the total covered the hold.
const SHARD_REPLANS: u32 = 8;

/// The ports placing a hold uses.
pub struct PlaceHold<'a, S, C> {
    /// The catalog (price snapshot, live stock) and the holds.
    pub store: &'a S,
    /// The time.
    pub clock: &'a C,
    /// `HOLD_TTL_SECONDS`.
    pub ttl: Duration,
    /// When its waits for a busy shard end at the latest: the invocation's, as create-order's.
    pub budget: WaitBudget,
}

impl<S, C> PlaceHold<'_, S, C>
where
    S: ProductCatalog + HoldStore,
    C: Clock,
{
    /// Holds `request.quantity` units of `request.product_id` for `user`; the new ACTIVE hold.
    pub async fn run(&self, user: &UserId, request: &HoldRequest) -> Result<Hold, AppError> {
        let product_id = &request.product_id;
        let not_found = || AppError::NotFound {
            what: "product",
            id: product_id.to_string(),
        };
        // The pricing read of an order: one item, however many shards the product has.
        let product = self
            .store
            .get_products(std::slice::from_ref(product_id))
            .await?
            .pop()
            .ok_or_else(not_found)?;
        let short = |available| AppError::InsufficientStock {
            product_id: product_id.clone(),
            requested: request.quantity.get(),
            available,
        };
        // Fail fast on visibly short stock (all of it in one item unless sharded); the
        // transaction's condition decides.
        if product.stock_shards <= 1 && product.stock < request.quantity.get() {
            return Err(short(product.stock));
        }
        let mut hold = Hold::place(
            user.clone(),
            product_id.clone(),
            request.quantity,
            product.price,
            self.clock.now(),
            self.ttl,
        );
        hold.shards = ShardSplit::single(
            rand::random_range(0..product.stock_shards.max(1)),
            request.quantity.get(),
        );
        let mut patience = Patience::start(self.budget);
        let mut replans = 0;
        loop {
            match self
                .store
                .place_hold(&hold, MAX_ACTIVE_HOLDS_PER_PRODUCT)
                .await
            {
                Ok(()) => {
                    tracing::info!(hold_id = %hold.id, product_id = %product_id, quantity = hold.quantity.get(), "hold placed");
                    metrics::count(BusinessMetric::HoldsPlaced);
                    return Ok(hold);
                }
                // A busy shard (throttled, its journal full, in a transaction): another shard, or
                // a short wait (`stock_patience`).
                Err(PlaceHoldError::Conflict) => {
                    let Some(pause) = patience.next_pause() else {
                        return Err(AppError::LockConflict {
                            product_id: product_id.clone(),
                        });
                    };
                    if let Some(moved) = hold.shards.moved(
                        request.quantity.get(),
                        product.stock_shards,
                        &[],
                        rand::random_range(0..usize::MAX),
                    ) {
                        hold.shards = moved;
                    }
                    tokio::time::sleep(pause).await;
                }
                Err(PlaceHoldError::LimitReached) => {
                    return Err(AppError::HoldLimitReached {
                        product_id: product_id.clone(),
                        limit: MAX_ACTIVE_HOLDS_PER_PRODUCT,
                    });
                }
                Err(PlaceHoldError::InsufficientStock) => {
                    let Some(stocks) = self.store.shard_stocks(product_id, true).await? else {
                        return Err(not_found());
                    };
                    let plan = plan_take(
                        &stocks,
                        request.quantity.get(),
                        rand::random_range(0..usize::MAX),
                    );
                    match plan {
                        Some(_) if replans == SHARD_REPLANS => {
                            return Err(AppError::LockConflict {
                                product_id: product_id.clone(),
                            });
                        }
                        Some(split) => {
                            replans += 1;
                            hold.shards = split;
                        }
                        None => return Err(short(stocks.iter().sum())),
                    }
                }
                Err(PlaceHoldError::Store(error)) => return Err(error.into()),
            }
        }
    }
}
