//! The whole order-processing stack on one machine: embedded DynamoDB (Dynoxide), SQS
//! (rustack-sqs) and Secrets Manager behind one AWS endpoint, idempotent provisioning of tables
//! and queues, and the API Gateway emulation that feeds the very same handlers the Lambda
//! binaries run; the SQS event source and the schedules do the same for the consumer, the
//! reconciler and the hold sweeper.
//!
//! Every [`Stack`] binds its own port-0 listeners and reads every setting from its
//! [`StackOptions`], so tests run many stacks in one process side by side.

mod aws_errors;
mod conditions;
mod emulators;
mod event_source;
mod faults;
mod gateway;
mod meter;
mod metrics;
mod partitions;
mod provision;
mod restart;
mod schedule;
mod secrets;
mod server;
mod settings;
pub mod testing;
mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use shared::{Config, Footprint};

pub use crate::conditions::Conditions;
pub use crate::conditions::latency::{Distribution, LatencyClass, LatencyTable};
pub use crate::faults::{FaultKind, FaultRule, FaultService, Faults};
pub use crate::gateway::cors;
pub use crate::secrets::{LOCAL_JWT_SECRET_NAME, LOCAL_WEBHOOK_SECRET_NAME};
pub use crate::settings::LocalSettings;

use shared::metrics::Metrics;

use crate::emulators::Emulators;
use crate::metrics::{MetricsBoard, StdoutAndBoard};
use crate::server::ServerTask;
use crate::worker::WorkerTasks;

/// Account id in the ARNs and queue URLs the local stack hands out (LocalStack's default).
pub(crate) const LOCAL_ACCOUNT_ID: &str = "000000000000";

/// How long shutdown waits for in-flight requests before it aborts what is left.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What to start.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Every setting the functions read; `aws_endpoint_url` set means "use that endpoint and
    /// start no emulator"; `ws_management_endpoint` is always replaced by the stack's own WebSocket
    /// port, and `order_queue_url` by the queue it provisions.
    pub config: Config,
    /// The stack's own settings; `http_port` / `ws_port` 0 bind ephemeral ports.
    pub local: LocalSettings,
    /// Whether to create the demo products (idempotent).
    pub seed_products: bool,
    /// Whether to run the payment consumer, the reconciler and the hold sweeper. Off, orders stay PENDING until
    /// cancelled: what tests of the synchronous API need, and handy to inspect orders by hand.
    pub run_workers: bool,
}

/// A running stack. Dropping it aborts everything it started; [`Stack::shutdown`] lets
/// in-flight requests finish first.
pub struct Stack {
    config: Config,
    /// `config` as the in-process functions read it (the webhook and JWT secrets by name only).
    functions_config: Config,
    http_addr: SocketAddr,
    ws_addr: SocketAddr,
    aws_endpoint: String,
    order_queue_url: String,
    order_queue_arn: String,
    dlq_url: String,
    faults: Arc<Faults>,
    /// Kept to start the workers again after [`Stack::crash_workers`].
    local: LocalSettings,
    /// Where every invocation's metrics go: stdout and the board the gateway serves.
    metrics: Metrics,
    worker: Option<WorkerTasks>,
    gateway: Option<ServerTask>,
    ws_gateway: Option<ServerTask>,
    emulators: Option<Emulators>,
}

