//! CORS on the HTTP API as API Gateway applies the template's `x-amazon-apigateway-cors`: with at
//! least one allowed origin, the gateway answers preflights itself (204, before any route) and adds
//! `access-control-allow-origin` to the responses of requests whose `Origin` it allows; the
//! functions' own CORS headers are dropped, as API Gateway ignores them. No allowed origin (the
//! template's and the local stack's default) means no CORS at all: an `OPTIONS` request is then an
//! unknown route like any other.
//!
//! The methods, headers and max age are the template's (a test holds them to it); only the origins
//! are a setting, `CorsAllowedOrigins` in the template and `CORS_ALLOW_ORIGINS` locally.

use axum::response::Response;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};

/// `allowMethods` of the template's CORS configuration.
pub const ALLOW_METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "OPTIONS"];
/// `allowHeaders` of the template's CORS configuration.
pub const ALLOW_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "idempotency-key",
    "x-trace-id",
];
/// `exposeHeaders` of the template's CORS configuration.
pub const EXPOSE_HEADERS: &[&str] = &["x-trace-id", "retry-after"];
/// `maxAge` of the template's CORS configuration: how long a browser may cache a preflight.
pub const MAX_AGE_SECONDS: u32 = 600;

/// Which origins may call the HTTP API from a browser.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CorsPolicy {
    allow_origins: Vec<String>,
}

/// A header value listing `items` as API Gateway does: comma-separated, no spaces.
fn listed(items: &[&str]) -> HeaderValue {
    HeaderValue::from_str(&items.join(",")).expect("header names and methods are visible ASCII")
}

impl CorsPolicy {
    /// Allows `allow_origins`, each an exact origin (`https://shop.example.com`), `*` (any origin),
    /// or a scheme followed by `*` (`https://*`), the forms API Gateway accepts. Empty: CORS off.
    pub(crate) fn new(allow_origins: &[String]) -> Self {
        CorsPolicy {
            allow_origins: allow_origins.to_vec(),
        }
    }

