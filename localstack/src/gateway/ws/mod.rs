//! The WebSocket API on one listener: handshakes become `$connect` events for the handler (a 2xx
//! answer upgrades), each upgraded connection is served by [`session`], and requests to
//! `/@connections/{id}` go to the management API in [`management`] instead.
//!
//! The API's one stage (`local` in the events) is served at the root path, as a custom domain name
//! maps a stage to `/`: clients connect to `ws://127.0.0.1:3001/?token=...`. Any other path is
//! refused before `$connect` runs, with API Gateway's 403 for a path that leads to no stage.

mod connections;
mod event;
mod flood;
mod management;
mod session;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use anyhow::Context;
use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body as EventBody;
use axum::Router;
use axum::body::Body;
use axum::extract::ws::{WebSocketUpgrade, close_code};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::response::Response;
use chrono::Utc;
use http::StatusCode;
use shared::ws::WsRoute;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use self::connections::{Connections, new_connection_id};
use self::event::Peer;
use super::WsHandler;
use crate::conditions::Conditions;
use crate::faults::{Call, FaultResponse, FaultService, Faults, Injection};
use crate::server::ServerTask;

/// The path the WebSocket API's stage is served at: the only one that accepts connections.
const STAGE_PATH: &str = "/";
/// API Gateway's WebSocket quotas: a message of at most 128 KB, in frames of at most 32 KB. A
/// client that sends more is disconnected, its message never reaching a route.
const MAX_MESSAGE_BYTES: usize = 128 * 1024;
/// See [`MAX_MESSAGE_BYTES`].
const MAX_FRAME_BYTES: usize = 32 * 1024;

/// Binds the WebSocket API's listener on 127.0.0.1:`port` (0 = ephemeral). Bound before the handlers
/// are built, so the management endpoint the notifier pushes to is known by then.
pub(crate) async fn bind_ws(port: u16) -> anyhow::Result<TcpListener> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .await
        .with_context(|| format!("binding the WebSocket API on 127.0.0.1:{port} (WS_PORT)"))
}

/// Serves the WebSocket API and its management API on `listener` until the task is stopped; then
/// closes every open connection (close code 1001) and waits for their `$disconnect` events.
pub(crate) fn serve_ws<H: WsHandler>(
    listener: TcpListener,
    handler: H,
    faults: Arc<Faults>,
    conditions: Arc<Conditions>,
    read_timeout: std::time::Duration,
) -> ServerTask {
    let (closing, closing_seen) = watch::channel(false);
    // Every connection task holds the gateway, and the gateway holds `alive`: when the last of
    // them ends, `gone.recv()` answers `None`.
    let (alive, mut gone) = mpsc::channel::<()>(1);
    let gateway = Arc::new(WsGateway {
        handler,
        connections: Connections::default(),
        faults,
        conditions,
        closing: closing_seen,
        _alive: alive,
    });
    let router = Router::new().fallback(dispatch::<H>).with_state(gateway);
    ServerTask::spawn("ws-gateway", move |stop| async move {
        if let Err(error) = super::serve_router(listener, router, stop, read_timeout).await {
            tracing::error!(%error, "WebSocket API stopped");
        }
        let _ = closing.send(true);
        let _ = gone.recv().await;
    })
}

/// What every request and connection of one WebSocket API shares.
struct WsGateway<H> {
    handler: H,
    /// Open connections by id: what the management API reaches.
    connections: Connections,
    /// Fault rules for the management API (`apigw`).
    faults: Arc<Faults>,
    /// AWS's latency on the management API's `PostToConnection` (`AWS_LATENCY`).
    conditions: Arc<Conditions>,
    /// Turns `true` when the gateway stops (its sender dropping means the same).
    closing: watch::Receiver<bool>,
    _alive: mpsc::Sender<()>,
}

impl<H: WsHandler> WsGateway<H> {
    /// Runs a route's handler on `event`, deserialized from JSON bytes as the Lambda runtime does.
    async fn invoke(
        &self,
        route: WsRoute,
        event: ApiGatewayWebsocketProxyRequest,
    ) -> ApiGatewayProxyResponse {
        match event::decode(&event) {
            Ok(event) => self.handler.call(route, event).await,
            Err(error) => {
                tracing::error!(%error, route = route.route_key(), "the event does not deserialize as the runtime would");
                let mut response = ApiGatewayProxyResponse::default();
                response.status_code = 500;
                response
            }
        }
    }
}

