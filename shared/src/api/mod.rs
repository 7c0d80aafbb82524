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
pub mod routes;
mod system;
mod webhook;

use lambda_http::{Body, Request, Response};
use tracing::Instrument;

use crate::app::{App, Store};
use crate::auth::AuthError;
use crate::metrics::{self, BusinessMetric};
use crate::ports::{Clock, Notifier, OrderQueue, Reachable};

pub use crate::auth;
pub use crate::function::Endpoint;
pub use error::ApiError;
pub use request::TRACE_ID_HEADER;
pub use routes::{Call, Route};

/// Serves one request on `endpoint`: what the local gateway calls, with every route compiled in.
/// A Lambda binary calls [`handle_route`] with its one [`Route`] instead.
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
    // Generated from the one list of endpoints: a variant without its `routes::` type fails here.
    macro_rules! dispatch {
        ({ $($variant:ident = $route_key:literal => $name:literal,)* }) => {
            match endpoint {
                $(Endpoint::$variant => {
                    handle_route::<routes::$variant, _, _, _, _>(app, request).await
                })*
            }
        };
    }
    crate::function::http_endpoints!(dispatch)
}

/// Serves one request on `R`: trace id, size limit, authentication and rate limit (except on the
/// public routes), the route, and the one mapping of errors to HTTP. Never fails: every error
/// becomes a JSON error response.
pub async fn handle_route<R, S, Q, N, C>(app: &App<S, Q, N, C>, request: Request) -> Response<Body>
where
    R: Route,
    S: Store,
    Q: OrderQueue + Reachable,
    N: Notifier,
    C: Clock,
{
    let xray = request::trace_header(&request);
    let trace_id = request::trace_id(&request, xray.as_ref());
    let span = tracing::info_span!("request", %trace_id, route = R::ENDPOINT.route_key());
    let serve = async {
        let result = admit::<R, _, _, _, _>(app, &request, &trace_id).await;
        let result = match result {
            Ok(call) => R::serve(app, &call).await,
            Err(error) => Err(error),
        };
        let response = match result {
            Ok(response) => response,
            Err(error) => {
                error.log();
                count_refusal(R::ENDPOINT, &error);
                error.into_response(&trace_id)
            }
        };
        tracing::info!(status = response.status().as_u16(), "served");
        response::with_trace_id(response, &trace_id)
    };
    // The queue adapter reads the header from here to send it on as `AWSTraceHeader`. Boxed: a
    // route's future is large, and another layer around it would copy it onto the stack again
    // (debug builds overflowed a test thread's 2 MiB).
    crate::xray::in_invocation(xray, Box::pin(serve.instrument(span))).await
}

/// The business metrics of a refused request: an order refused by its `error_code`, a webhook
/// refused for its signature.
fn count_refusal(endpoint: Endpoint, error: &ApiError) {
    match (endpoint, error) {
        (Endpoint::CreateOrder, error) => metrics::refused(error.status_and_code().1),
        (Endpoint::PaymentWebhook, ApiError::Unauthenticated { .. }) => {
            metrics::count(BusinessMetric::WebhooksRefused);
        }
        _ => {}
    }
}

/// The checks every route shares, before the route runs.
async fn admit<'r, R, S, Q, N, C>(
    app: &App<S, Q, N, C>,
    request: &'r Request,
    trace_id: &'r str,
) -> Result<Call<'r>, ApiError>
where
    R: Route,
    S: Store,
    Q: OrderQueue + Reachable,
    N: Notifier,
    C: Clock,
{
    request::check_size(request)?;
    // Health is public and the payment provider signs its webhooks: no bearer token, no count.
    if R::PUBLIC {
        return Ok(Call {
            request,
            trace_id,
            caller: Err(AuthError::Missing),
        });
    }
    app.auth.refresh_if_due().await;
    let caller = app
        .auth
        .verify_header(request::header(request, "authorization"));
    let subject = match &caller {
        Ok(caller) => format!("user:{}", caller.user_id),
        Err(_) => format!("ip:{}", request::source_ip(request)),
    };
    rate_limit::check(&app.store, &app.clock, &subject, app.rate_limit_per_minute).await?;
    Ok(Call {
        request,
        trace_id,
        caller,
    })
}

#[cfg(test)]
mod tests;
