//! `local-stack`: the whole stack on one machine, until Ctrl-C or SIGTERM (what process managers,
//! containers and `kill` send); either stops it gracefully.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use chrono::{Duration, Utc};
use localstack::{LocalSettings, Stack, StackOptions};
use shared::config::{AuthSettings, DEVELOPMENT_WEBHOOK_SECRET, LogFormat};
use shared::{Config, Footprint};

/// The allocator of the whole local stack: with glibc's, `malloc` and `free` took about a fifth of
/// the process's CPU during a flash sale (perf, docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Every setting read goes through `recorded`, so the banner can list those the environment set.
    let recorded = RefCell::new(BTreeMap::new());
    let lookup = |name: &str| {
        let value = std::env::var(name).ok().filter(|v| !v.is_empty());
        if let Some(value) = &value {
            recorded.borrow_mut().insert(name.to_owned(), value.clone());
        }
        value
    };
    let mut config =
        Config::from_lookup(&Footprint::everything(), lookup).context("reading the settings")?;
    // The one place with a default key: the local stack, whose AWS endpoint is always an emulator
    // (or LocalStack), signs its development tokens with the published development secret.
    if config.auth.jwt_secret.is_none() && config.auth.jwt_public_key.is_none() {
        config.auth.jwt_secret = AuthSettings::development().jwt_secret;
    }
    if config.webhook_secret.is_none() {
        config.webhook_secret = Some(DEVELOPMENT_WEBHOOK_SECRET.to_owned());
    }
    let local = LocalSettings::from_lookup(lookup).context("reading the local stack's settings")?;
    let settings = settings_line(&recorded.into_inner());
    // Humans read this terminal: pretty lines unless LOG_FORMAT asks otherwise.
    let log_format = if std::env::var_os("LOG_FORMAT").is_some() {
        config.log_format
    } else {
        LogFormat::Pretty
    };
    shared::telemetry::init(log_format);
    // Installed before the stack starts: from here on SIGTERM no longer kills the process at once,
    // so a stop that arrives during start-up still closes connections and flushes the emulators.
    let mut signals =
        StopSignals::install().context("installing the Ctrl-C and SIGTERM handlers")?;

    let data_dir = local.data_dir.clone();
    let conditions = conditions_line(&local);
    let stack = Stack::start(StackOptions {
        config,
        local,
        seed_products: true,
        run_workers: true,
    })
    .await?;
    print_banner(&stack, data_dir.as_deref(), &conditions, &settings);

    let signal = signals.next().await;
    println!("\n{signal}: stopping the local stack...");
    tokio::select! {
        () = stack.shutdown() => Ok(()),
        // A second signal is someone who will not wait for the grace periods.
        signal = signals.next() => {
            eprintln!("{signal} again: exiting without waiting for the shutdown to finish");
            std::process::exit(1);
        }
    }
}

/// Ctrl-C (SIGINT) and SIGTERM, both handled from the moment [`StopSignals::install`] returns.
struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(StopSignals {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(StopSignals {})
        }
    }

    /// Waits for the next Ctrl-C or SIGTERM; the signal's name.
    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => "Ctrl-C",
                _ = self.terminate.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                // No handler, no signal to wait for: run until the process is killed.
                std::future::pending::<()>().await;
            }
            "Ctrl-C"
        }
    }
}

/// Where the tables are kept, for the banner.
fn data_kept(data_dir: Option<&Path>) -> String {
    match data_dir {
        None => "in memory, gone when the stack stops (LOCAL_DATA_DIR keeps them)".to_owned(),
        Some(dir) => {
            // Absolute, so the line says where to look whatever the working directory.
            let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
            format!(
                "{} (LOCAL_DATA_DIR; queue messages stay in memory, a start re-sends unsettled orders)",
                dir.join(LocalSettings::DYNAMODB_FILE).display()
            )
        }
    }
}

