//! Placing a hold: the product's units, the hold and the user's count of active holds on the
//! product, in one transaction. The units show as taken in the product's live `stock` at once.

use std::time::Duration;

use crate::domain::{Hold, HoldRequest, MAX_ACTIVE_HOLDS_PER_PRODUCT, UserId};
use crate::ports::{Clock, HoldStore, PlaceHoldError, ProductCatalog};
use crate::retry::full_jitter;

use super::AppError;

/// Transaction attempts when DynamoDB reports a conflict with another transaction.
const ATTEMPTS: u32 = 4;
/// First pause before a retry; doubles per retry, with full jitter.
const BACKOFF: Duration = Duration::from_millis(10);
/// Longest pause before a retry.
const BACKOFF_CAP: Duration = Duration::from_millis(200);

/// The ports placing a hold uses.
pub struct PlaceHold<'a, S, C> {
    /// The catalog (price snapshot, live stock) and the holds.
    pub store: &'a S,
    /// The time.
    pub clock: &'a C,
    /// `HOLD_TTL_SECONDS`.
    pub ttl: Duration,
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
        let product = self
            .store
            .get_product(product_id)
            .await?
            .ok_or_else(not_found)?;
        let short = |available| AppError::InsufficientStock {
            product_id: product_id.clone(),
            requested: request.quantity.get(),
            available,
        };
        // Fail fast on visibly short stock; the transaction's condition decides.
        if product.stock < request.quantity.get() {
            return Err(short(product.stock));
        }
        let hold = Hold::place(
            user.clone(),
            product_id.clone(),
            request.quantity,
            product.price,
            self.clock.now(),
            self.ttl,
        );
        for attempt in 1..=ATTEMPTS {
            match self
                .store
                .place_hold(&hold, MAX_ACTIVE_HOLDS_PER_PRODUCT)
                .await
            {
                Ok(()) => {
                    tracing::info!(hold_id = %hold.id, product_id = %product_id, quantity = hold.quantity.get(), "hold placed");
                    return Ok(hold);
                }
                Err(PlaceHoldError::Conflict) if attempt < ATTEMPTS => {
                    tokio::time::sleep(full_jitter(BACKOFF, attempt, BACKOFF_CAP)).await;
                }
                Err(PlaceHoldError::Conflict) => {
                    return Err(AppError::LockConflict {
                        product_id: product_id.clone(),
                    });
                }
                Err(PlaceHoldError::LimitReached) => {
                    return Err(AppError::HoldLimitReached {
                        product_id: product_id.clone(),
                        limit: MAX_ACTIVE_HOLDS_PER_PRODUCT,
                    });
                }
                Err(PlaceHoldError::InsufficientStock) => {
                    return Err(match self.store.get_product(product_id).await? {
                        Some(product) => short(product.stock),
                        None => not_found(),
                    });
                }
                Err(PlaceHoldError::Store(error)) => return Err(error.into()),
            }
        }
        unreachable!("the last attempt always returns")
    }
}
