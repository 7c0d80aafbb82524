//! Reading what every endpoint needs from an API Gateway request: trace id, caller, JSON body,
//! path and query parameters.

use std::time::{Instant, SystemTime};

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt};
use serde_json::Value;

use super::ApiError;
use crate::application::WaitBudget;
use crate::auth::{AuthError, Caller};
use crate::domain::{JsonBody, MAX_ID_CHARS};
use crate::xray::{self, TraceHeader};

/// Header that carries the trace id in and out.
pub const TRACE_ID_HEADER: &str = "x-trace-id";

/// Largest accepted request body. 100 order lines are about 6 KiB; anything near this is not an order.
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;

/// A header as text, if present and valid UTF-8.
pub(crate) fn header<'r>(request: &'r Request, name: &str) -> Option<&'r str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The client's trace id when it is a sane token, else the X-Ray trace id of `xray` (so the logs
/// and the X-Ray trace share one id), else a new UUID.
pub(crate) fn trace_id(request: &Request, xray: Option<&TraceHeader>) -> String {
    header(request, TRACE_ID_HEADER)
        .map(str::trim)
        .filter(|t| {
            !t.is_empty()
                && t.len() <= 128
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        })
        .map(str::to_owned)
        .or_else(|| xray.map(|header| header.root().to_owned()))
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// The invocation's X-Ray trace header: the Lambda context's (with active tracing, it names the
/// function's own segment as Parent), else the one API Gateway forwarded.
pub(crate) fn trace_header(request: &Request) -> Option<TraceHeader> {
    request
        .lambda_context_ref()
        .and_then(|context| context.xray_trace_id.as_deref())
        .and_then(TraceHeader::parse)
        .or_else(|| header(request, xray::TRACE_HEADER).and_then(TraceHeader::parse))
}

/// The time this invocation has, from the deadline Lambda (or the local gateway) put in its
/// context; none without a context (a request built by a test).
pub(crate) fn invocation_budget(request: &Request) -> WaitBudget {
    request
        .lambda_context_ref()
        .map_or(WaitBudget::UNLIMITED, |context| {
            WaitBudget::until_deadline(context.deadline(), SystemTime::now(), Instant::now())
        })
}

/// The client address API Gateway saw, for anonymous rate limiting.
pub(crate) fn source_ip(request: &Request) -> String {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => {
            context.http.source_ip.clone().unwrap_or_default()
        }
        _ => String::from("unknown"),
    }
}

pub(crate) fn body_bytes(request: &Request) -> &[u8] {
    match request.body() {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    }
}

/// Refuses bodies over [`MAX_BODY_BYTES`] before anything parses them.
pub(crate) fn check_size(request: &Request) -> Result<(), ApiError> {
    let size = body_bytes(request).len();
    if size > MAX_BODY_BYTES {
        return Err(ApiError::Malformed(format!(
            "request body is {size} bytes; the limit is {MAX_BODY_BYTES}"
        )));
    }
    Ok(())
}

/// The body's bytes, once its `Content-Type` is `application/json`.
fn json_bytes(request: &Request) -> Result<&[u8], ApiError> {
    let content_type = header(request, "content-type").unwrap_or_default();
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::Malformed(
            "Content-Type must be application/json".into(),
        ));
    }
    Ok(body_bytes(request))
}

fn not_json(error: serde_json::Error) -> ApiError {
    ApiError::Malformed(format!("body is not valid JSON: {error}"))
}

/// The body as JSON; requires `Content-Type: application/json`.
pub(crate) fn json_body(request: &Request) -> Result<Value, ApiError> {
    serde_json::from_slice(json_bytes(request)?).map_err(not_json)
}

/// The body as JSON with each top-level member's text as written (for a price's written form).
pub(crate) fn json_body_as_written(request: &Request) -> Result<JsonBody, ApiError> {
    JsonBody::parse(json_bytes(request)?).map_err(not_json)
}

/// A path parameter that the route guarantees.
fn path_param(request: &Request, name: &str) -> Result<String, ApiError> {
    request
        .path_parameters_ref()
        .and_then(|params| params.first(name))
        .map(str::to_owned)
        .ok_or_else(|| ApiError::NotFound {
            what: "route",
            id: name.to_owned(),
        })
}

/// The `{id}` path parameter parsed into the domain's id type: an id that cannot exist (empty,
/// over 128 characters, control characters) is 404 for `what` without a call to the store.
pub(crate) fn path_id<T>(
    request: &Request,
    what: &'static str,
    parse: fn(&str) -> Result<T, &'static str>,
) -> Result<T, ApiError> {
    let raw = path_param(request, "id")?;
    parse(&raw).map_err(|_| ApiError::NotFound {
        what,
        id: echoed_id(&raw),
    })
}

/// An id as echoed in a 404's details: at most [`MAX_ID_CHARS`] characters and a marker, so a
/// megabyte of path is not sent back.
fn echoed_id(raw: &str) -> String {
    match raw.char_indices().nth(MAX_ID_CHARS) {
        Some((cut, _)) => format!("{}…", &raw[..cut]),
        None => raw.to_owned(),
    }
}

/// A query string parameter, if present.
pub(crate) fn query_param(request: &Request, name: &str) -> Option<String> {
    request
        .query_string_parameters_ref()
        .and_then(|params| params.first(name))
        .map(str::to_owned)
}

/// The caller, or 401 saying what was wrong with the token.
pub(crate) fn require_user(caller: &Result<Caller, AuthError>) -> Result<&Caller, ApiError> {
    caller.as_ref().map_err(ApiError::bearer)
}

/// An admin caller, or 401/403.
pub(crate) fn require_admin(caller: &Result<Caller, AuthError>) -> Result<&Caller, ApiError> {
    let caller = require_user(caller)?;
    if caller.is_admin {
        Ok(caller)
    } else {
        Err(ApiError::Forbidden("only admins may manage products"))
    }
}

/// Default page size of listings.
pub(crate) const DEFAULT_PAGE_SIZE: u32 = 15;
/// Largest page size of listings.
pub(crate) const MAX_PAGE_SIZE: u32 = 50;

/// The `limit` query parameter: 1..=50, default 15.
pub(crate) fn page_limit(request: &Request) -> Result<u32, ApiError> {
    match query_param(request, "limit") {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
            .ok_or_else(|| {
                ApiError::Validation(crate::domain::FieldErrors::single(
                    "limit",
                    format!("must be an integer from 1 to {MAX_PAGE_SIZE}"),
                ))
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echoed_id_is_cut_at_128_characters() {
        assert_eq!(echoed_id("p1"), "p1");
        let long = "é".repeat(3000);
        let echoed = echoed_id(&long);
        assert_eq!(echoed.chars().count(), MAX_ID_CHARS + 1);
        assert!(echoed.ends_with('…'));
    }
}
