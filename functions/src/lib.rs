//! The cold start every Lambda binary composes itself from: tracing, the settings of the
//! function's footprint (and nothing else), only the clients that footprint uses, then the runtime
//! loop over the function's own handler (an HTTP binary names its one route type, so no other
//! route is compiled in). Everything fails at cold start, never inside a request. Every
//! invocation is measured: what it counted is written to stdout as EMF lines when it ends.

use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_http::{Error, Request, service_fn};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use shared::api::Route;
use shared::metrics::Metrics;
use shared::worker::AwsWorker;
use shared::ws::{AwsWsApp, WsRoute};
use shared::{AwsApp, Config, Footprint, Function};

/// Tracing and the settings of `function`'s footprint.
fn start(function: Function) -> Result<(Config, Footprint), Error> {
    let footprint = function.footprint();
    let config = Config::for_footprint(&footprint).map_err(|e| refusal(function, e))?;
    shared::telemetry::init(config.log_format);
    Ok((config, footprint))
}

/// Why `function` refuses to start, as one readable line: the runtime prints a returned error
/// with `Debug`, which for a nested error enum names variants rather than the problem.
fn refusal(function: Function, error: impl std::fmt::Display) -> Error {
    let message = format!("{} cannot start: {error}", function.name());
    tracing::error!("{message}");
    message.into()
}

/// Runs route `R` as a Lambda function behind an API Gateway HTTP API: only `R`'s code is
/// compiled into the binary, and only the clients of its footprint are built.
pub async fn run_http<R: Route>() -> Result<(), Error> {
    let function = Function::Http(R::ENDPOINT);
    let (config, footprint) = start(function)?;
    let app: Arc<AwsApp> = AwsApp::connect(&config, &footprint)
        .await
        .map_err(|e| refusal(function, e))?;
    let metrics = Metrics::to_stdout(&config.metrics_namespace);
    lambda_http::run(service_fn(move |request: Request| {
        let app = Arc::clone(&app);
        let metrics = metrics.clone();
        async move {
            let handled = shared::api::handle_route::<R, _, _, _, _>(&app, request);
            Ok::<_, Error>(metrics.measure(handled).await)
        }
    }))
    .await
}

/// Runs `route` as a Lambda function behind an API Gateway WebSocket API.
pub async fn run_ws(route: WsRoute) -> Result<(), Error> {
    let function = Function::Ws(route);
    let (config, footprint) = start(function)?;
    let app: Arc<AwsWsApp> = AwsWsApp::connect(&config, &footprint)
        .await
        .map_err(|e| refusal(function, e))?;
    let metrics = Metrics::to_stdout(&config.metrics_namespace);
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| {
            let app = Arc::clone(&app);
            let metrics = metrics.clone();
            async move {
                // Boxed: the handler's future nested in the runtime's service stack is deeper
                // than rustc's default layout query limit.
                let handled = Box::pin(shared::ws::handle(&app, route, event.payload));
                Ok::<_, Error>(metrics.measure(handled).await)
            }
        },
    ))
    .await
}

/// The cold start of the consumer and the reconciler: their settings, their worker and where
/// their metrics go.
async fn start_worker(function: Function) -> Result<(Arc<AwsWorker>, Metrics), Error> {
    let (config, footprint) = start(function)?;
    let worker = AwsWorker::connect(&config, &footprint)
        .await
        .map_err(|e| refusal(function, e))?;
    Ok((worker, Metrics::to_stdout(&config.metrics_namespace)))
}

/// Runs the payment consumer on the order queue (SQS event source, `ReportBatchItemFailures`).
pub async fn run_order_consumer() -> Result<(), Error> {
    let (worker, metrics) = start_worker(Function::OrderConsumer).await?;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: LambdaEvent<SqsEvent>| {
            let worker = Arc::clone(&worker);
            let metrics = metrics.clone();
            async move {
                let handled = shared::worker::consumer::handle(&worker, event.payload);
                Ok::<SqsBatchResponse, Error>(metrics.measure(handled).await)
            }
        },
    ))
    .await
}

/// Runs the reconciler (EventBridge schedule, every minute).
pub async fn run_reconciler() -> Result<(), Error> {
    let (worker, metrics) = start_worker(Function::Reconciler).await?;
    // The scheduled event's content carries nothing the run needs.
    lambda_runtime::run(lambda_runtime::service_fn(
        move |_event: LambdaEvent<Value>| {
            let worker = Arc::clone(&worker);
            let metrics = metrics.clone();
            async move {
                // Boxed, as the WebSocket handler is: nested in the runtime's service stack, the
                // run's future is deeper than rustc's default layout query limit.
                let reconcile = worker.reconcile();
                let report = metrics.measure(Box::pin(reconcile.run())).await?;
                Ok::<Value, Error>(json!({
                    "requeued": report.requeued,
                    "enqueue_failures": report.enqueue_failures,
                    "redriven": report.redriven,
                    "dead_removed": report.dead_removed,
                    "dead_left": report.dead_left,
                    "journal": {
                        "released": report.journal.released,
                        "undone": report.journal.undone,
                        "applied": report.journal.applied,
                        "dropped": report.journal.dropped,
                    },
                }))
            }
        },
    ))
    .await
}

/// Runs the hold sweeper (EventBridge schedule, every minute).
pub async fn run_hold_sweeper() -> Result<(), Error> {
    let (worker, metrics) = start_worker(Function::HoldSweeper).await?;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |_event: LambdaEvent<Value>| {
            let worker = Arc::clone(&worker);
            let metrics = metrics.clone();
            async move {
                // Boxed for the same reason as the reconciler's run.
                let sweep = worker.expire_holds();
                let report = metrics.measure(Box::pin(sweep.run())).await?;
                Ok::<Value, Error>(
                    json!({ "expired": report.expired, "lost_races": report.lost_races }),
                )
            }
        },
    ))
    .await
}
