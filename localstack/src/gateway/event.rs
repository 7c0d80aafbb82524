//! The API Gateway HTTP API (payload format 2.0) event for one HTTP request, and its conversion into
//! the `lambda_http::Request` a handler sees, along the same path the Lambda runtime takes.

use std::net::IpAddr;

use base64::Engine;
use chrono::{DateTime, Utc};
use http::{HeaderMap, Method, Uri, Version};
use lambda_http::RequestExt;
use lambda_http::request::LambdaRequest;
use serde_json::{Map, Value, json};

use super::routes::{RouteMatch, percent_decode};

/// API id in the request context; a deployed API has a generated one.
const LOCAL_API_ID: &str = "local";
/// The stage of an HTTP API's default route set.
const DEFAULT_STAGE: &str = "$default";
/// How long Lambda would let the function run: the deadline in the invocation context.
const FUNCTION_TIMEOUT_MS: i64 = 30_000;

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
}

/// The payload v2 event API Gateway would send to the route's function.
pub(crate) fn api_gateway_event(
    call: HttpCall<'_>,
    route: &RouteMatch,
    invocation: &Invocation,
) -> Value {
    let route_key = route.endpoint.route_key();
    let (cookies, mut headers) = event_headers(call.headers);
    // API Gateway appends the peer to X-Forwarded-For and names the scheme it was reached by.
    let forwarded_for = match headers.get("x-forwarded-for").and_then(Value::as_str) {
        Some(earlier) => format!("{earlier}, {}", call.source_ip),
        None => call.source_ip.to_string(),
    };
    headers.insert("x-forwarded-for".into(), forwarded_for.into());
    headers.insert("x-forwarded-proto".into(), "http".into());

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
    let user_agent = call
        .headers
        .get(http::header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();

    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": call.uri.path(),
        "rawQueryString": call.uri.query().unwrap_or(""),
        "headers": headers,
        "requestContext": {
            "accountId": invocation.account_id,
            "apiId": LOCAL_API_ID,
            "domainName": host,
            "domainPrefix": domain_prefix,
            "http": {
                "method": call.method.as_str(),
                "path": call.uri.path(),
                "protocol": format!("{:?}", call.version),
                "sourceIp": call.source_ip.to_string(),
                "userAgent": user_agent,
            },
            "requestId": invocation.request_id,
            "routeKey": route_key,
            "stage": DEFAULT_STAGE,
            "time": invocation.received_at.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": invocation.received_at.timestamp_millis(),
        },
        "isBase64Encoded": false,
    });
    let fields = event.as_object_mut().expect("the event is a JSON object");
    if !cookies.is_empty() {
        fields.insert("cookies".into(), cookies.into());
    }
    let query = query_string_parameters(call.uri.query().unwrap_or(""));
    if !query.is_empty() {
        fields.insert("queryStringParameters".into(), query.into());
    }
    if !route.path_parameters.is_empty() {
        let parameters: Map<String, Value> = route
            .path_parameters
            .iter()
            .map(|(name, value)| (name.clone(), value.as_str().into()))
            .collect();
        fields.insert("pathParameters".into(), parameters.into());
    }
    if !call.body.is_empty() {
        let (body, encoded) = match std::str::from_utf8(call.body) {
            Ok(text) => (text.to_owned(), false),
            Err(_) => (
                base64::engine::general_purpose::STANDARD.encode(call.body),
                true,
            ),
        };
        fields.insert("body".into(), body.into());
        fields.insert("isBase64Encoded".into(), encoded.into());
    }
    event
}

/// Deserializes `event` as the Lambda runtime does and adds the invocation context it would add.
pub(crate) fn lambda_request(
    event: Value,
    route: &RouteMatch,
    invocation: &Invocation,
) -> Result<lambda_http::Request, serde_json::Error> {
    let payload: LambdaRequest = serde_json::from_value(event)?;
    let mut context = lambda_http::Context::default();
    context.request_id = invocation.request_id.clone();
    context.deadline =
        u64::try_from(invocation.received_at.timestamp_millis() + FUNCTION_TIMEOUT_MS)
            .unwrap_or_default();
    context.invoked_function_arn = format!(
        "arn:aws:lambda:{}:{}:function:{}",
        invocation.region,
        invocation.account_id,
        route.endpoint.function_name()
    );
    Ok(lambda_http::Request::from(payload).with_lambda_context(context))
}

/// Header names lower-cased (as `HeaderMap` keeps them), repeated values joined with `,`; the
/// `Cookie` header moves into the separate `cookies` list, as payload v2 does.
fn event_headers(headers: &HeaderMap) -> (Vec<String>, Map<String, Value>) {
    let mut cookies = Vec::new();
    let mut joined = Map::new();
    for name in headers.keys() {
        let values = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        if name == http::header::COOKIE {
            cookies.extend(
                values
                    .flat_map(|v| {
                        v.split(';')
                            .map(|c| c.trim().to_owned())
                            .collect::<Vec<_>>()
                    })
                    .filter(|c| !c.is_empty()),
            );
        } else {
            joined.insert(
                name.as_str().to_owned(),
                values.collect::<Vec<_>>().join(",").into(),
            );
        }
    }
    (cookies, joined)
}

/// Query parameters decoded, repeated ones joined with `,` in the order sent.
fn query_string_parameters(raw: &str) -> Map<String, Value> {
    let mut parameters: Map<String, Value> = Map::new();
    for pair in raw.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (name, value) = (percent_decode(name), percent_decode(value));
        match parameters.get_mut(&name) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                parameters.insert(name, value.into());
            }
        }
    }
    parameters
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::request::RequestContext;
    use shared::Endpoint;

    fn invocation() -> Invocation {
        Invocation {
            request_id: "req-1".into(),
            received_at: DateTime::parse_from_rfc3339("2025-03-12T19:03:58Z")
                .unwrap()
                .with_timezone(&Utc),
            account_id: "000000000000".into(),
            region: "us-east-1".into(),
        }
    }

    fn convert(
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        route: &RouteMatch,
    ) -> (Value, lambda_http::Request) {
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
        let request = lambda_request(event.clone(), route, &invocation()).unwrap();
        (event, request)
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
