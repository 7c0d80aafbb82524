//! The API Gateway emulation: HTTP and WebSocket traffic becomes the events API Gateway sends, for
//! whatever handler the stack hands it (the same ones the Lambda functions run).
//!
//! # Layout
//!
//! - [`handler`]: the [`HttpHandler`] / [`WsHandler`] traits the gateway invokes.
//! - [`http_api`]: the HTTP API (payload format 2.0) and its event; [`routes`]: route selection;
//!   [`cors`]: CORS as the template configures it.
//! - [`console`]: the developer console the HTTP API serves at `/` (local stack only).
//! - [`metrics`]: the business metrics summed from the functions' EMF lines (local stack only).
//! - [`openapi`]: the HTTP API's description, which the HTTP API serves and the console shows.
//! - [`ws`]: the WebSocket API, its connections and its management API (`@connections`).
//! - [`request_parts`]: headers, cookies and query strings, converted alike for both APIs.

mod console;
pub mod cors;
mod handler;
mod http_api;
mod metrics;
mod openapi;
mod request_parts;
mod routes;
mod ws;

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower_service::Service;

use crate::server::StopSignal;

pub(crate) use self::console::ConsoleSettings;
pub(crate) use self::handler::{HttpHandler, WsHandler};
pub(crate) use self::http_api::serve_http;
pub(crate) use self::ws::{bind_ws, serve_ws};

/// API Gateway's patience with a client: a request whose headers (or, on the HTTP API, whose
/// body) have not arrived within this long is given up, as it gives up at 30 s.
pub const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `router` on `listener` until `stop`, as both gateways do: no Nagle delay on small
/// responses, the peer address available to handlers (it becomes the event's `sourceIp`), and a
/// connection whose request headers take longer than `read_timeout` closed (hyper's header read
/// timeout; it also closes a keep-alive connection idle that long). On `stop`, accepting ends and
/// the open requests finish.
async fn serve_router(
    listener: TcpListener,
    router: Router,
    stop: StopSignal,
    read_timeout: Duration,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(read_timeout);
    let connections = GracefulShutdown::new();
    let mut stop = stop;
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors or a connection reset before accept: keep serving.
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let _ = tcp.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: http::Request<_>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let mut router = router.clone();
            async move {
                Ok::<_, Infallible>(
                    router
                        .call(request)
                        .await
                        .unwrap_or_else(|never| match never {}),
                )
            }
        });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(tcp), service)
            .into_owned();
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            // A client that goes away or sends garbage ends only its own connection.
            let _ = connection.await;
        });
    }
    connections.shutdown().await;
    Ok(())
}
