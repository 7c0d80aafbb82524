//! What every HTTP Lambda binary does at cold start: tracing, one typed `Config`, SDK clients
//! built once, then the runtime loop over the shared handler for its endpoint.

use std::sync::Arc;

use lambda_http::{Error, Request, service_fn};
use shared::{AwsApp, Config, Endpoint};

/// Runs `endpoint` as a Lambda function behind an API Gateway HTTP API.
pub async fn run_http(endpoint: Endpoint) -> Result<(), Error> {
    let config = Config::from_env()?;
    shared::telemetry::init(config.log_format);
    let app: Arc<AwsApp> = AwsApp::connect(&config).await?;
    lambda_http::run(service_fn(move |request: Request| {
        let app = Arc::clone(&app);
        async move { Ok::<_, Error>(shared::api::handle(&app, endpoint, request).await) }
    }))
    .await
}
