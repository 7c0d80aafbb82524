//! The WebSocket API: the `$connect`, `$disconnect` and `$default` routes over API Gateway's
//! WebSocket proxy events. The Lambda binaries and the local gateway both call [`handle`].
//!
//! `$connect` authenticates the `?token=` query parameter and stores the connection with its user,
//! so the notifier can find it; a non-2xx answer makes API Gateway refuse the handshake with that
//! status. `$disconnect` forgets the connection. `$default` answers a ping with a pong (sent back to
//! the client because the route has a route response).

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use base64::Engine;
use http::{HeaderMap, HeaderValue};
use serde_json::{Value, json};
use tracing::Instrument;

use crate::adapters::dynamodb::DynamoStore;
use crate::auth::{AuthError, Authenticator};
use crate::aws::BootError;
use crate::config::Config;
use crate::function::Footprint;
pub use crate::function::WsRoute;
use crate::ports::{Clock, Connection, ConnectionStore, SystemClock};

/// How long a connection record lives: API Gateway closes every connection after two hours, so
/// a record whose `$disconnect` was lost is removed by DynamoDB's TTL at the latest then.
pub const CONNECTION_TTL: Duration = Duration::from_secs(2 * 60 * 60);

/// The query string parameter that carries the JWT: browsers cannot set headers on a WebSocket.
pub const TOKEN_PARAMETER: &str = "token";

/// The ports and settings the WebSocket routes are served with, built once per cold start.
pub struct WsApp<C, K = SystemClock> {
    /// Open connections by user.
    pub connections: C,
    /// Token verification, the same as the HTTP API's.
    pub auth: Authenticator,
    /// The time a connection is stored at.
    pub clock: K,
}

/// The production wiring: connections in DynamoDB; `None` for `$default`, which stores nothing.
pub type AwsWsApp = WsApp<Option<DynamoStore>>;

impl<C: ConnectionStore, K: Clock> WsApp<C, K> {
    /// Wires ports that were built elsewhere (tests, fakes), verifying tokens with `config.auth`.
    pub fn new(connections: C, clock: K, config: &Config) -> Result<Self, AuthError> {
        Ok(WsApp {
            connections,
            auth: Authenticator::from_settings(&config.auth)?,
            clock,
        })
    }
}

impl AwsWsApp {
    /// The cold-start half of a WebSocket function: the clients `footprint` uses, from
    /// [`aws::connect`](crate::aws::connect) (`$default` uses none).
    pub async fn connect(config: &Config, footprint: &Footprint) -> Result<Arc<Self>, BootError> {
        let ports = crate::aws::connect(config, footprint).await?;
        Ok(Arc::new(WsApp {
            connections: ports.store,
            auth: ports.auth,
            clock: SystemClock,
        }))
    }
}

/// Serves one route invocation. Never fails: every problem becomes a status code (which, on
/// `$connect`, is the status the client's handshake is refused with).
pub async fn handle<C: ConnectionStore, K: Clock>(
    app: &WsApp<C, K>,
    route: WsRoute,
    event: ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    let context = &event.request_context;
    let span = tracing::info_span!(
        "ws",
        route = route.route_key(),
        connection_id = context.connection_id.as_deref().unwrap_or(""),
        request_id = context.request_id.as_deref().unwrap_or(""),
    );
    async {
        let response = match route {
            WsRoute::Connect => connect(app, &event).await,
            WsRoute::Disconnect => disconnect(app, &event).await,
            WsRoute::Default => answer_message(&event),
        };
        // Keep-alive pings come every few minutes per connection: not worth an INFO line each.
        match route {
            WsRoute::Default => tracing::debug!(status = response.status_code, "served"),
            WsRoute::Connect | WsRoute::Disconnect => {
                tracing::info!(status = response.status_code, "served")
            }
        }
        response
    }
    .instrument(span)
    .await
}

