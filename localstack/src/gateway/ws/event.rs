//! The API Gateway WebSocket events (`CONNECT`, `MESSAGE`, `DISCONNECT`) for one connection, in the
//! shape API Gateway sends them, deserialized from JSON bytes as the Lambda runtime does.

use std::net::IpAddr;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use chrono::{DateTime, Utc};
use http::HeaderMap;
use serde_json::{Map, Value, json};
use shared::ws::WsRoute;

use crate::gateway::routes::percent_decode;

/// API id in the request context; a deployed API has a generated one.
const LOCAL_API_ID: &str = "local";
/// The stage the local WebSocket API is served as.
pub(crate) const LOCAL_STAGE: &str = "local";

/// What API Gateway knows about a connection from its handshake on, repeated in every event.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    /// `requestContext.connectionId`.
    pub(crate) connection_id: String,
    /// `requestContext.connectedAt`.
    pub(crate) connected_at: DateTime<Utc>,
    /// `requestContext.identity.sourceIp`.
    pub(crate) source_ip: IpAddr,
    /// `requestContext.identity.userAgent`.
    pub(crate) user_agent: String,
    /// `requestContext.domainName`: the `Host` the client connected to.
    pub(crate) domain_name: String,
}

/// The `$connect` event: the handshake's headers and query string.
pub(crate) fn connect_event(
    peer: &Peer,
    headers: &HeaderMap,
    raw_query: &str,
    now: DateTime<Utc>,
) -> Value {
    let mut event = base_event(peer, WsRoute::Connect, now);
    let fields = event.as_object_mut().expect("the event is a JSON object");
    let (single, multi) = event_headers(headers, peer);
    fields.insert("headers".into(), single.into());
    fields.insert("multiValueHeaders".into(), multi.into());
    let (single, multi) = query_parameters(raw_query);
    if !single.is_empty() {
        fields.insert("queryStringParameters".into(), single.into());
        fields.insert("multiValueQueryStringParameters".into(), multi.into());
    }
    event
}

/// The `$default` event for one data frame; binary frames arrive base64-encoded.
pub(crate) fn message_event(
    peer: &Peer,
    body: &str,
    is_base64_encoded: bool,
    now: DateTime<Utc>,
) -> Value {
    let mut event = base_event(peer, WsRoute::Default, now);
    let fields = event.as_object_mut().expect("the event is a JSON object");
    fields["requestContext"]["messageId"] = new_id().into();
    fields.insert("body".into(), body.into());
    fields.insert("isBase64Encoded".into(), is_base64_encoded.into());
    event
}

/// The `$disconnect` event, with the close code and reason as API Gateway reports them.
pub(crate) fn disconnect_event(
    peer: &Peer,
    status_code: u16,
    reason: &str,
    now: DateTime<Utc>,
) -> Value {
    let mut event = base_event(peer, WsRoute::Disconnect, now);
    let context = &mut event["requestContext"];
    context["disconnectStatusCode"] = status_code.into();
    context["disconnectReason"] = reason.into();
    event
}

/// Deserializes an event from its JSON bytes, the way the Lambda runtime hands it to a handler.
pub(crate) fn decode(event: &Value) -> Result<ApiGatewayWebsocketProxyRequest, serde_json::Error> {
    serde_json::from_slice(&serde_json::to_vec(event)?)
}

fn base_event(peer: &Peer, route: WsRoute, now: DateTime<Utc>) -> Value {
    let request_id = new_id();
    json!({
        "requestContext": {
            "routeKey": route.route_key(),
            "eventType": route.event_type(),
            "extendedRequestId": request_id,
            "requestTime": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "messageDirection": "IN",
            "stage": LOCAL_STAGE,
            "connectedAt": peer.connected_at.timestamp_millis(),
            "requestTimeEpoch": now.timestamp_millis(),
            "identity": {
                "sourceIp": peer.source_ip.to_string(),
                "userAgent": peer.user_agent,
            },
            "requestId": request_id,
            "domainName": peer.domain_name,
            "connectionId": peer.connection_id,
            "apiId": LOCAL_API_ID,
        },
        "isBase64Encoded": false,
    })
}

/// A request id in API Gateway's style (16 base64 characters ending in `=`).
fn new_id() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 10]>())
}

