//! The API Gateway HTTP API (payload format 2.0) event for one HTTP request, and its conversion into
//! the `lambda_http::Request` a handler sees, along the same path the Lambda runtime takes.

use std::net::IpAddr;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpRequestContext};
use aws_lambda_events::query_map::QueryMap;
use base64::Engine;
use chrono::{DateTime, Utc};
use http::{HeaderMap, Method, Uri, Version};
use lambda_http::RequestExt;
use lambda_http::request::LambdaRequest;
use shared::Function;
use shared::xray::{self, TraceHeader};

use crate::gateway::request_parts::{self, LOCAL_API_ID};
use crate::gateway::routes::RouteMatch;

/// The stage of an HTTP API's default route set.
const DEFAULT_STAGE: &str = "$default";

/// One HTTP request as the gateway received it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HttpCall<'a> {
    /// Request method.
    pub(crate) method: &'a Method,
    /// Request target as sent (path and query).
    pub(crate) uri: &'a Uri,
    /// HTTP version.
    pub(crate) version: Version,
    /// Request headers.
    pub(crate) headers: &'a HeaderMap,
    /// The whole body.
    pub(crate) body: &'a [u8],
    /// The peer's address (the client IP API Gateway reports).
    pub(crate) source_ip: IpAddr,
}

/// What the gateway adds to every event: its own request id and the time it received the request.
#[derive(Debug, Clone)]
pub(crate) struct Invocation {
    /// `requestContext.requestId`, also the Lambda request id.
    pub(crate) request_id: String,
    /// `requestContext.time` / `timeEpoch`.
    pub(crate) received_at: DateTime<Utc>,
    /// The AWS account in ARNs.
    pub(crate) account_id: String,
    /// The region in ARNs.
    pub(crate) region: String,
    /// The request's X-Ray trace: sent on as `X-Amzn-Trace-Id` and as the invocation context's
    /// trace header, as API Gateway and Lambda do with tracing on.
    pub(crate) trace: TraceHeader,
}