async fn dispatch<H: WsHandler>(
    State(gateway): State<Arc<WsGateway<H>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    if let Some(connection_id) = management::management_connection_id(request.uri().path()) {
        if gateway.faults.armed() {
            let operation = match *request.method() {
                http::Method::POST => "PostToConnection",
                http::Method::GET => "GetConnection",
                http::Method::DELETE => "DeleteConnection",
                _ => "",
            };
            let call = Call {
                service: FaultService::Apigw,
                operation,
                tables: &[],
            };
            match gateway.faults.decide(&call) {
                Some(Injection::Answer(fault)) => return FaultResponse::apigw(fault),
                Some(Injection::Delay(delay)) => tokio::time::sleep(delay).await,
                // Refused when the rule is set: the management API has no drop.
                Some(Injection::DropBefore | Injection::DropAfter) | None => {}
            }
        }
        return management::manage(
            &gateway.connections,
            &gateway.conditions,
            request,
            &connection_id,
        )
        .await;
    }
    if request.uri().path() != STAGE_PATH {
        return management::aws_error(
            StatusCode::FORBIDDEN,
            Some("ForbiddenException"),
            "Forbidden",
        );
    }
    let (mut parts, _body) = request.into_parts();
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(_) => {
            return management::aws_error(
                StatusCode::UPGRADE_REQUIRED,
                None,
                "This is a WebSocket API: connect with a WebSocket client",
            );
        }
    };
    handshake(gateway, upgrade, &parts, peer.ip()).await
}

/// `$connect`: a 2xx answer upgrades the connection, anything else refuses the handshake with
/// the handler's status, as API Gateway does.
async fn handshake<H: WsHandler>(
    gateway: Arc<WsGateway<H>>,
    upgrade: WebSocketUpgrade,
    parts: &http::request::Parts,
    source_ip: IpAddr,
) -> Response {
    let header = |name: http::HeaderName| super::request_parts::header_text(&parts.headers, &name);
    let peer = Arc::new(Peer {
        connection_id: new_connection_id(),
        connected_at: Utc::now(),
        source_ip,
        user_agent: header(http::header::USER_AGENT).unwrap_or_default(),
        domain_name: header(http::header::HOST).unwrap_or_else(|| "localhost".into()),
    });
    let connect = event::connect_event(
        &peer,
        &parts.headers,
        parts.uri.query().unwrap_or(""),
        Utc::now(),
    );
    let answer = gateway.invoke(WsRoute::Connect, connect).await;
    if !(200..300).contains(&answer.status_code) {
        return refusal(answer);
    }

    // Registered before the 101 goes out: a push racing the client's first frame is queued, not 410.
    let (outbound, queued) = mpsc::unbounded_channel();
    gateway.connections.register(Arc::clone(&peer), outbound);
    let mut upgrade = upgrade
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_FRAME_BYTES);
    if let Some(protocol) = answer.headers.get(http::header::SEC_WEBSOCKET_PROTOCOL) {
        if let Ok(protocol) = protocol.to_str() {
            upgrade = upgrade.protocols([protocol.to_owned()]);
        }
    }
    let failed = (Arc::clone(&gateway), Arc::clone(&peer));
    upgrade
        .on_failed_upgrade(move |error| {
            let (gateway, peer) = failed;
            tracing::warn!(%error, connection_id = %peer.connection_id, "WebSocket upgrade failed");
            tokio::spawn(async move {
                session::disconnected(&gateway, &peer, close_code::ABNORMAL, "Upgrade failed")
                    .await;
            });
        })
        .on_upgrade(move |socket| session::serve_connection(gateway, peer, socket, queued))
}

/// The handler's refusal of a handshake: its status, headers and body, and no upgrade.
fn refusal(answer: ApiGatewayProxyResponse) -> Response {
    let status = u16::try_from(answer.status_code)
        .ok()
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match answer.body {
        Some(EventBody::Text(text)) => Body::from(text),
        Some(EventBody::Binary(bytes)) => Body::from(bytes),
        _ => Body::empty(),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = answer.headers;
    response
}

#[cfg(test)]
mod tests;
