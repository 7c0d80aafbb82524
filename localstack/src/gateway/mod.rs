//! The API Gateway emulation: HTTP and WebSocket traffic becomes the events API Gateway sends, for
//! whatever handler the stack hands it (the same ones the Lambda functions run).
//!
//! # Layout
//!
//! - [`handler`]: the [`HttpHandler`] / [`WsHandler`] traits the gateway invokes.
//! - [`http_api`]: the HTTP API (payload format 2.0) and its event; [`routes`]: route selection;
//!   [`cors`]: CORS as the template configures it.
//! - [`console`]: the developer console the HTTP API serves at `/` (local stack only).
//! - [`ws`]: the WebSocket API, its connections and its management API (`@connections`).
//! - [`request_parts`]: headers, cookies and query strings, converted alike for both APIs.

mod console;
pub mod cors;
mod handler;
mod http_api;
mod request_parts;
mod routes;
mod ws;

use std::net::SocketAddr;

use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::server::StopSignal;

pub(crate) use self::console::ConsoleSettings;
pub(crate) use self::handler::{HttpHandler, WsHandler};
pub(crate) use self::http_api::serve_http;
pub(crate) use self::ws::{bind_ws, serve_ws};

/// Serves `router` on `listener` until `stop`, as both gateways do: no Nagle delay on small
/// responses, and the peer address available to handlers (it becomes the event's `sourceIp`).
async fn serve_router(
    listener: TcpListener,
    router: Router,
    stop: StopSignal,
) -> std::io::Result<()> {
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(stop)
        .await
}
