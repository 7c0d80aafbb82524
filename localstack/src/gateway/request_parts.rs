//! The request parts the HTTP and WebSocket events carry alike, converted the way API Gateway
//! passes them on: headers (joined or multi-value, plus the `X-Forwarded-For` it adds), cookies,
//! query string parameters, percent-decoding, and the request time's format.

use std::collections::HashMap;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderName, HeaderValue};

/// API id in the request context; a deployed API has a generated one.
pub(crate) const LOCAL_API_ID: &str = "local";

/// `requestContext.time` / `requestTime`, in API Gateway's (Common Log) format.
pub(crate) fn request_time(at: DateTime<Utc>) -> String {
    at.format("%d/%b/%Y:%H:%M:%S %z").to_string()
}

/// A header's values as text, in the order sent. The event is JSON, so bytes that are not UTF-8
/// are replaced.
fn values_as_text<'a>(
    headers: &'a HeaderMap,
    name: &'a HeaderName,
) -> impl Iterator<Item = String> + 'a {
    headers
        .get_all(name)
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
}

/// A header's first value as text, if sent.
pub(crate) fn header_text(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    values_as_text(headers, name).next()
}

/// Text made only of header values (and `,`, `;`, digits, an IP) is itself a valid header value.
pub(crate) fn text_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).expect("text built from header values is a header value")
}

/// The events' `headers`: names lower-cased (as `HeaderMap` keeps them), one value per name, the
/// repeated ones joined with `,`. (The event structs serialize only the first value of a name, so
/// joining here is what makes every value reach the function.)
pub(crate) fn joined_headers(headers: &HeaderMap) -> HeaderMap {
    let mut joined = HeaderMap::with_capacity(headers.keys_len());
    for name in headers.keys() {
        let values: Vec<String> = values_as_text(headers, name).collect();
        joined.insert(name.clone(), text_value(&values.join(",")));
    }
    joined
}

/// The WebSocket events' `multiValueHeaders`: every value of every header, as text.
pub(crate) fn multi_value_headers(headers: &HeaderMap) -> HeaderMap {
    let mut multi = HeaderMap::with_capacity(headers.len());
    for name in headers.keys() {
        for value in values_as_text(headers, name) {
            multi.append(name.clone(), text_value(&value));
        }
    }
    multi
}

/// Every cookie of every `Cookie` header, trimmed, in the order sent: payload v2's `cookies`.
pub(crate) fn cookies(headers: &HeaderMap) -> Vec<String> {
    values_as_text(headers, &http::header::COOKIE)
        .flat_map(|value| {
            value
                .split(';')
                .map(|cookie| cookie.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .filter(|cookie| !cookie.is_empty())
        .collect()
}

/// `X-Forwarded-For` as API Gateway passes it on: the peer appended to what the client sent
/// (`joined` being the already joined headers).
pub(crate) fn forwarded_for(joined: &HeaderMap, source_ip: IpAddr) -> HeaderValue {
    let earlier = joined
        .get("x-forwarded-for")
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    match earlier {
        Some(earlier) => text_value(&format!("{earlier}, {source_ip}")),
        None => text_value(&source_ip.to_string()),
    }
}

/// Query parameters percent-decoded: every value of each name, in the order sent.
pub(crate) fn query_parameters(raw: &str) -> HashMap<String, Vec<String>> {
    let mut parameters: HashMap<String, Vec<String>> = HashMap::new();
    for pair in raw.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        parameters
            .entry(percent_decode(name))
            .or_default()
            .push(percent_decode(value));
    }
    parameters
}

/// Decodes `%XX` escapes (invalid ones stay as written); bytes that are not UTF-8 are replaced.
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn repeated_headers_are_joined_in_one_map_and_kept_apart_in_the_other() {
        let sent = headers(&[("X-Custom", "one"), ("x-custom", "two"), ("accept", "*/*")]);

        let joined = joined_headers(&sent);
        let multi = multi_value_headers(&sent);

        assert_eq!(joined["x-custom"], "one,two");
        assert_eq!(joined.get_all("x-custom").iter().count(), 1);
        let values: Vec<_> = multi.get_all("x-custom").iter().collect();
        assert_eq!(values, ["one", "two"]);
        assert_eq!(multi["accept"], "*/*");
    }

    #[test]
    fn cookies_of_every_cookie_header_are_split_and_trimmed_in_order() {
        let sent = headers(&[("cookie", "a=1; b=2;"), ("cookie", " c=3")]);

        assert_eq!(cookies(&sent), ["a=1", "b=2", "c=3"]);
    }

    #[test]
    fn forwarded_for_appends_the_peer_to_what_the_client_sent() {
        let ip: IpAddr = "10.1.2.3".parse().unwrap();

        let fresh = forwarded_for(&HeaderMap::new(), ip);
        let appended = forwarded_for(&headers(&[("x-forwarded-for", "192.0.2.1")]), ip);

        assert_eq!(fresh, "10.1.2.3");
        assert_eq!(appended, "192.0.2.1, 10.1.2.3");
    }

    #[test]
    fn query_parameters_are_decoded_with_every_value_in_order() {
        let parameters = query_parameters("x=1&q=a%20b&x=2&flag&&x=");

        assert_eq!(parameters["x"], ["1", "2", ""]);
        assert_eq!(parameters["q"], ["a b"]);
        assert_eq!(parameters["flag"], [""]);
        assert_eq!(parameters.len(), 3);
    }

    #[test]
    fn percent_decoding_leaves_invalid_escapes_alone() {
        assert_eq!(percent_decode("a%20b%2"), "a b%2");
        assert_eq!(percent_decode("%E2%82%AC%zz"), "€%zz");
    }
}