/// The trace a request joins: the one its valid `X-Amzn-Trace-Id` names, else a new one, as API
/// Gateway continues or starts a trace.
pub(crate) fn request_trace(headers: &HeaderMap, received_at: DateTime<Utc>) -> TraceHeader {
    headers
        .get(xray::TRACE_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(TraceHeader::parse)
        .unwrap_or_else(|| {
            let seconds = u32::try_from(received_at.timestamp()).unwrap_or_default();
            TraceHeader::start(seconds, rand::random())
        })
}

/// The payload v2 event API Gateway would send to the route's function.
///
/// Serialized, the struct also carries the fields only a custom authorizer v1 payload has (`type`,
/// `methodArn`, `identitySource`, `authorizationToken`, `resource` as `null`, `httpMethod` as its
/// default `"GET"`) and an empty `stageVariables`. They are left as the struct writes them: the
/// runtime's conversion reads the method from `requestContext.http` and ignores the rest, so the
/// handler sees the same request as from API Gateway's own payload.
pub(crate) fn api_gateway_event(
    call: HttpCall<'_>,
    route: &RouteMatch,
    invocation: &Invocation,
) -> ApiGatewayV2httpRequest {
    let route_key = route.endpoint.route_key();
    // Payload v2 moves the `Cookie` header into the separate `cookies` list.
    let cookies = request_parts::cookies(call.headers);
    let mut headers = request_parts::joined_headers(call.headers);
    headers.remove(http::header::COOKIE);
    // API Gateway appends the peer to X-Forwarded-For and names the scheme it was reached by.
    let forwarded_for = request_parts::forwarded_for(&headers, call.source_ip);
    headers.insert("x-forwarded-for", forwarded_for);
    headers.insert("x-forwarded-proto", http::HeaderValue::from_static("http"));
    if let Ok(trace) = http::HeaderValue::from_str(&format!("Root={}", invocation.trace.root())) {
        headers.insert(xray::TRACE_HEADER, trace);
    }

    let host = call
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let host_name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    let domain_prefix = if host_name.parse::<IpAddr>().is_ok() {
        host_name
    } else {
        host_name.split('.').next().unwrap_or(host_name)
    };
    let user_agent = request_parts::header_text(call.headers, &http::header::USER_AGENT);

    let mut context = ApiGatewayV2httpRequestContext::default();
    context.account_id = Some(invocation.account_id.clone());
    context.apiid = Some(LOCAL_API_ID.to_owned());
    context.domain_name = Some(host.to_owned());
    context.domain_prefix = Some(domain_prefix.to_owned());
    context.http.method = call.method.clone();
    context.http.path = Some(call.uri.path().to_owned());
    context.http.protocol = Some(format!("{:?}", call.version));
    context.http.source_ip = Some(call.source_ip.to_string());
    context.http.user_agent = Some(user_agent.unwrap_or_default());
    context.request_id = Some(invocation.request_id.clone());
    context.route_key = Some(route_key.to_owned());
    context.stage = Some(DEFAULT_STAGE.to_owned());
    context.time = Some(request_parts::request_time(invocation.received_at));
    context.time_epoch = invocation.received_at.timestamp_millis();

    let mut event = ApiGatewayV2httpRequest::default();
    event.version = Some("2.0".to_owned());
    event.route_key = Some(route_key.to_owned());
    event.raw_path = Some(call.uri.path().to_owned());
    event.raw_query_string = Some(call.uri.query().unwrap_or("").to_owned());
    event.cookies = (!cookies.is_empty()).then_some(cookies);
    event.headers = headers;
    // Repeated names go out joined with `,` (the struct's serializer joins them), as API Gateway
    // sends them.
    event.query_string_parameters = QueryMap::from(request_parts::query_parameters(
        call.uri.query().unwrap_or(""),
    ));
    event.path_parameters = route.path_parameters.iter().cloned().collect();
    event.request_context = context;
    if !call.body.is_empty() {
        let (body, encoded) = match std::str::from_utf8(call.body) {
            Ok(text) => (text.to_owned(), false),
            Err(_) => (
                base64::engine::general_purpose::STANDARD.encode(call.body),
                true,
            ),
        };
        event.body = Some(body);
        event.is_base64_encoded = encoded;
    }
    event
}

/// The request the handler sees: `event` as JSON bytes, deserialized as the Lambda runtime does
/// (which, for one, splits the joined query values again), with the invocation context it would add.
pub(crate) fn lambda_request(
    event: &ApiGatewayV2httpRequest,
    route: &RouteMatch,
    invocation: &Invocation,
) -> Result<lambda_http::Request, serde_json::Error> {
    let payload: LambdaRequest = serde_json::from_slice(&serde_json::to_vec(event)?)?;
    let mut context = lambda_http::Context::default();
    context.request_id = invocation.request_id.clone();
    context.xray_trace_id = Some(invocation.trace.to_string());
    // The function's template Timeout, as Lambda sets the deadline.
    let timeout = Function::Http(route.endpoint).timeout();
    context.deadline = u64::try_from(invocation.received_at.timestamp_millis())
        .unwrap_or_default()
        .saturating_add(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
    context.invoked_function_arn = format!(
        "arn:aws:lambda:{}:{}:function:{}",
        invocation.region,
        invocation.account_id,
        route.endpoint.function_name()
    );
    Ok(lambda_http::Request::from(payload).with_lambda_context(context))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::request::RequestContext;
    use serde_json::{Value, json};
    use shared::Endpoint;

    fn invocation() -> Invocation {
        Invocation {
            request_id: "req-1".into(),
            received_at: DateTime::parse_from_rfc3339("2025-03-12T19:03:58Z")
                .unwrap()
                .with_timezone(&Utc),
            account_id: "000000000000".into(),
            region: "us-east-1".into(),
            trace: TraceHeader::parse(
                "Root=1-67d1dc1e-0123456789abcdef01234567;Parent=89abcdef01234567;Sampled=1",
            )
            .unwrap(),
        }
    }

    fn convert(
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        route: &RouteMatch,
    ) -> (Value, lambda_http::Request) {
        // The JSON is the event serialized: the very bytes `lambda_request` deserializes, so the
        // spellings checked on it are the ones the runtime reads.
        let uri: Uri = uri.parse().unwrap();
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        let call = HttpCall {
            method: &method,
            uri: &uri,
            version: Version::HTTP_11,
            headers: &map,
            body,
            source_ip: "10.1.2.3".parse().unwrap(),
        };
        let event = api_gateway_event(call, route, &invocation());
        let request = lambda_request(&event, route, &invocation()).unwrap();
        (serde_json::to_value(&event).unwrap(), request)
    }

    fn route(endpoint: Endpoint, parameters: &[(&str, &str)]) -> RouteMatch {
        RouteMatch {
            endpoint,
            path_parameters: parameters
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn path_and_query_parameters_and_source_ip_reach_the_handler() {
        let route = route(Endpoint::GetOrder, &[("id", "ord-42")]);

        let (_, request) = convert(
            Method::GET,
            "/orders/ord-42?status=PAID&limit=5",
            &[("host", "127.0.0.1:3000")],
            b"",
            &route,
        );

        assert_eq!(request.method(), Method::GET);
        assert_eq!(request.uri().path(), "/orders/ord-42");
        assert_eq!(request.path_parameters().first("id"), Some("ord-42"));
        assert_eq!(
            request.query_string_parameters().first("status"),
            Some("PAID")
        );
        assert_eq!(request.query_string_parameters().first("limit"), Some("5"));
        let RequestContext::ApiGatewayV2(context) = request.request_context() else {
            panic!("not an HTTP API v2 context")
        };
        assert_eq!(context.http.source_ip.as_deref(), Some("10.1.2.3"));
        assert_eq!(context.route_key.as_deref(), Some("GET /orders/{id}"));
        assert_eq!(context.stage.as_deref(), Some("$default"));
        assert_eq!(
            request.lambda_context_ref().map(|c| c.request_id.as_str()),
            Some("req-1")
        );
    }

    #[test]
    fn the_handler_sees_the_x_ray_trace_in_its_header_and_its_invocation_context() {
        let route = route(Endpoint::CreateOrder, &[]);

        let (event, request) = convert(Method::POST, "/orders", &[], b"{}", &route);

        assert_eq!(
            event["headers"]["x-amzn-trace-id"],
            "Root=1-67d1dc1e-0123456789abcdef01234567"
        );
        assert_eq!(
            request
                .lambda_context_ref()
                .and_then(|c| c.xray_trace_id.as_deref()),
            Some("Root=1-67d1dc1e-0123456789abcdef01234567;Parent=89abcdef01234567;Sampled=1")
        );
    }

    #[test]
    fn the_invocation_deadline_is_the_function_timeout_after_the_request_arrived() {
        let arrived = u64::try_from(invocation().received_at.timestamp_millis()).unwrap();
        for (endpoint, timeout_ms) in [(Endpoint::CreateOrder, 10_000), (Endpoint::Health, 6_000)] {
            let (_, request) = convert(Method::GET, "/", &[], b"", &route(endpoint, &[]));

            let deadline = request.lambda_context_ref().map(|c| c.deadline);

            assert_eq!(deadline, Some(arrived + timeout_ms), "{endpoint:?}");
        }
    }

    #[test]
    fn a_request_continues_the_trace_it_names_or_starts_one_at_its_arrival() {
        let received_at = invocation().received_at;
        let mut headers = HeaderMap::new();

        let started = request_trace(&headers, received_at);
        headers.insert(
            xray::TRACE_HEADER,
            "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"
                .parse()
                .unwrap(),
        );
        let continued = request_trace(&headers, received_at);

        let arrival = format!("1-{:08x}-", received_at.timestamp());
        assert!(started.root().starts_with(&arrival), "{started}");
        assert_eq!(continued.root(), "1-5759e988-bd862e3fe1be46a994272793");
    }

    #[test]
    fn event_has_the_payload_v2_shape() {
        let route = route(Endpoint::ListOrders, &[]);

        let (event, _) = convert(
            Method::GET,
            "/orders?status=PAID&status=FAILED&q=a%20b",
            &[
                ("host", "127.0.0.1:3000"),
                ("X-Custom", "one"),
                ("x-custom", "two"),
                ("cookie", "a=1; b=2"),
                ("user-agent", "curl/8"),
            ],
            b"",
            &route,
        );

        assert_eq!(event["version"], "2.0");
        assert_eq!(event["routeKey"], "GET /orders");
        assert_eq!(event["rawQueryString"], "status=PAID&status=FAILED&q=a%20b");
        assert_eq!(event["queryStringParameters"]["status"], "PAID,FAILED");
        assert_eq!(event["queryStringParameters"]["q"], "a b");
        assert_eq!(event["headers"]["x-custom"], "one,two");
        assert_eq!(event["headers"]["x-forwarded-for"], "10.1.2.3");
        assert!(event["headers"].get("cookie").is_none());
        assert_eq!(event["cookies"], json!(["a=1", "b=2"]));
        assert_eq!(event["requestContext"]["http"]["userAgent"], "curl/8");
        assert_eq!(event["requestContext"]["http"]["protocol"], "HTTP/1.1");
        assert_eq!(
            event["requestContext"]["time"],
            "12/Mar/2025:19:03:58 +0000"
        );
        assert_eq!(event["requestContext"]["timeEpoch"], 1_741_806_238_000_i64);
        assert!(event.get("body").is_none());
        assert!(event.get("pathParameters").is_none());
    }

    #[test]
    fn text_bodies_pass_as_text_and_binary_bodies_as_base64() {
        let route = route(Endpoint::CreateOrder, &[]);

        let (text_event, text_request) = convert(
            Method::POST,
            "/orders",
            &[("content-type", "application/json")],
            br#"{"a":1}"#,
            &route,
        );
        let (binary_event, binary_request) =
            convert(Method::POST, "/orders", &[], &[0xff, 0x00, 0xfe], &route);

        assert_eq!(text_event["isBase64Encoded"], false);
        assert_eq!(text_request.body().as_ref(), br#"{"a":1}"#);
        assert_eq!(binary_event["isBase64Encoded"], true);
        assert_eq!(binary_request.body().as_ref(), &[0xff, 0x00, 0xfe]);
    }
}