/// What the endpoint emulates of AWS's operating conditions, for the banner.
fn conditions_line(local: &LocalSettings) -> String {
    let on_off = |on: bool| if on { "on" } else { "off" };
    let partitions = match local.effective_partition_units() {
        None => "off".to_owned(),
        Some((write, read)) => format!(
            "{write} WCU/s and {read} RCU/s per partition key (PARTITION_SCALE {})",
            local.partition_scale
        ),
    };
    format!(
        "latency {}, transaction conflicts {}, partition limits {partitions} (AWS_CONDITIONS; /_local/conditions)",
        on_off(local.latency.is_some()),
        on_off(local.transaction_conflicts),
    )
}

/// The settings the environment set, for the banner: `NAME=value`, secrets and keys shown only as
/// set. Everything else is at its default (README, "Configuration").
fn settings_line(set: &BTreeMap<String, String>) -> String {
    if set.is_empty() {
        return "all at their defaults (README, Configuration)".to_owned();
    }
    let shown: Vec<String> = set
        .iter()
        .map(
            |(name, value)| match name.contains("SECRET") || name.contains("KEY") {
                true => format!("{name}=(set)"),
                false => format!("{name}={value}"),
            },
        )
        .collect();
    format!("{}; the rest at their defaults", shown.join(" "))
}

fn print_banner(stack: &Stack, data_dir: Option<&Path>, conditions: &str, settings: &str) {
    let config = stack.config();
    let data = data_kept(data_dir);
    let expires_at = Utc::now() + Duration::hours(24);
    // With JWT_PUBLIC_KEY set the stack accepts only RS256 tokens, which it cannot sign.
    let Some(secret) = config
        .auth
        .jwt_secret
        .as_deref()
        .filter(|_| config.auth.jwt_public_key.is_none())
    else {
        println!(
            "\nLocal stack ready: HTTP API {http} (JWT_PUBLIC_KEY is set: bring RS256 tokens).\n  Console        {http}/  (paste a token: no development tokens)\n  Tables kept    {data}\n  AWS conditions {conditions}\n  Settings       {settings}",
            http = stack.http_url()
        );
        return;
    };
    let user_token = shared::api::auth::mint_hs256(secret, "dev-user", None, expires_at);
    let admin_token = shared::api::auth::mint_hs256(secret, "dev-admin", Some("admin"), expires_at);
    let http = stack.http_url();
    println!(
        r#"
Local stack ready.

  HTTP API       {http}
  Console        {http}/
  WebSocket API  {ws}/?token=<JWT>  (management API: {ws_management}/@connections/{{connectionId}})
  AWS endpoint   {aws}  (DynamoDB, SQS and Secrets Manager; export AWS_ENDPOINT_URL={aws} to point SDK clients and the AWS CLI at it)
  Order queue    {queue}
  Dead letters   {dlq}
  Tables kept    {data}
  AWS conditions {conditions}
  Settings       {settings}

Development tokens (valid 24 hours):
  export TOKEN={user_token}
  export ADMIN_TOKEN={admin_token}

Try it:
  curl -s {http}/health
  curl -s {http}/products/espresso-beans
  curl -s -X POST {http}/orders -H "Authorization: Bearer {user_token}" -H 'Content-Type: application/json' -d '{{"idempotency_key":"first-order","items":[{{"product_id":"espresso-beans","quantity":2}}]}}'

Watch dev-user's order events (in a second terminal, before placing the order):
  {ws_listen} '{ws}/?token={user_token}'

Ctrl-C (or SIGTERM) stops everything."#,
        ws = stack.ws_url(),
        ws_management = config.ws_management_endpoint.as_deref().unwrap_or_default(),
        aws = stack.aws_endpoint(),
        queue = stack.order_queue_url(),
        dlq = stack.dlq_url(),
        ws_listen = sibling_tool("ws-listen"),
    );
}

/// How to start the bundled tool `name`: the binary next to this one when `make run` built it with
/// the stack (it starts at once), else the cargo command that builds it with the same profile.
fn sibling_tool(name: &str) -> String {
    let sibling = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join(name)))
        .filter(|path| path.is_file());
    match sibling {
        Some(path) => {
            let shown = std::env::current_dir()
                .ok()
                .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
                .unwrap_or(path);
            shown.display().to_string()
        }
        None => format!("cargo run --profile local -q -p order-localstack --bin {name} --"),
    }
}
