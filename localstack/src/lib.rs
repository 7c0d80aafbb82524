//! The whole order-processing stack on one machine: embedded DynamoDB (Dynoxide) and SQS
//! (rustack-sqs) behind one AWS endpoint, idempotent provisioning of tables and queues, and the
//! API Gateway emulation that feeds the very same handlers the Lambda binaries run.
//!
//! Every [`Stack`] binds its own port-0 listeners and reads every setting from its
//! [`StackOptions`], so tests run many stacks in one process side by side.

mod emulators;
mod gateway;
mod provision;
mod server;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use shared::Config;

use crate::emulators::Emulators;
use crate::server::ServerTask;

/// Account id in the ARNs and queue URLs the local stack hands out (LocalStack's default).
pub(crate) const LOCAL_ACCOUNT_ID: &str = "000000000000";

/// How long shutdown waits for in-flight requests before it aborts what is left.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What to start.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Every setting; `http_port` 0 binds an ephemeral port, `aws_endpoint_url` set means "use that
    /// endpoint and start no emulator".
    pub config: Config,
    /// Whether to create the demo products (idempotent).
    pub seed_products: bool,
}

/// A running stack. Dropping it aborts everything it started; [`Stack::shutdown`] lets
/// in-flight requests finish first.
pub struct Stack {
    config: Config,
    http_addr: SocketAddr,
    aws_endpoint: String,
    order_queue_url: String,
    dlq_url: String,
    gateway: Option<ServerTask>,
    emulators: Option<Emulators>,
}

impl Stack {
    /// Starts emulators (unless `config.aws_endpoint_url` is set), provisions tables and queues
    /// idempotently, optionally seeds products, and serves the HTTP API on `config.http_port`
    /// (0 = ephemeral) on 127.0.0.1.
    pub async fn start(options: StackOptions) -> anyhow::Result<Stack> {
        let mut config = options.config;
        let emulators = match &config.aws_endpoint_url {
            Some(_) => None,
            None => Some(
                Emulators::start(&config.aws_region)
                    .await
                    .context("starting the embedded DynamoDB and SQS")?,
            ),
        };
        if let Some(emulators) = &emulators {
            config.aws_endpoint_url = Some(emulators.endpoint().to_owned());
        }
        let aws_endpoint = config.aws_endpoint_url.clone().unwrap_or_default();

        let queues = provision::provision(&config, options.seed_products).await?;
        config.order_queue_url = Some(queues.order_queue_url.clone());

        let app = shared::AwsApp::connect(&config)
            .await
            .context("connecting the handlers to DynamoDB and SQS")?;
        let (gateway, http_addr) = gateway::serve_http(app, config.http_port, &config.aws_region)
            .await
            .with_context(|| format!("serving the HTTP API on 127.0.0.1:{}", config.http_port))?;
        tracing::info!(http = %http_addr, aws = %aws_endpoint, "local stack ready");

        Ok(Stack {
            config,
            http_addr,
            aws_endpoint,
            order_queue_url: queues.order_queue_url,
            dlq_url: queues.dlq_url,
            gateway: Some(gateway),
            emulators,
        })
    }

    /// Base URL of the HTTP API, e.g. `http://127.0.0.1:41234`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http_addr)
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

    /// URL of the order queue's dead-letter queue.
    pub fn dlq_url(&self) -> &str {
        &self.dlq_url
    }

    /// The resolved settings: the endpoint in use and the order queue's URL filled in.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Stops accepting requests, lets in-flight ones finish (up to a few seconds), then stops the
    /// emulators.
    pub async fn shutdown(mut self) {
        if let Some(gateway) = self.gateway.take() {
            gateway.stop(SHUTDOWN_GRACE).await;
        }
        if let Some(emulators) = self.emulators.take() {
            emulators.stop(SHUTDOWN_GRACE).await;
        }
    }
}

impl Drop for Stack {
    /// Aborts every task the stack spawned, so a test that forgets to shut down leaves nothing running.
    fn drop(&mut self) {
        // The gateway goes first: its handlers hold SDK clients of the emulators.
        drop(self.gateway.take());
        drop(self.emulators.take());
    }
}
