//! The API Gateway emulation, WebSocket side, on one listener: WebSocket handshakes, frames and
//! closes become `$connect` / `$default` / `$disconnect` events for the same handlers the Lambda
//! functions run, and the management API (`POST`/`GET`/`DELETE /@connections/{connectionId}`)
//! is served on the same port, in the wire format the real aws-sdk-apigatewaymanagement client
//! expects, so the notifier pushes through it unchanged.

mod event;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use aws_lambda_events::apigw::ApiGatewayProxyResponse;
use aws_lambda_events::encodings::Body as EventBody;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::{SinkExt, StreamExt};
use http::{HeaderValue, Method, StatusCode};
use shared::ports::{Clock, ConnectionStore};
use shared::ws::{WsApp, WsRoute};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use self::event::Peer;
use crate::gateway::routes::percent_decode;
use crate::server::ServerTask;

/// The management API's largest `PostToConnection` payload (API Gateway's 128 KB message limit).
const MAX_POST_BYTES: usize = 128 * 1024;

/// How long a connection the gateway closes waits for the client's close frame.
const CLOSE_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The path segment that starts the management API, after an optional stage.
const MANAGEMENT_PREFIX: &str = "@connections";

/// Binds the WebSocket API's listener on 127.0.0.1:`port` (0 = ephemeral). Bound before the handlers
/// are built, so the management endpoint the notifier pushes to is known by then.
pub(crate) async fn bind_ws(port: u16) -> anyhow::Result<TcpListener> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .await
        .with_context(|| format!("binding the WebSocket API on 127.0.0.1:{port}"))
}

/// Serves the WebSocket API and its management API on `listener` until the task is stopped; then
/// closes every open connection (close code 1001) and waits for their `$disconnect` events.
pub(crate) fn serve_ws<C, K>(listener: TcpListener, app: Arc<WsApp<C, K>>) -> ServerTask
where
    C: ConnectionStore + 'static,
    K: Clock + 'static,
{
    let (closing, closing_seen) = watch::channel(false);
    // Every connection task holds the gateway, and the gateway holds `alive`: when the last of
    // them ends, `gone.recv()` answers `None`.
    let (alive, mut gone) = mpsc::channel::<()>(1);
    let gateway = Arc::new(WsGateway {
        app,
        connections: Mutex::new(HashMap::new()),
        closing: closing_seen,
        _alive: alive,
    });
    let router = Router::new().fallback(dispatch::<C, K>).with_state(gateway);
    ServerTask::spawn("ws-gateway", move |stop| async move {
        if let Err(error) = super::serve_router(listener, router, stop).await {
            tracing::error!(%error, "WebSocket API stopped");
        }
        let _ = closing.send(true);
        let _ = gone.recv().await;
    })
}

/// What every request and connection of one WebSocket API shares.
struct WsGateway<C, K> {
    app: Arc<WsApp<C, K>>,
    /// Open connections by id: what the management API reaches.
    connections: Mutex<HashMap<String, OpenConnection>>,
    /// Turns `true` when the gateway stops (its sender dropping means the same).
    closing: watch::Receiver<bool>,
    _alive: mpsc::Sender<()>,
}

/// An upgraded (or upgrading) connection, as the management API sees it.
struct OpenConnection {
    peer: Arc<Peer>,
    outbound: mpsc::UnboundedSender<Outbound>,
    last_active_at: DateTime<Utc>,
}

/// What the management API asks a connection's task to do.
enum Outbound {
    /// `PostToConnection`: send one data frame.
    Data(Bytes),
    /// `DeleteConnection`: close the connection.
    Close,
}

impl<C: ConnectionStore, K: Clock> WsGateway<C, K> {
    fn register(&self, peer: Arc<Peer>, outbound: mpsc::UnboundedSender<Outbound>) {
        let connection = OpenConnection {
            last_active_at: peer.connected_at,
            peer,
            outbound,
        };
        self.open()
            .insert(connection.peer.connection_id.clone(), connection);
    }

    fn unregister(&self, connection_id: &str) -> Option<OpenConnection> {
        self.open().remove(connection_id)
    }

    fn touch(&self, connection_id: &str) {
        if let Some(connection) = self.open().get_mut(connection_id) {
            connection.last_active_at = Utc::now();
        }
    }

    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<String, OpenConnection>> {
        self.connections
            .lock()
            .expect("no code panics while holding the connection map")
    }