impl Stack {
    /// Starts emulators (unless `config.aws_endpoint_url` is set), provisions tables and queues
    /// idempotently, optionally seeds products, and serves the HTTP API on `local.http_port` and
    /// the WebSocket API (with its management API) on `local.ws_port` (0 = ephemeral) on 127.0.0.1.
    /// `ws_management_endpoint` is set to that WebSocket port, so every push goes through it.
    pub async fn start(options: StackOptions) -> anyhow::Result<Stack> {
        let mut config = options.config;
        let local = options.local;
        let conditions = Arc::new(local.conditions());
        let emulators = match &config.aws_endpoint_url {
            Some(_) => None,
            None => Some(
                Emulators::start(
                    &config.aws_region,
                    local.aws_port,
                    local.meter_capacity,
                    local.partition_limits(),
                    Arc::clone(&conditions),
                    local.data_dir.as_deref(),
                )
                .await
                .context("starting the embedded DynamoDB and SQS")?,
            ),
        };
        if let Some(emulators) = &emulators {
            config.aws_endpoint_url = Some(emulators.endpoint().to_owned());
            secrets::seed(&mut config)
                .await
                .context("creating the development secrets in the local Secrets Manager")?;
        }
        // The endpoint's rules also govern the management API; with an outside endpoint, the
        // management API has rules of its own (set through `Stack::faults`).
        let faults = emulators
            .as_ref()
            .map_or_else(Faults::new, Emulators::faults);
        let aws_endpoint = config.aws_endpoint_url.clone().unwrap_or_default();

        let queues = provision::provision(&config, &local, options.seed_products).await?;
        config.order_queue_url = Some(queues.order_queue_url.clone());
        config.order_dlq_url = Some(queues.dlq_url.clone());
        if local.data_dir.is_some() {
            let resent = restart::resend_unsettled(&config, &queues.order_queue_url).await?;
            tracing::info!(
                resent,
                "kept tables, fresh queues: sent the unsettled orders' messages again"
            );
        }

        // Bound before the handlers are built: their notifier pushes through this port.
        let ws_listener = gateway::bind_ws(local.ws_port).await?;
        let ws_addr = ws_listener.local_addr()?;
        config.ws_management_endpoint = Some(format!("http://{ws_addr}"));

        // Every invocation's EMF lines go to stdout, as in Lambda, and the same lines to the board.
        let board = Arc::new(MetricsBoard::default());
        let metrics = Metrics::new(
            &config.metrics_namespace,
            Arc::new(StdoutAndBoard {
                board: Arc::clone(&board),
            }),
        );

        // One process serves every function, so it wires everything they use between them.
        let everything = Footprint::everything();
        // With the embedded endpoint the functions read their webhook and JWT secrets from its
        // Secrets Manager by name, as in AWS, never the literals they were created with.
        let functions_config = match emulators {
            Some(_) => Config {
                webhook_secret: None,
                auth: shared::config::AuthSettings {
                    jwt_secret: None,
                    ..config.auth.clone()
                },
                ..config.clone()
            },
            None => config.clone(),
        };
        let app = shared::AwsApp::connect(&functions_config, &everything)
            .await
            .context("connecting the handlers to DynamoDB and SQS")?;
        let http_metrics = metrics.clone();
        let http_handler = move |endpoint, request| {
            let app = Arc::clone(&app);
            let metrics = http_metrics.clone();
            async move {
                metrics
                    .measure(shared::api::handle(&app, endpoint, request))
                    .await
            }
        };
        let (gateway, http_addr) = gateway::serve_http(
            http_handler,
            local.http_port,
            &config.aws_region,
            gateway::cors::CorsPolicy::new(&local.cors_allow_origins),
            gateway::ConsoleSettings {
                ws_url: format!("ws://{ws_addr}"),
                // With JWT_PUBLIC_KEY set only RS256 tokens pass, and the stack cannot sign those.
                jwt_secret: config
                    .auth
                    .jwt_secret
                    .clone()
                    .filter(|_| config.auth.jwt_public_key.is_none()),
            },
            board,
            local.request_read_timeout,
        )
        .await
        .with_context(|| {
            format!(
                "serving the HTTP API on 127.0.0.1:{} (HTTP_PORT)",
                local.http_port
            )
        })?;
        let ws_app = shared::ws::AwsWsApp::connect(&functions_config, &everything)
            .await
            .context("connecting the WebSocket handlers to DynamoDB")?;
        let ws_metrics = metrics.clone();
        let ws_handler = move |route, event| {
            let app = Arc::clone(&ws_app);
            let metrics = ws_metrics.clone();
            async move {
                metrics
                    .measure(shared::ws::handle(&app, route, event))
                    .await
            }
        };
        let ws_gateway = gateway::serve_ws(
            ws_listener,
            ws_handler,
            Arc::clone(&faults),
            conditions,
            local.request_read_timeout,
        );
        // The consumer on the order queue and the reconciler, as the Lambdas run in AWS.
        let worker = match options.run_workers {
            true => Some(
                WorkerTasks::start(&functions_config, &queues.order_queue_arn, &local, &metrics)
                    .await
                    .context("starting the consumer, the reconciler and the hold sweeper")?,
            ),
            false => None,
        };
        tracing::info!(http = %http_addr, ws = %ws_addr, aws = %aws_endpoint, "local stack ready");

        Ok(Stack {
            config,
            functions_config,
            http_addr,
            ws_addr,
            aws_endpoint,
            order_queue_url: queues.order_queue_url,
            order_queue_arn: queues.order_queue_arn,
            dlq_url: queues.dlq_url,
            faults,
            local,
            metrics,
            worker,
            gateway: Some(gateway),
            ws_gateway: Some(ws_gateway),
            emulators,
        })
    }