async fn connect<C: ConnectionStore, K: Clock>(
    app: &WsApp<C, K>,
    event: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    let Some(connection_id) = connection_id(event) else {
        return refusal(400, "the event has no connectionId");
    };
    let Some(token) = event
        .query_string_parameters
        .first(TOKEN_PARAMETER)
        .filter(|t| !t.trim().is_empty())
    else {
        tracing::info!("handshake without ?token=; refused");
        return refusal(401, "Unauthorized");
    };
    app.auth.refresh_if_due().await;
    let caller = match app.auth.verify(token.trim()) {
        Ok(caller) => caller,
        Err(error) => {
            tracing::info!(%error, "handshake with an unusable token; refused");
            return refusal(401, "Unauthorized");
        }
    };
    // The clock, not `connectedAt`, stamps the record: the TTL then counts from the write, which
    // is at most milliseconds later, and tests control it.
    let connection = Connection {
        connection_id: connection_id.to_owned(),
        user_id: caller.user_id,
        connected_at: app.clock.now(),
    };
    match app
        .connections
        .save_connection(&connection, CONNECTION_TTL)
        .await
    {
        Ok(()) => {
            tracing::info!(user_id = %connection.user_id, "connection stored");
            empty(200)
        }
        Err(error) => {
            tracing::error!(%error, "cannot store the connection; handshake refused");
            refusal(500, "Internal Server Error")
        }
    }
}

async fn disconnect<C: ConnectionStore, K: Clock>(
    app: &WsApp<C, K>,
    event: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    let Some(connection_id) = connection_id(event) else {
        return refusal(400, "the event has no connectionId");
    };
    match app.connections.delete_connection(connection_id).await {
        Ok(()) => empty(200),
        Err(error) => {
            // API Gateway ignores this answer; the record's TTL, or the next push's 410, removes it.
            tracing::warn!(%error, "cannot delete the connection");
            refusal(500, "Internal Server Error")
        }
    }
}

/// A message the `$default` route understands.
#[derive(Debug, PartialEq, Eq)]
enum ClientMessage {
    /// `{"action":"ping"}`, or any text that is not JSON (`ping`): keeps idle connections open
    /// (API Gateway closes them after 10 idle minutes) and checks the route round trip.
    Ping,
    /// JSON this API does not know, with what to tell the client.
    Unknown(String),
}

impl ClientMessage {
    fn parse(body: &str) -> Self {
        let Ok(json) = serde_json::from_str::<Value>(body) else {
            return Self::Ping;
        };
        match json.get("action").map(|a| (a, a.as_str())) {
            Some((_, Some("ping"))) => Self::Ping,
            Some((_, Some(other))) => Self::Unknown(format!(
                "unknown action {other:?}; the only action is {{\"action\":\"ping\"}}"
            )),
            Some((other, None)) => Self::Unknown(format!(
                "action must be a string, got {other}; send {{\"action\":\"ping\"}}"
            )),
            None => Self::Unknown(
                "messages are {\"action\": ...}; the only action is {\"action\":\"ping\"}".into(),
            ),
        }
    }
}

fn answer_message(event: &ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
    let raw = event.body.as_deref().unwrap_or("");
    let body = if event.is_base64_encoded {
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    } else {
        raw.to_owned()
    };
    let reply = match ClientMessage::parse(&body) {
        ClientMessage::Ping => json!({ "event": "pong" }),
        ClientMessage::Unknown(message) => json!({ "event": "error", "message": message }),
    };
    json_response(200, &reply)
}

fn connection_id(event: &ApiGatewayWebsocketProxyRequest) -> Option<&str> {
    event
        .request_context
        .connection_id
        .as_deref()
        .filter(|id| !id.is_empty())
}

fn empty(status: i64) -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = status;
    response
}

fn refusal(status: i64, message: &str) -> ApiGatewayProxyResponse {
    json_response(status, &json!({ "message": message }))
}

fn json_response(status: i64, body: &Value) -> ApiGatewayProxyResponse {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let mut response = empty(status);
    response.headers = headers;
    response.body = Some(Body::Text(body.to_string()));
    response
}

#[cfg(test)]
mod tests;
