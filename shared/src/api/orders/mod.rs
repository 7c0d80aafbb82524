//! Order endpoints: place (in `place`), read, list and cancel.

mod locks;
mod place;

use http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::domain::{FieldErrors, Order, OrderId, OrderStatus, UserId};
use crate::messages::OrderEvent;
use crate::ports::{Clock, Notifier, OrderQuery, OrderReader, StockReserver};

use super::auth::Caller;
use super::request::{page_limit, path_param, query_param};
use super::{ApiError, response};

pub(crate) use place::create;

/// The order if the caller may see it; another user's order is 404 so existence does not leak.
async fn visible_order(
    orders: &impl OrderReader,
    caller: &Caller,
    id: String,
) -> Result<Order, ApiError> {
    match orders.get_order(&OrderId::new(&id)).await? {
        Some(order) if caller.is_admin || order.user_id == caller.user_id => Ok(order),
        _ => Err(ApiError::NotFound { what: "order", id }),
    }
}

/// `GET /orders/{id}`
pub(crate) async fn get(
    orders: &impl OrderReader,
    caller: &Caller,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    let order = visible_order(orders, caller, path_param(request, "id")?).await?;
    Ok(response::data(StatusCode::OK, &order))
}

/// `GET /orders`: the caller's orders, newest first; an admin may name another `user_id`.
pub(crate) async fn list(
    orders: &impl OrderReader,
    caller: &Caller,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    let user_id = match query_param(request, "user_id") {
        Some(other) if caller.is_admin => UserId::new(other),
        Some(other) if other != caller.user_id.as_str() => {
            return Err(ApiError::Forbidden(
                "only admins may list another user's orders",
            ));
        }
        _ => caller.user_id.clone(),
    };
    let status = query_param(request, "status")
        .map(|raw| {
            raw.parse::<OrderStatus>()
                .map_err(|msg| ApiError::Validation(FieldErrors::single("status", msg)))
        })
        .transpose()?;
    let query = OrderQuery {
        user_id,
        status,
        limit: page_limit(request)?,
        cursor: query_param(request, "cursor"),
    };
    let page = orders.list_orders(&query).await?;
    Ok(response::page(&page.items, page.next_cursor.as_deref()))
}

/// `POST /orders/{id}/cancel`: PENDING -> CANCELLED with stock restored in the same transaction.
/// Cancelling a cancelled order answers 200 again; any other status is 422.
pub(crate) async fn cancel<S: OrderReader + StockReserver>(
    store: &S,
    notifier: &impl Notifier,
    clock: &impl Clock,
    caller: &Caller,
    request: &Request,
    trace_id: &str,
) -> Result<Response<Body>, ApiError> {
    let order = visible_order(store, caller, path_param(request, "id")?).await?;
    let settled = match order.cancelled(clock.now()) {
        Some(cancelled) if store.cancel_order(&cancelled).await? => {
            tracing::info!(order_id = %order.id, "order cancelled, stock restored");
            // Only the cancel that won the conditional write announces it: one event per change.
            if let Some(event) = OrderEvent::for_order(&cancelled, None, trace_id) {
                notifier.notify(&cancelled.user_id, &event).await;
            }
            cancelled
        }
        // Lost a race (another cancel, or the consumer moved it on): report what won.
        Some(_) => store
            .get_order(&order.id)
            .await?
            .ok_or_else(|| ApiError::NotFound {
                what: "order",
                id: order.id.to_string(),
            })?,
        None => order,
    };
    match settled.status {
        OrderStatus::Cancelled => Ok(response::data(StatusCode::OK, &settled)),
        status => Err(ApiError::NotCancellable { status }),
    }
}
