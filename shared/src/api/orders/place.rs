//! `POST /orders`: where stock gets decremented.
//!
//! 1. Parse and validate; replay when this user's key already placed an order (200), or refuse a
//!    reused key with another payload (422).
//! 2. Snapshot unit prices and fail fast on unknown products or visibly short stock.
//! 3. With `STOCK_LOCKS=on`, take the per-product locks (ascending id, backoff, token).
//! 4. One TransactWriteItems: conditional decrement per product, the order, the idempotency
//!    record. Its conditions, not the locks, make overselling impossible.
//! 5. Release the locks, enqueue the order for payment, answer 201.
//!
//! A concurrent duplicate never sees a half-placed order: the idempotency record is written in the
//! same transaction as the order, so the loser's transaction fails on the record's condition and
//! it replays the winner's order with 200. `IDEMPOTENCY_IN_PROGRESS` (409, retryable) remains only
//! for a record that the transaction saw but a consistent read then did not: not expected from
//! DynamoDB, answered honestly if it ever happens.

use std::time::Duration;

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use rand::Rng;

use crate::app::{App, Store};
use crate::domain::{Order, OrderId, OrderItem, OrderRequest};
use crate::messages::OrderPlaced;
use crate::ports::{
    Clock, IdempotencyStore, OrderQueue, OrderReader, PlaceOrderError, ProductCatalog,
    StockReserver,
};

use super::super::auth::Caller;
use super::super::request::{header, json_body};
use super::super::{ApiError, response};
use super::locks::lock_products;

/// Transaction attempts when DynamoDB reports a conflict with another transaction.
const COMMIT_ATTEMPTS: u32 = 4;