    /// Runs a route's handler on `event`, deserialized from JSON bytes as the Lambda runtime does.
    async fn invoke(&self, route: WsRoute, event: serde_json::Value) -> ApiGatewayProxyResponse {
        match event::decode(&event) {
            Ok(event) => shared::ws::handle(&self.app, route, event).await,
            Err(error) => {
                tracing::error!(%error, route = route.route_key(), "the event does not deserialize as the runtime would");
                let mut response = ApiGatewayProxyResponse::default();
                response.status_code = 500;
                response
            }
        }
    }
}

async fn dispatch<C, K>(
    State(gateway): State<Arc<WsGateway<C, K>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response
where
    C: ConnectionStore + 'static,
    K: Clock + 'static,
{
    if let Some(connection_id) = management_connection_id(request.uri().path()) {
        return manage(&gateway, request, &connection_id).await;
    }
    let (mut parts, _body) = request.into_parts();
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(_) => {
            return aws_error(
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
async fn handshake<C, K>(
    gateway: Arc<WsGateway<C, K>>,
    upgrade: WebSocketUpgrade,
    parts: &http::request::Parts,
    source_ip: IpAddr,
) -> Response
where
    C: ConnectionStore + 'static,
    K: Clock + 'static,
{
    let header = |name: http::HeaderName| {
        parts
            .headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
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
    gateway.register(Arc::clone(&peer), outbound);
    let mut upgrade = upgrade;
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
                disconnected(&gateway, &peer, close_code::ABNORMAL, "Upgrade failed").await;
            });
        })
        .on_upgrade(move |socket| serve_connection(gateway, peer, socket, queued))
}

/// One connection's life: frames in become `$default` invocations (a non-empty answer goes back
/// as a frame), management calls become frames out or a close, and the end becomes `$disconnect`.
async fn serve_connection<C: ConnectionStore, K: Clock>(
    gateway: Arc<WsGateway<C, K>>,
    peer: Arc<Peer>,
    socket: WebSocket,
    mut queued: mpsc::UnboundedReceiver<Outbound>,
) {
    let (mut sink, mut stream) = socket.split();
    let mut closing = gateway.closing.clone();
    let mut stopping = *closing.borrow_and_update();
    let mut close: (u16, String) = (close_code::ABNORMAL, "Connection dropped".into());
    loop {
        if stopping {
            close = close_by_gateway(&mut sink, &mut stream, close_code::AWAY, "Going away").await;
            break;
        }
        tokio::select! {
            outbound = queued.recv() => match outbound {
                Some(Outbound::Data(data)) => {
                    if sink.send(data_frame(data)).await.is_err() {
                        break;
                    }
                }
                Some(Outbound::Close) | None => {
                    close = close_by_gateway(&mut sink, &mut stream, close_code::NORMAL, "Connection deleted").await;
                    break;
                }
            },
            inbound = stream.next() => match inbound {
                Some(Ok(Message::Text(text))) => {
                    gateway.touch(&peer.connection_id);
                    let event = event::message_event(&peer, text.as_str(), false, Utc::now());
                    let answer = gateway.invoke(WsRoute::Default, event).await;
                    if let Some(frame) = route_response(answer) {
                        if sink.send(frame).await.is_err() {
                            break;
                        }
                    }
                }
                Some(Ok(Message::Binary(bytes))) => {
                    gateway.touch(&peer.connection_id);
                    let body = base64::engine::general_purpose::STANDARD.encode(&bytes);
                    let event = event::message_event(&peer, &body, true, Utc::now());
                    let answer = gateway.invoke(WsRoute::Default, event).await;
                    if let Some(frame) = route_response(answer) {
                        if sink.send(frame).await.is_err() {
                            break;
                        }
                    }
                }
                // The close reply goes out on the next read, which then ends the stream.
                Some(Ok(Message::Close(frame))) => {
                    close = match frame {
                        Some(frame) => (frame.code, format!("Client-side close frame status set to {}", frame.code)),
                        None => (close_code::STATUS, "Client-side close frame status not set".into()),
                    };
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => gateway.touch(&peer.connection_id),
                Some(Err(_)) | None => break,
            },
            // A dropped sender (the gateway task was aborted) stops the connection as well.
            changed = closing.changed() => stopping = changed.is_err() || *closing.borrow(),
        }
    }
    disconnected(&gateway, &peer, close.0, &close.1).await;
}

/// Sends a close frame and waits (briefly) for the client's, so the closing handshake completes.
async fn close_by_gateway(
    sink: &mut futures::stream::SplitSink<WebSocket, Message>,
    stream: &mut futures::stream::SplitStream<WebSocket>,
    code: u16,
    reason: &'static str,
) -> (u16, String) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    if sink.send(Message::Close(Some(frame))).await.is_ok() {
        let drain = async { while let Some(Ok(_)) = stream.next().await {} };
        let _ = tokio::time::timeout(CLOSE_HANDSHAKE_TIMEOUT, drain).await;
    }
    (code, reason.to_owned())
}

async fn disconnected<C: ConnectionStore, K: Clock>(
    gateway: &WsGateway<C, K>,
    peer: &Peer,
    code: u16,
    reason: &str,
) {
    gateway.unregister(&peer.connection_id);
    let event = event::disconnect_event(peer, code, reason, Utc::now());
    gateway.invoke(WsRoute::Disconnect, event).await;
}

/// What API Gateway sends back to the client for a route response: the body, if any.
fn route_response(answer: ApiGatewayProxyResponse) -> Option<Message> {
    match answer.body? {
        EventBody::Text(text) if text.is_empty() => None,
        EventBody::Text(text) if answer.is_base64_encoded => {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .ok()
                .map(|bytes| data_frame(Bytes::from(bytes)))
        }
        EventBody::Text(text) => Some(Message::Text(text.into())),
        EventBody::Binary(bytes) if bytes.is_empty() => None,
        EventBody::Binary(bytes) => Some(data_frame(Bytes::from(bytes))),
        _ => None,
    }
}

/// Text when the bytes are UTF-8 (JSON events always are), binary otherwise.
fn data_frame(data: Bytes) -> Message {
    match String::from_utf8(data.to_vec()) {
        Ok(text) => Message::Text(text.into()),
        Err(_) => Message::Binary(data),
    }
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

/// `/@connections/{id}` or `/{stage}/@connections/{id}`: the connection id, percent-decoded.
fn management_connection_id(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let id = match segments.as_slice() {
        [MANAGEMENT_PREFIX, id] | [_, MANAGEMENT_PREFIX, id] => *id,
        _ => return None,
    };
    (!id.is_empty()).then(|| percent_decode(id))
}

/// The management API: `PostToConnection`, `GetConnection`, `DeleteConnection`.
async fn manage<C: ConnectionStore, K: Clock>(
    gateway: &WsGateway<C, K>,
    request: Request,
    connection_id: &str,
) -> Response {
    let method = request.method().clone();
    match method {
        Method::POST => {
            let Ok(data) = axum::body::to_bytes(request.into_body(), MAX_POST_BYTES).await else {
                return aws_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    Some("PayloadTooLargeException"),
                    "Message too long",
                );
            };
            let mut open = gateway.open();
            let delivered = open
                .get_mut(connection_id)
                .filter(|connection| connection.outbound.send(Outbound::Data(data)).is_ok())
                .map(|connection| connection.last_active_at = Utc::now());
            match delivered {
                Some(()) => StatusCode::OK.into_response(),
                None => gone(),
            }
        }
        Method::GET => {
            let open = gateway.open();
            let Some(connection) = open.get(connection_id) else {
                return gone();
            };
            let body = serde_json::json!({
                "connectedAt": connection.peer.connected_at.to_rfc3339_opts(SecondsFormat::Millis, true),
                "identity": {
                    "sourceIp": connection.peer.source_ip.to_string(),
                    "userAgent": connection.peer.user_agent,
                },
                "lastActiveAt": connection.last_active_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            });
            json_response(StatusCode::OK, &body)
        }
        Method::DELETE => match gateway.unregister(connection_id) {
            Some(connection) => {
                let _ = connection.outbound.send(Outbound::Close);
                StatusCode::NO_CONTENT.into_response()
            }
            None => gone(),
        },
        _ => aws_error(
            StatusCode::FORBIDDEN,
            Some("ForbiddenException"),
            "Missing Authentication Token",
        ),
    }
}

/// 410 for an unknown or closed connection, as API Gateway answers it: the restJson1 error type in
/// `x-amzn-ErrorType`, which the SDK maps to `GoneException`, and a `{"message": ...}` body.
fn gone() -> Response {
    aws_error(
        StatusCode::GONE,
        Some("GoneException"),
        "The connection is gone",
    )
}

fn aws_error(status: StatusCode, error_type: Option<&'static str>, message: &str) -> Response {
    let mut response = json_response(status, &serde_json::json!({ "message": message }));
    if let Some(error_type) = error_type {
        response
            .headers_mut()
            .insert("x-amzn-errortype", HeaderValue::from_static(error_type));
    }
    response
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

/// A fresh connection id: 12 random bytes in base64url without padding, so it needs no escaping
/// in the management API's path.
fn new_connection_id() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 12]>())
}

#[cfg(test)]
mod tests;