/// Headers as `headers` (repeated values joined with `,`) and `multiValueHeaders`, with the
/// `X-Forwarded-*` headers API Gateway adds.
fn event_headers(headers: &HeaderMap, peer: &Peer) -> (Map<String, Value>, Map<String, Value>) {
    let mut single = Map::new();
    let mut multi = Map::new();
    for name in headers.keys() {
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        single.insert(name.as_str().to_owned(), values.join(",").into());
        multi.insert(name.as_str().to_owned(), values.into());
    }
    let forwarded_for = match single.get("x-forwarded-for").and_then(Value::as_str) {
        Some(earlier) => format!("{earlier}, {}", peer.source_ip),
        None => peer.source_ip.to_string(),
    };
    let port = peer
        .domain_name
        .rsplit_once(':')
        .map_or("80", |(_, port)| port)
        .to_owned();
    for (name, value) in [
        ("x-forwarded-for", forwarded_for),
        ("x-forwarded-port", port),
        ("x-forwarded-proto", "http".to_owned()),
    ] {
        single.insert(name.into(), value.clone().into());
        multi.insert(name.into(), vec![value].into());
    }
    (single, multi)
}

/// Query parameters decoded: the last value of each name, and every value in order.
fn query_parameters(raw: &str) -> (Map<String, Value>, Map<String, Value>) {
    let mut single = Map::new();
    let mut multi: Map<String, Value> = Map::new();
    for pair in raw.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (name, value) = (percent_decode(name), percent_decode(value));
        single.insert(name.clone(), value.clone().into());
        match multi.get_mut(&name) {
            Some(Value::Array(values)) => values.push(value.into()),
            _ => {
                multi.insert(name, vec![Value::from(value)].into());
            }
        }
    }
    (single, multi)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> Peer {
        Peer {
            connection_id: "abcDEF_-12345678".into(),
            connected_at: DateTime::parse_from_rfc3339("2026-11-22T05:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            source_ip: "10.1.2.3".parse().unwrap(),
            user_agent: "test-agent".into(),
            domain_name: "127.0.0.1:3001".into(),
        }
    }

    #[test]
    fn the_connect_event_carries_the_decoded_token_and_deserializes_as_the_runtime_would() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "127.0.0.1:3001".parse().unwrap());
        headers.insert("sec-websocket-version", "13".parse().unwrap());
        let now = peer().connected_at + chrono::Duration::milliseconds(3);

        let json = connect_event(&peer(), &headers, "token=a%2Eb.c&x=1&x=2", now);
        let event = decode(&json).unwrap();

        let context = &event.request_context;
        assert_eq!(context.route_key.as_deref(), Some("$connect"));
        assert_eq!(context.event_type.as_deref(), Some("CONNECT"));
        assert_eq!(context.connection_id.as_deref(), Some("abcDEF_-12345678"));
        assert_eq!(context.connected_at, peer().connected_at.timestamp_millis());
        assert_eq!(context.request_time_epoch, now.timestamp_millis());
        assert_eq!(context.identity.source_ip.as_deref(), Some("10.1.2.3"));
        assert_eq!(context.stage.as_deref(), Some(LOCAL_STAGE));
        assert_eq!(event.query_string_parameters.first("token"), Some("a.b.c"));
        assert_eq!(
            event.multi_value_query_string_parameters.all("x"),
            Some(vec!["1", "2"])
        );
        assert_eq!(event.headers["x-forwarded-for"], "10.1.2.3");
        assert_eq!(event.headers["x-forwarded-port"], "3001");
    }

    #[test]
    fn message_and_disconnect_events_deserialize_with_their_route_details() {
        let now = Utc::now();
        let message = decode(&message_event(&peer(), r#"{"action":"ping"}"#, false, now)).unwrap();
        let disconnect = decode(&disconnect_event(&peer(), 1001, "Going away", now)).unwrap();

        assert_eq!(
            message.request_context.event_type.as_deref(),
            Some("MESSAGE")
        );
        assert!(message.request_context.message_id.is_some());
        assert_eq!(message.body.as_deref(), Some(r#"{"action":"ping"}"#));
        assert_eq!(
            disconnect.request_context.route_key.as_deref(),
            Some("$disconnect")
        );
        assert_eq!(
            disconnect.request_context.disconnect_status_code,
            Some(1001)
        );
        assert_eq!(
            disconnect.request_context.disconnect_reason.as_deref(),
            Some("Going away")
        );
    }
}