/// `POST /orders`
pub(crate) async fn create<S: Store, Q: OrderQueue, N, C: Clock>(
    app: &App<S, Q, N, C>,
    caller: &Caller,
    request: &Request,
    trace_id: &str,
) -> Result<Response<Body>, ApiError> {
    let order_request =
        OrderRequest::parse(&json_body(request)?, header(request, "idempotency-key"))?;
    let fingerprint = order_request.fingerprint();
    if let Some(replayed) = replay(&app.store, caller, &order_request, &fingerprint).await? {
        return Ok(replayed);
    }
    let order = price_order(&app.store, caller, &order_request, app.clock.now()).await?;

    let held = if app.locks.enabled {
        let product_ids: Vec<_> = order.items.iter().map(|i| i.product_id.clone()).collect();
        match lock_products(&app.store, &app.clock, &app.locks, &product_ids).await {
            Ok(held) => Some(held),
            // A duplicate that waited on the same locks as the winner replays it rather than failing.
            Err(busy) => {
                return replay(&app.store, caller, &order_request, &fingerprint)
                    .await?
                    .ok_or(busy);
            }
        }
    } else {
        None
    };
    let outcome = match replay(&app.store, caller, &order_request, &fingerprint).await {
        Ok(Some(replayed)) => Ok(Some(replayed)),
        Ok(None) => match commit(&app.store, &order, &fingerprint).await {
            Ok(()) => Ok(None),
            // The record appeared between our check and our transaction: replay the winner.
            Err(ApiError::IdempotencyInProgress) => {
                replay(&app.store, caller, &order_request, &fingerprint)
                    .await
                    .and_then(|replayed| replayed.map(Some).ok_or(ApiError::IdempotencyInProgress))
            }
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    if let Some(held) = held {
        held.release(&app.store).await;
    }
    if let Some(replayed) = outcome? {
        return Ok(replayed);
    }

    tracing::info!(order_id = %order.id, total = %order.total_amount, "order placed");
    let message = OrderPlaced {
        order_id: order.id.clone(),
        user_id: order.user_id.clone(),
        trace_id: trace_id.to_owned(),
    };
    if let Err(e) = app.queue.enqueue(&message).await {
        // The order is committed; failing the request now would invite a retry that only replays.
        // The reconciler re-enqueues PENDING orders that were never picked up.
        tracing::error!(order_id = %order.id, error = %e, "enqueue after commit failed; left to the reconciler");
    }
    Ok(response::data(StatusCode::CREATED, &order))
}

/// 200 with the stored order when this user's key already placed one with the same payload.
async fn replay<S: IdempotencyStore + OrderReader>(
    store: &S,
    caller: &Caller,
    request: &OrderRequest,
    fingerprint: &str,
) -> Result<Option<Response<Body>>, ApiError> {
    let Some(record) = store
        .get_idempotency_record(&caller.user_id, &request.idempotency_key)
        .await?
    else {
        return Ok(None);
    };
    if record.request_fingerprint != fingerprint {
        return Err(ApiError::IdempotencyKeyReused);
    }
    let order = store.get_order(&record.order_id).await?.ok_or_else(|| {
        // The record and the order are written in one transaction; one without the other is corruption.
        ApiError::Unavailable(
            format!(
                "idempotency record points at missing order {}",
                record.order_id
            )
            .into(),
        )
    })?;
    Ok(Some(response::data(StatusCode::OK, &order)))
}

/// The order with unit prices snapshotted from the catalog and the total computed here.
async fn price_order(
    catalog: &impl ProductCatalog,
    caller: &Caller,
    request: &OrderRequest,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Order, ApiError> {
    let ids: Vec<_> = request.lines.iter().map(|l| l.product_id.clone()).collect();
    let products = catalog.get_products(&ids).await?;
    let mut items = Vec::with_capacity(request.lines.len());
    for line in &request.lines {
        let product = products
            .iter()
            .find(|p| p.id == line.product_id)
            .ok_or_else(|| ApiError::NotFound {
                what: "product",
                id: line.product_id.to_string(),
            })?;
        // Fail fast on visibly short stock; the transaction's condition is what actually decides.
        if product.stock < line.quantity.get() {
            return Err(ApiError::InsufficientStock {
                product_id: product.id.clone(),
                requested: line.quantity.get(),
                available: product.stock,
            });
        }
        items.push(OrderItem {
            product_id: line.product_id.clone(),
            quantity: line.quantity,
            unit_price: product.price,
        });
    }
    Ok(Order::place(
        OrderId::generate(),
        caller.user_id.clone(),
        request.idempotency_key.clone(),
        items,
        now,
    ))
}

/// Runs the placement transaction, retrying transaction conflicts with jitter; reports the
/// outcome in the API's terms.
async fn commit<S: StockReserver + ProductCatalog + IdempotencyStore + OrderReader>(
    store: &S,
    order: &Order,
    fingerprint: &str,
) -> Result<(), ApiError> {
    for attempt in 1..=COMMIT_ATTEMPTS {
        match store.place_order(order, fingerprint).await {
            Ok(()) => return Ok(()),
            Err(PlaceOrderError::Conflict) if attempt < COMMIT_ATTEMPTS => {
                let millis = rand::rng().random_range(5..=25 * u64::from(attempt));
                tokio::time::sleep(Duration::from_millis(millis)).await;
            }
            Err(PlaceOrderError::Conflict) => {
                let product_id = order.items[0].product_id.clone();
                return Err(ApiError::LockConflict { product_id });
            }
            Err(PlaceOrderError::DuplicateKey) => return Err(ApiError::IdempotencyInProgress),
            Err(PlaceOrderError::InsufficientStock { product_id }) => {
                let requested = order
                    .items
                    .iter()
                    .find(|i| i.product_id == product_id)
                    .map_or(0, |i| i.quantity.get());
                return Err(match store.get_product(&product_id).await? {
                    Some(product) => ApiError::InsufficientStock {
                        product_id,
                        requested,
                        available: product.stock,
                    },
                    None => ApiError::NotFound {
                        what: "product",
                        id: product_id.to_string(),
                    },
                });
            }
            Err(other) => return Err(other.into()),
        }
    }
    unreachable!("the last attempt always returns")
}
