//! What every HTTP and WebSocket Lambda binary does at cold start: tracing, one typed `Config`,
//! SDK clients built once, then the runtime loop over the shared handler for its endpoint or route.

use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use lambda_http::{Error, Request, service_fn};
use lambda_runtime::LambdaEvent;
use shared::ws::{AwsWsApp, WsRoute};
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

/// Runs `route` as a Lambda function behind an API Gateway WebSocket API.
pub async fn run_ws(route: WsRoute) -> Result<(), Error> {
    let config = Config::from_env()?;
    shared::telemetry::init(config.log_format);
    let app: Arc<AwsWsApp> = AwsWsApp::connect(&config).await?;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| {
            let app = Arc::clone(&app);
            async move {
                // Boxed: the handler's future nested in the runtime's service stack is deeper
                // than rustc's default layout query limit.
                let handled = Box::pin(shared::ws::handle(&app, route, event.payload));
                Ok::<_, Error>(handled.await)
            }
        },
    ))
    .await
}
