//! The HTTP API: one module per endpoint, plus what every endpoint shares (authentication, rate
//! limiting, trace ids, errors to HTTP). The Lambda binaries and the local gateway both call
//! [`handle`] with an API Gateway HTTP API (payload v2) request.

mod error;
mod holds;
mod orders;
mod outcome;
mod products;
mod rate_limit;
mod request;
mod response;
mod system;
mod webhook;

use lambda_http::{Body, Request, Response};
use tracing::Instrument;

use crate::app::{App, Store};
use crate::application::{AppError, PlaceHold, ReceivePaymentWebhook};
use crate::ports::{Clock, Notifier, OrderQueue, Reachable};

pub use crate::auth;
pub use crate::function::Endpoint;
pub use error::ApiError;
pub use request::TRACE_ID_HEADER;

/// Serves one request: trace id, size limit, authentication, rate limit, the endpoint, and the
/// one mapping of errors to HTTP. Never fails: every error becomes a JSON error response.
pub async fn handle<S, Q, N, C>(
    app: &App<S, Q, N, C>,
    endpoint: Endpoint,
    request: Request,
) -> Response<Body>
where
    S: Store,
    Q: OrderQueue + Reachable,
    N: Notifier,
    C: Clock,
{
    let trace_id = request::trace_id(&request);
    let span = tracing::info_span!("request", %trace_id, route = endpoint.route_key());
    async {
        let result = serve(app, endpoint, &request, &trace_id).await;
        let response = match result {
            Ok(response) => response,
            Err(error) => {
                error.log();
                error.into_response(&trace_id)
            }
        };
        tracing::info!(status = response.status().as_u16(), "served");
        response::with_trace_id(response, &trace_id)
    }
    .instrument(span)
    .await
}

async fn serve<S, Q, N, C>(
    app: &App<S, Q, N, C>,
    endpoint: Endpoint,
    request: &Request,
    trace_id: &str,
) -> Result<Response<Body>, ApiError>
where
    S: Store,
    Q: OrderQueue + Reachable,
    N: Notifier,
    C: Clock,
{
    request::check_size(request)?;
    // Neither takes a bearer token: health is public, the provider signs its webhooks.
    match endpoint {
        Endpoint::Health => return Ok(system::health(&app.store, &app.queue).await),
        Endpoint::PaymentWebhook => {
            let receive = ReceivePaymentWebhook {
                store: &app.store,
                notifier: &app.notifier,
                clock: &app.clock,
            };
            let secret = app.webhook_secret.as_deref().ok_or_else(|| {
                ApiError::App(AppError::internal(
                    "WEBHOOK_SECRET is not configured".into(),
                ))
            })?;
            return webhook::receive(receive, secret, request, trace_id).await;
        }
        _ => {}
    }
    let caller = app
        .auth
        .verify_header(request::header(request, "authorization"));
    let subject = match &caller {
        Ok(caller) => format!("user:{}", caller.user_id),
        Err(_) => format!("ip:{}", request::source_ip(request)),
    };
    rate_limit::check(&app.store, &app.clock, &subject, app.rate_limit_per_minute).await?;
    let (user, admin) = (request::require_user, request::require_admin);
    match endpoint {
        Endpoint::Health | Endpoint::PaymentWebhook => unreachable!("answered above"),
        Endpoint::ListProducts => products::list(&app.store, request).await,
        Endpoint::GetProduct => products::get(&app.store, request).await,
        Endpoint::CreateProduct => {
            products::create(&app.store, &app.clock, admin(&caller)?, request).await
        }
        Endpoint::UpdateProduct => {
            products::update(&app.store, &app.clock, admin(&caller)?, request).await
        }
        Endpoint::DeleteProduct => {
            products::delete(&app.store, &app.clock, admin(&caller)?, request).await
        }
        Endpoint::CreateOrder => orders::create(app, user(&caller)?, request, trace_id).await,
        Endpoint::GetOrder => orders::get(&app.store, user(&caller)?, request).await,
        Endpoint::ListOrders => orders::list(&app.store, user(&caller)?, request).await,
        Endpoint::CancelOrder => {
            let caller = user(&caller)?;
            orders::cancel(
                &app.store,
                &app.notifier,
                &app.clock,
                caller,
                request,
                trace_id,
            )
            .await
        }
        Endpoint::CreateHold => {
            let place = PlaceHold {
                store: &app.store,
                clock: &app.clock,
                ttl: app.hold_ttl,
            };
            holds::create(place, user(&caller)?, request).await
        }
        Endpoint::GetHold => holds::get(&app.store, user(&caller)?, request).await,
    }
}

#[cfg(test)]
mod tests;
