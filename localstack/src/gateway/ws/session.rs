//! One WebSocket connection's life after the upgrade: frames in become `$default` invocations (a
//! non-empty answer goes back as a frame), management calls become frames out or a close, and the
//! end, whoever closes, becomes `$disconnect`.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::apigw::ApiGatewayProxyResponse;
use aws_lambda_events::encodings::Body as EventBody;
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, close_code};
use base64::Engine;
use chrono::Utc;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use shared::ws::WsRoute;
use tokio::sync::mpsc;

use super::WsGateway;
use super::connections::Outbound;
use super::event::{self, Peer};
use super::flood::MessageBudget;
use crate::gateway::WsHandler;

/// How long a connection the gateway closes waits for the client's close frame.
const CLOSE_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves one upgraded connection until either side closes it or the gateway stops.
pub(super) async fn serve_connection<H: WsHandler>(
    gateway: Arc<WsGateway<H>>,
    peer: Arc<Peer>,
    socket: WebSocket,
    mut queued: mpsc::UnboundedReceiver<Outbound>,
) {
    let (mut sink, mut stream) = socket.split();
    let mut closing = gateway.closing.clone();
    let mut stopping = *closing.borrow_and_update();
    let mut close: (u16, String) = (close_code::ABNORMAL, "Connection dropped".into());
    let mut budget = MessageBudget::new(std::time::Instant::now());
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
                // A data message over the connection's rate ends it unserved, as an oversized one.
                Some(Ok(Message::Text(_) | Message::Binary(_)))
                    if !budget.take(std::time::Instant::now()) =>
                {
                    tracing::warn!(connection_id = %peer.connection_id, "message rate exceeded; closing the connection");
                    close = close_by_gateway(&mut sink, &mut stream, close_code::POLICY, "Message rate exceeded").await;
                    break;
                }
                Some(Ok(Message::Text(text))) => {
                    gateway.connections.touch(&peer.connection_id);
                    let event = event::message_event(&peer, text.as_str(), false, Utc::now());
                    let answer = gateway.invoke(WsRoute::Default, event).await;
                    if let Some(frame) = route_response(answer) {
                        if sink.send(frame).await.is_err() {
                            break;
                        }
                    }
                }
                Some(Ok(Message::Binary(bytes))) => {
                    gateway.connections.touch(&peer.connection_id);
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
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => gateway.connections.touch(&peer.connection_id),
                // Over API Gateway's frame or message size: closed with 1009, as it does.
                Some(Err(error)) if is_too_big(&error) => {
                    tracing::warn!(connection_id = %peer.connection_id, "message too big; closing the connection");
                    close = close_by_gateway(&mut sink, &mut stream, close_code::SIZE, "Message too big").await;
                    break;
                }
                Some(Err(_)) | None => break,
            },
            // A dropped sender (the gateway task was aborted) stops the connection as well.
            changed = closing.changed() => stopping = changed.is_err() || *closing.borrow(),
        }
    }
    disconnected(&gateway, &peer, close.0, &close.1).await;
}

/// The connection is over: unreachable through the management API, and `$disconnect` runs.
pub(super) async fn disconnected<H: WsHandler>(
    gateway: &WsGateway<H>,
    peer: &Peer,
    code: u16,
    reason: &str,
) {
    gateway.connections.unregister(&peer.connection_id);
    let event = event::disconnect_event(peer, code, reason, Utc::now());
    gateway.invoke(WsRoute::Disconnect, event).await;
}

/// Whether a read failed because a frame or message was over the gateway's size limits
/// (`MAX_FRAME_BYTES`, `MAX_MESSAGE_BYTES`).
fn is_too_big(error: &axum::Error) -> bool {
    use tokio_tungstenite::tungstenite::Error;
    let cause = std::error::Error::source(error).and_then(|cause| cause.downcast_ref::<Error>());
    matches!(cause, Some(Error::Capacity(_)))
}

/// Sends a close frame and waits (briefly) for the client's, so the closing handshake completes.
async fn close_by_gateway(
    sink: &mut SplitSink<WebSocket, Message>,
    stream: &mut SplitStream<WebSocket>,
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
