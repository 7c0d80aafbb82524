//! What the gateway invokes: any HTTP or WebSocket handler, as the one call a Lambda function's
//! `service_fn` makes. Implemented for async closures, so the stack wires its handlers in `lib.rs`
//! and tests can hand the gateway any wiring (or a fake) without the gateway naming it.
//!
//! Both traits return `impl Future` and the servers are generic over them rather than boxing the
//! future: a listener serves one handler type chosen at compile time, so a generic costs nothing
//! per request (no allocation, no vtable) and the compiler checks at the call site that the
//! handler's future is `Send`, which the servers' tasks need. A boxed future would only pay off if
//! handlers were picked at run time.

use std::future::Future;

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use shared::Endpoint;
use shared::ws::WsRoute;

/// Serves one HTTP API request routed to `endpoint`, as that endpoint's function does.
pub(crate) trait HttpHandler: Send + Sync + 'static {
    /// The function's answer; never fails (errors are responses), as `shared::api::handle`.
    fn call(
        &self,
        endpoint: Endpoint,
        request: lambda_http::Request,
    ) -> impl Future<Output = lambda_http::Response<lambda_http::Body>> + Send;
}

impl<F, Fut> HttpHandler for F
where
    F: Fn(Endpoint, lambda_http::Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = lambda_http::Response<lambda_http::Body>> + Send,
{
    fn call(
        &self,
        endpoint: Endpoint,
        request: lambda_http::Request,
    ) -> impl Future<Output = lambda_http::Response<lambda_http::Body>> + Send {
        self(endpoint, request)
    }
}

/// Serves one WebSocket route invocation, as that route's function does.
pub(crate) trait WsHandler: Send + Sync + 'static {
    /// The function's answer; on `$connect` its status accepts or refuses the handshake.
    fn call(
        &self,
        route: WsRoute,
        event: ApiGatewayWebsocketProxyRequest,
    ) -> impl Future<Output = ApiGatewayProxyResponse> + Send;
}

impl<F, Fut> WsHandler for F
where
    F: Fn(WsRoute, ApiGatewayWebsocketProxyRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ApiGatewayProxyResponse> + Send,
{
    fn call(
        &self,
        route: WsRoute,
        event: ApiGatewayWebsocketProxyRequest,
    ) -> impl Future<Output = ApiGatewayProxyResponse> + Send {
        self(route, event)
    }
}