    /// API Gateway's own answer to a preflight (`OPTIONS` with `Origin` and
    /// `Access-Control-Request-Method`), or `None` when the request is not one or CORS is off.
    /// An origin that is not allowed gets the 204 without any `access-control-*` header, which
    /// the browser reads as a refusal.
    pub(crate) fn preflight(&self, method: &Method, headers: &HeaderMap) -> Option<Response> {
        let is_preflight = *method == Method::OPTIONS
            && headers.contains_key(header::ORIGIN)
            && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        if self.allow_origins.is_empty() || !is_preflight {
            return None;
        }
        let mut response = Response::new(axum::body::Body::empty());
        *response.status_mut() = StatusCode::NO_CONTENT;
        if let Some(origin) = self.allowed_origin(headers) {
            let out = response.headers_mut();
            out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, listed(ALLOW_METHODS));
            out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, listed(ALLOW_HEADERS));
            out.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from(MAX_AGE_SECONDS),
            );
        }
        Some(response)
    }

    /// Puts the configured CORS headers on the response to an actual request: with CORS on, the
    /// function's own `access-control-*` headers go, and an allowed `Origin` gets
    /// `access-control-allow-origin` and `access-control-expose-headers`.
    pub(crate) fn apply(&self, request_headers: &HeaderMap, response: &mut Response) {
        if self.allow_origins.is_empty() {
            return;
        }
        let headers = response.headers_mut();
        let function_cors: Vec<_> = headers
            .keys()
            .filter(|name| name.as_str().starts_with("access-control-"))
            .cloned()
            .collect();
        for name in function_cors {
            headers.remove(name);
        }
        if let Some(origin) = self.allowed_origin(request_headers) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                listed(EXPOSE_HEADERS),
            );
        }
        // The answer depends on the Origin: a shared cache must not hand one origin's to another.
        headers.append(header::VARY, HeaderValue::from_static("origin"));
    }

    /// The `access-control-allow-origin` value for the request's `Origin`: `*` when every origin
    /// is allowed, else the origin itself; `None` when it is missing or not allowed.
    fn allowed_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origin = headers.get(header::ORIGIN)?;
        let text = origin.to_str().ok()?;
        if self.allow_origins.iter().any(|allowed| allowed == "*") {
            return Some(HeaderValue::from_static("*"));
        }
        self.allow_origins
            .iter()
            .any(|allowed| match allowed.strip_suffix('*') {
                Some(prefix) => prefix.ends_with("://") && text.starts_with(prefix),
                None => allowed.eq_ignore_ascii_case(text),
            })
            .then(|| origin.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(origins: &[&str]) -> CorsPolicy {
        CorsPolicy::new(&origins.iter().map(|o| (*o).to_owned()).collect::<Vec<_>>())
    }

    fn request(origin: Option<&str>, preflight_method: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, origin.parse().unwrap());
        }
        if let Some(method) = preflight_method {
            headers.insert(
                header::ACCESS_CONTROL_REQUEST_METHOD,
                method.parse().unwrap(),
            );
        }
        headers
    }

    #[test]
    fn a_preflight_from_an_allowed_origin_gets_the_configured_lists_and_max_age() {
        let preflight = policy(&["https://shop.example.com"])
            .preflight(
                &Method::OPTIONS,
                &request(Some("https://shop.example.com"), Some("POST")),
            )
            .unwrap();

        assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
        let headers = preflight.headers();
        assert_eq!(
            headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://shop.example.com"
        );
        assert_eq!(
            headers[header::ACCESS_CONTROL_ALLOW_METHODS],
            "GET,POST,PUT,DELETE,OPTIONS"
        );
        assert_eq!(
            headers[header::ACCESS_CONTROL_ALLOW_HEADERS],
            "authorization,content-type,idempotency-key,x-trace-id"
        );
        assert_eq!(headers[header::ACCESS_CONTROL_MAX_AGE], "600");
    }

    #[test]
    fn the_functions_own_cors_headers_are_replaced_by_the_configured_ones() {
        let mut response = Response::new(axum::body::Body::empty());
        response.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("https://elsewhere"),
        );

        policy(&["https://a.example"])
            .apply(&request(Some("https://a.example"), None), &mut response);

        let headers = response.headers();
        assert_eq!(
            headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://a.example"
        );
        assert_eq!(
            headers[header::ACCESS_CONTROL_EXPOSE_HEADERS],
            "x-trace-id,retry-after"
        );
        assert_eq!(headers[header::VARY], "origin");
    }

    #[test]
    fn exact_wildcard_and_scheme_wildcard_origins_match_as_api_gateway_matches_them() {
        let exact = policy(&["https://shop.example.com"]);
        let scheme = policy(&["https://*"]);
        let any = policy(&["*"]);

        let origin = |p: &CorsPolicy, o: &str| p.allowed_origin(&request(Some(o), None));

        assert_eq!(
            origin(&exact, "https://shop.example.com").unwrap(),
            "https://shop.example.com"
        );
        assert_eq!(origin(&exact, "https://evil.example.com"), None);
        assert_eq!(
            origin(&scheme, "https://any.example").unwrap(),
            "https://any.example"
        );
        assert_eq!(origin(&scheme, "http://any.example"), None);
        assert_eq!(origin(&any, "http://any.example").unwrap(), "*");
        assert_eq!(any.allowed_origin(&request(None, None)), None);
    }

    #[test]
    fn without_allowed_origins_nothing_is_a_preflight_and_nothing_is_added() {
        let off = CorsPolicy::default();
        let mut response = Response::new(axum::body::Body::empty());

        off.apply(&request(Some("https://a"), None), &mut response);

        assert!(
            off.preflight(&Method::OPTIONS, &request(Some("https://a"), Some("GET")))
                .is_none()
        );
        assert!(response.headers().is_empty());
    }

    #[test]
    fn an_options_request_without_preflight_headers_is_not_a_preflight() {
        let on = policy(&["*"]);

        assert!(
            on.preflight(&Method::OPTIONS, &request(Some("https://a"), None))
                .is_none()
        );
        assert!(
            on.preflight(&Method::OPTIONS, &request(None, Some("GET")))
                .is_none()
        );
        assert!(
            on.preflight(&Method::GET, &request(Some("https://a"), Some("GET")))
                .is_none()
        );
    }
}
