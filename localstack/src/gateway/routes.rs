//! Route selection as API Gateway does it: each endpoint's route key (`"GET /products/{id}"`) is
//! matched against the request's method and path; `{name}` segments capture path parameters.

use http::Method;
use shared::Endpoint;

use super::request_parts::percent_decode;

/// One segment of a route's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment {
    /// Must equal the request's segment.
    Literal(&'static str),
    /// Captures any non-empty segment under this name.
    Parameter(&'static str),
}

#[derive(Debug, Clone)]
struct Route {
    endpoint: Endpoint,
    method: Method,
    segments: Vec<Segment>,
}

/// The endpoint a request was routed to, with its path parameters (percent-decoded, as API
/// Gateway passes them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteMatch {
    /// The endpoint.
    pub(crate) endpoint: Endpoint,
    /// `(name, value)` per `{name}` segment.
    pub(crate) path_parameters: Vec<(String, String)>,
}

/// Every endpoint's route, parsed once.
#[derive(Debug, Clone)]
pub(crate) struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// The routes of [`Endpoint::ALL`].
    pub(crate) fn new() -> Self {
        let routes = Endpoint::ALL
            .iter()
            .map(|&endpoint| {
                let (method, path) = endpoint
                    .route_key()
                    .split_once(' ')
                    .expect("a route key is \"METHOD /path\"");
                let segments = path
                    .trim_start_matches('/')
                    .split('/')
                    .map(|segment| {
                        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                            Some(name) => Segment::Parameter(name),
                            None => Segment::Literal(segment),
                        }
                    })
                    .collect();
                Route {
                    endpoint,
                    method: method
                        .parse()
                        .expect("a route key starts with an HTTP method"),
                    segments,
                }
            })
            .collect();
        RouteTable { routes }
    }

    /// The route for `method` and `path`; `None` is API Gateway's 404. When several match, the one
    /// with the most literal segments wins (`/products/featured` before `/products/{id}`).
    pub(crate) fn find(&self, method: &Method, path: &str) -> Option<RouteMatch> {
        let request_segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
        self.routes
            .iter()
            .filter(|route| {
                route.method == *method && route.segments.len() == request_segments.len()
            })
            .filter(|route| {
                route.segments.iter().zip(&request_segments).all(
                    |(segment, actual)| match segment {
                        Segment::Literal(literal) => literal == actual,
                        Segment::Parameter(_) => !actual.is_empty(),
                    },
                )
            })
            .max_by_key(|route| {
                route
                    .segments
                    .iter()
                    .filter(|s| matches!(s, Segment::Literal(_)))
                    .count()
            })
            .map(|route| RouteMatch {
                endpoint: route.endpoint,
                path_parameters: route
                    .segments
                    .iter()
                    .zip(&request_segments)
                    .filter_map(|(segment, actual)| match segment {
                        Segment::Parameter(name) => {
                            Some(((*name).to_owned(), percent_decode(actual)))
                        }
                        Segment::Literal(_) => None,
                    })
                    .collect(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_is_reachable_by_its_own_route_key() {
        let table = RouteTable::new();
        for endpoint in Endpoint::ALL {
            let (method, path) = endpoint.route_key().split_once(' ').unwrap();
            let path = path.replace("{id}", "abc");

            let found = table.find(&method.parse().unwrap(), &path).unwrap();

            assert_eq!(found.endpoint, endpoint, "{}", endpoint.route_key());
        }
    }

    #[test]
    fn path_parameters_are_captured_and_decoded() {
        let found = RouteTable::new()
            .find(&Method::POST, "/orders/order%201/cancel")
            .unwrap();

        assert_eq!(found.endpoint, Endpoint::CancelOrder);
        assert_eq!(
            found.path_parameters,
            vec![("id".to_owned(), "order 1".to_owned())]
        );
    }

    #[test]
    fn unknown_paths_wrong_methods_and_empty_parameters_do_not_match() {
        let table = RouteTable::new();

        assert_eq!(table.find(&Method::GET, "/nope"), None);
        assert_eq!(table.find(&Method::PATCH, "/products/abc"), None);
        assert_eq!(table.find(&Method::GET, "/products/"), None);
        assert_eq!(table.find(&Method::GET, "/products/abc/extra"), None);
    }
}