    /// Base URL of the HTTP API, e.g. `http://127.0.0.1:41234`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// URL of the WebSocket API, e.g. `ws://127.0.0.1:41235`; connect to `{ws_url}/?token=<JWT>`.
    /// Its management API (`/@connections/{id}`) is `config().ws_management_endpoint`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.ws_addr)
    }

    /// The AWS endpoint the stack uses for DynamoDB. With the embedded emulators it answers SQS too,
    /// so one `AWS_ENDPOINT_URL` serves every SDK client.
    pub fn aws_endpoint(&self) -> String {
        self.aws_endpoint.clone()
    }

    /// The AWS endpoint the stack uses for SQS (the same one as [`Stack::aws_endpoint`]).
    pub fn sqs_endpoint(&self) -> String {
        self.aws_endpoint.clone()
    }

    /// URL of the order queue.
    pub fn order_queue_url(&self) -> &str {
        &self.order_queue_url
    }

    /// ARN of the order queue, the `eventSourceARN` of the records the consumer receives.
    pub fn order_queue_arn(&self) -> &str {
        &self.order_queue_arn
    }

    /// URL of the order queue's dead-letter queue.
    pub fn dlq_url(&self) -> &str {
        &self.dlq_url
    }

    /// Kills the payment consumer, the reconciler and the hold sweeper where they stand, as a
    /// Lambda instance dies mid-batch: their tasks are aborted, nothing they hold is released or
    /// acknowledged (a batch in flight comes back after the visibility timeout). A test fault, not
    /// a shutdown.
    pub fn crash_workers(&mut self) {
        drop(self.worker.take());
    }

    /// Starts the workers again (after [`Stack::crash_workers`]; a no-op while they run).
    pub async fn start_workers(&mut self) -> anyhow::Result<()> {
        if self.worker.is_none() {
            self.worker = Some(
                WorkerTasks::start(
                    &self.functions_config,
                    &self.order_queue_arn,
                    &self.local,
                    &self.metrics,
                )
                .await?,
            );
        }
        Ok(())
    }

    /// The fault rules of the embedded AWS endpoint and the WebSocket management API
    /// (`/_local/faults` on the AWS endpoint sets the same rules over HTTP).
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The resolved settings: the endpoint in use and the order queue's URL filled in. With the
    /// embedded endpoint, `webhook_secret_id` and `auth.jwt_secret_id` name the webhook and JWT
    /// secrets in its Secrets Manager, and `webhook_secret` and `auth.jwt_secret` are the values
    /// they were created with (a rotation changes the store, not these).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Stops accepting requests, lets in-flight ones finish (up to a few seconds), then stops the
    /// emulators.
    pub async fn shutdown(mut self) {
        if let Some(worker) = self.worker.take() {
            worker.stop(SHUTDOWN_GRACE).await;
        }
        if let Some(gateway) = self.gateway.take() {
            gateway.stop(SHUTDOWN_GRACE).await;
        }
        // Closes every open WebSocket (1001) and waits for their `$disconnect` handlers.
        if let Some(ws_gateway) = self.ws_gateway.take() {
            ws_gateway.stop(SHUTDOWN_GRACE).await;
        }
        if let Some(emulators) = self.emulators.take() {
            emulators.stop(SHUTDOWN_GRACE).await;
        }
    }
}

impl Drop for Stack {
    /// Aborts every task the stack spawned, so a test that forgets to shut down leaves nothing running.
    fn drop(&mut self) {
        // The consumer and the gateway go first: they hold SDK clients of the emulators.
        drop(self.worker.take());
        drop(self.gateway.take());
        drop(self.ws_gateway.take());
        drop(self.emulators.take());
    }
}
