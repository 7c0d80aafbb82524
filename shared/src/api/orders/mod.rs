//! Order endpoints: place, read, list and cancel. Placing and cancelling are use cases
//! (`crate::application`); reads go to the store directly.

use http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::app::{App, Store};
use crate::application::{CancelOrder, PlaceOrder};
use crate::domain::{FieldErrors, Order, OrderId, OrderRequest, OrderStatus, UserId};
use crate::ports::{Clock, Notifier, OrderQuery, OrderQueue, OrderReader, StockReserver};

use super::outcome::IntoHttp;
use super::request::{header, invocation_budget, json_body, page_limit, path_id, query_param};
use super::{ApiError, response};
use crate::auth::Caller;

/// The order if the caller may see it; another user's order is 404 so existence does not leak.
async fn visible_order(
    orders: &impl OrderReader,
    caller: &Caller,
    id: &OrderId,
) -> Result<Order, ApiError> {
    match orders.get_order(id).await? {
        Some(order) if caller.may_see(&order.user_id) => Ok(order),
        _ => Err(ApiError::NotFound {
            what: "order",
            id: id.to_string(),
        }),
    }
}

/// `GET /orders/{id}`
pub(crate) async fn get(
    orders: &impl OrderReader,
    caller: &Caller,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    let id = path_id(request, "order", OrderId::parse)?;
    let order = visible_order(orders, caller, &id).await?;
    Ok(response::data(StatusCode::OK, &order))
}

/// `GET /orders`: the caller's orders, newest first; an admin may name another `user_id`.
pub(crate) async fn list(
    orders: &impl OrderReader,
    caller: &Caller,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    let user_id = match query_param(request, "user_id") {
        // A user id that cannot exist would make a key DynamoDB refuses: 422, never a query.
        Some(other) if caller.is_admin => UserId::parse(&other)
            .map_err(|msg| ApiError::Validation(FieldErrors::single("user_id", msg)))?,
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

/// `POST /orders`: from items or from a hold.
pub(crate) async fn create<S: Store, Q: OrderQueue, N: Notifier, C: Clock>(
    app: &App<S, Q, N, C>,
    caller: &Caller,
    request: &Request,
    trace_id: &str,
) -> Result<Response<Body>, ApiError> {
    let order_request =
        OrderRequest::parse(&json_body(request)?, header(request, "idempotency-key"))?;
    let place = PlaceOrder {
        budget: invocation_budget(request),
        ..app.place_order()
    };
    Ok(place
        .run(&caller.user_id, &order_request, trace_id)
        .await?
        .into_http())
}

/// `POST /orders/{id}/cancel`
pub(crate) async fn cancel<S: OrderReader + StockReserver, N: Notifier, C: Clock>(
    cancel: CancelOrder<'_, S, N, C>,
    caller: &Caller,
    request: &Request,
    trace_id: &str,
) -> Result<Response<Body>, ApiError> {
    let id = path_id(request, "order", OrderId::parse)?;
    Ok(cancel.run(caller, &id, trace_id).await?.into_http())
}
