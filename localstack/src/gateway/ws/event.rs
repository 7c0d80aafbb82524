//! The API Gateway WebSocket events (`CONNECT`, `MESSAGE`, `DISCONNECT`) for one connection, built
//! as `aws_lambda_events` structs and handed over after the JSON trip the Lambda runtime makes.

use std::collections::HashMap;
use std::net::IpAddr;

use aws_lambda_events::apigw::{
    ApiGatewayRequestIdentity, ApiGatewayWebsocketProxyRequest,
    ApiGatewayWebsocketProxyRequestContext,
};
use aws_lambda_events::query_map::QueryMap;
use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderValue};
use shared::ws::WsRoute;

use crate::gateway::request_parts::{self, LOCAL_API_ID};

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
) -> ApiGatewayWebsocketProxyRequest {
    let mut event = base_event(peer, WsRoute::Connect, now);
    let (joined, multi) = event_headers(headers, peer);
    event.headers = joined;
    event.multi_value_headers = multi;
    // `queryStringParameters` holds the last value of each name, the multi-value field all of them.
    let parameters = request_parts::query_parameters(raw_query);
    let last: HashMap<String, String> = parameters
        .iter()
        .filter_map(|(name, values)| Some((name.clone(), values.last()?.clone())))
        .collect();
    event.query_string_parameters = QueryMap::from(last);
    event.multi_value_query_string_parameters = QueryMap::from(parameters);
    event
}

/// The `$default` event for one data frame; binary frames arrive base64-encoded.
pub(crate) fn message_event(
    peer: &Peer,
    body: &str,
    is_base64_encoded: bool,
    now: DateTime<Utc>,
) -> ApiGatewayWebsocketProxyRequest {
    let mut event = base_event(peer, WsRoute::Default, now);
    event.request_context.message_id = Some(new_id());
    event.body = Some(body.to_owned());
    event.is_base64_encoded = is_base64_encoded;
    event
}

/// The `$disconnect` event, with the close code and reason as API Gateway reports them.
pub(crate) fn disconnect_event(
    peer: &Peer,
    status_code: u16,
    reason: &str,
    now: DateTime<Utc>,
) -> ApiGatewayWebsocketProxyRequest {
    let mut event = base_event(peer, WsRoute::Disconnect, now);
    event.request_context.disconnect_status_code = Some(i64::from(status_code));
    event.request_context.disconnect_reason = Some(reason.to_owned());
    event
}

/// The event as the handler receives it: serialized to JSON bytes and deserialized, the way the
/// Lambda runtime hands it over.
///
/// The struct's JSON differs from API Gateway's in one place: `queryStringParameters` comes out as
/// lists (`{"token": ["..."]}`, the struct has no single-value serializer for it) where API Gateway
/// sends strings. The runtime's deserializer reads both into the same map, so the handler sees
/// what it would see in AWS; the tests check the event after this trip.
pub(crate) fn decode(
    event: &ApiGatewayWebsocketProxyRequest,
) -> Result<ApiGatewayWebsocketProxyRequest, serde_json::Error> {
    serde_json::from_slice(&serde_json::to_vec(event)?)
}

/// What every event of a connection carries: the route, the connection and a fresh request id.
fn base_event(peer: &Peer, route: WsRoute, now: DateTime<Utc>) -> ApiGatewayWebsocketProxyRequest {
    let request_id = new_id();
    let mut identity = ApiGatewayRequestIdentity::default();
    identity.source_ip = Some(peer.source_ip.to_string());
    identity.user_agent = Some(peer.user_agent.clone());

    let mut context = ApiGatewayWebsocketProxyRequestContext::default();
    context.route_key = Some(route.route_key().to_owned());
    context.event_type = Some(route.event_type().to_owned());
    context.extended_request_id = Some(request_id.clone());
    context.request_time = Some(request_parts::request_time(now));
    context.message_direction = Some("IN".to_owned());
    context.stage = Some(LOCAL_STAGE.to_owned());
    context.connected_at = peer.connected_at.timestamp_millis();
    context.request_time_epoch = now.timestamp_millis();
    context.identity = identity;
    context.request_id = Some(request_id);
    context.domain_name = Some(peer.domain_name.clone());
    context.connection_id = Some(peer.connection_id.clone());
    context.apiid = Some(LOCAL_API_ID.to_owned());

    let mut event = ApiGatewayWebsocketProxyRequest::default();
    event.request_context = context;
    event
}

/// A request id in API Gateway's style (16 base64 characters ending in `=`).
fn new_id() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 10]>())
}

/// Headers as `headers` (repeated values joined with `,`) and `multiValueHeaders`, with the
/// `X-Forwarded-*` headers API Gateway adds.
fn event_headers(headers: &HeaderMap, peer: &Peer) -> (HeaderMap, HeaderMap) {
    let mut joined = request_parts::joined_headers(headers);
    let mut multi = request_parts::multi_value_headers(headers);
    let forwarded_for = request_parts::forwarded_for(&joined, peer.source_ip);
    let port = peer
        .domain_name
        .rsplit_once(':')
        .map_or("80", |(_, port)| port);
    for (name, value) in [
        ("x-forwarded-for", forwarded_for),
        ("x-forwarded-port", request_parts::text_value(port)),
        ("x-forwarded-proto", HeaderValue::from_static("http")),
    ] {
        joined.insert(name, value.clone());
        multi.insert(name, value);
    }
    (joined, multi)
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

        let built = connect_event(&peer(), &headers, "token=a%2Eb.c&x=1&x=2", now);
        let event = decode(&built).unwrap();

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
