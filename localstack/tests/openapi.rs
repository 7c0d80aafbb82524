//! The gateway serves the HTTP API's description, `openapi.yaml`, and that description names every
//! route the gateway serves, no more and no fewer.

use localstack::{LocalSettings, Stack, StackOptions};
use serde_json::{Value, json};
use shared::Endpoint;

/// The repository's `openapi.yaml`, as the gateway compiles it in.
const OPENAPI_YAML: &str = include_str!("../../openapi.yaml");

fn options() -> StackOptions {
    StackOptions {
        config: shared::Config::default(),
        local: LocalSettings::ephemeral(),
        seed_products: false,
        run_workers: false,
    }
}

/// `(method, path)` of each route key, `("get", "/products/{id}")`.
fn routes() -> Vec<(String, &'static str)> {
    Endpoint::ALL
        .iter()
        .map(|endpoint| {
            let (method, path) = endpoint.route_key().split_once(' ').unwrap();
            (method.to_ascii_lowercase(), path)
        })
        .collect()
}

#[test]
fn the_document_describes_exactly_the_routes_the_gateway_serves() {
    let document: Value = serde_norway::from_str(OPENAPI_YAML).expect("openapi.yaml is YAML");

    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        document["openapi"]
    );
    assert!(
        document["components"]["securitySchemes"]["bearerAuth"].is_object(),
        "the bearer scheme is declared"
    );
    for (method, path) in routes() {
        let operation = &document["paths"][path][&method];
        assert!(operation.is_object(), "{method} {path} is not described");
        assert!(
            operation["security"].is_array(),
            "{method} {path} declares no security"
        );
        assert!(
            operation["responses"].is_object(),
            "{method} {path} declares no responses"
        );
    }
    let methods = ["get", "put", "post", "delete", "patch", "head", "options"];
    let mut described: Vec<(String, String)> = document["paths"]
        .as_object()
        .expect("paths is a map")
        .iter()
        .flat_map(|(path, item)| {
            methods
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| ((*m).to_owned(), path.clone()))
        })
        .collect();
    let mut served: Vec<(String, String)> = routes()
        .into_iter()
        .map(|(method, path)| (method, path.to_owned()))
        .collect();
    described.sort();
    served.sort();
    assert_eq!(
        described, served,
        "openapi.yaml describes a route that is not served"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_serves_openapi_yaml_and_other_methods_still_get_api_gateways_404() {
    let stack = Stack::start(options()).await.unwrap();
    let url = format!("{}/openapi.yaml", stack.http_url());
    let client = reqwest::Client::new();

    let response = client.get(&url).send().await.unwrap();
    let status = response.status();
    let content_type = response.headers()[http::header::CONTENT_TYPE].clone();
    let body = response.text().await.unwrap();
    let post = client.post(&url).send().await.unwrap();
    let misspelt = client
        .get(format!("{}/openapi.yml", stack.http_url()))
        .send()
        .await
        .unwrap();

    assert_eq!(status, 200);
    assert_eq!(content_type, "application/yaml");
    assert_eq!(body, OPENAPI_YAML);
    let document: Value = serde_norway::from_str(&body).unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    // The document's reusable answer for an unknown route is the one the gateway gives.
    let documented = &document["components"]["responses"]["RouteNotFound"]["content"]["application/json"]
        ["example"];
    for response in [post, misspelt] {
        assert_eq!(response.status(), 404);
        assert!(!response.headers().contains_key("x-trace-id"));
        let body = response.json::<Value>().await.unwrap();
        assert_eq!(body, json!({"message": "Not Found"}));
        assert_eq!(&body, documented);
    }
    stack.shutdown().await;
}
