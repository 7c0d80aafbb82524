//! The randomized soak (`load-test soak`, `make soak`): shoppers run orders, cancels, holds,
//! checkouts, expiries, webhooks before and after their orders and duplicate order messages
//! against a local stack started in this process, while a seeded schedule turns injected faults
//! on and off and now and then crashes the workers. Every `checkpoint_every` the faults go off,
//! the shoppers pause, and once the stack is quiet every invariant is checked
//! ([`checkpoint`]); between checkpoints each product's stock is watched. The seed replays the
//! run's choices (not its timing); memory is sampled throughout.

mod checkpoint;
mod memory;
mod schedule;
mod shopper;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use localstack::{LocalSettings, Stack};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use self::checkpoint::{Ledger, ProductAccount};
use self::shopper::{World, lock};
use crate::Api;
use crate::scenarios::in_process_stack_options;

/// Holds expire after this, so that each round sees expiries (and a checkpoint waits this long
/// for the round's holds to settle).
const HOLD_TTL: Duration = Duration::from_secs(3);
/// The hold sweeper's period.
const SWEEP_EVERY: Duration = Duration::from_millis(250);
/// Initial stock and stock shards of each product: the small one runs out and is restocked.
const PRODUCTS: [(u64, u32); 4] = [(600, 1), (300, 4), (80, 1), (2_000, 8)];

/// The local stack's settings of AWS conditions (`localstack/src/conditions`: emulated latency,
/// transaction conflicts, per-key partition limits) that the soak takes from its environment, so
/// that `AWS_CONDITIONS=on make soak` (and the short soak of `make test`) soaks under them. Every
/// other local setting is the soak's own.
pub const CONDITIONS_SETTINGS: [&str; 7] = [
    "AWS_CONDITIONS",
    "AWS_LATENCY",
    "AWS_TRANSACTION_CONFLICTS",
    "PARTITION_LIMIT",
    "PARTITION_SCALE",
    "PARTITION_WRITE_UNITS",
    "PARTITION_READ_UNITS",
];

/// The [`CONDITIONS_SETTINGS`] set in this process's environment.
pub fn conditions_from_env() -> Vec<(String, String)> {
    CONDITIONS_SETTINGS
        .iter()
        .filter_map(|name| {
            let value = std::env::var(name).ok().filter(|v| !v.trim().is_empty())?;
            Some(((*name).to_owned(), value))
        })
        .collect()
}

/// How long, with which seed, how many shoppers, how often to check.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    /// How long the shoppers shop (the last checkpoint comes after it).
    pub duration: Duration,
    /// Seeds every random choice: the shoppers', the fault schedule's, the payments'.
    pub seed: u64,
    /// Concurrent shoppers.
    pub shoppers: usize,
    /// Time between checkpoints.
    pub checkpoint_every: Duration,
    /// Print a line per checkpoint.
    pub progress: bool,
    /// Where the stack keeps its tables (`LOCAL_DATA_DIR`); `None`: in memory, where RSS grows
    /// with every order the run adds.
    pub data_dir: Option<std::path::PathBuf>,
    /// Settings of AWS conditions for the stack (names from [`CONDITIONS_SETTINGS`]); `new` takes
    /// them from the environment.
    pub conditions: Vec<(String, String)>,
}

impl SoakOptions {
    /// `duration` with `seed`, 12 shoppers, a checkpoint every 15 s, progress printed.
    pub fn new(duration: Duration, seed: u64) -> Self {
        SoakOptions {
            duration,
            seed,
            shoppers: 12,
            checkpoint_every: Duration::from_secs(15),
            progress: true,
            data_dir: None,
            conditions: conditions_from_env(),
        }
    }
}

/// What a soak did and found.
#[derive(Debug, Clone)]
pub struct SoakReport {
    /// The seed: `SOAK_SEED=<seed>` replays the run's choices.
    pub seed: u64,
    /// Whether the stock locks were on (drawn from the seed).
    pub stock_locks: bool,
    /// The settings of AWS conditions the stack ran with (none: conditions off).
    pub conditions: Vec<(String, String)>,
    /// From the first shopper to the end of the last checkpoint.
    pub elapsed: Duration,
    /// Operations and client-side events by kind.
    pub operations: BTreeMap<String, u64>,
    /// Faults injected by `<service>.<operation>.<fault>`.
    pub faults: BTreeMap<String, u64>,
    /// Fault rule sets the schedule switched to.
    pub fault_schedules: u64,
    /// Times the workers were crashed and restarted.
    pub worker_crashes: u64,
    /// Checkpoints passed.
    pub checkpoints: u64,
    /// Invariant checks passed at checkpoints.
    pub checks_passed: u64,
    /// Pushes with a lower `version` than one their client already had for the order (allowed,
    /// counted: clients ignore them).
    pub stale_pushes: u64,
    /// Stock bounds checked between checkpoints.
    pub live_checks_passed: u64,
    /// RSS at each checkpoint, MB.
    pub rss_mb_at_checkpoints: Vec<u64>,
    /// Highest RSS sampled (every second), MB.
    pub peak_rss_mb: u64,
    /// `VmHWM` at the end, MB.
    pub hwm_mb: u64,
    /// The first invariant that failed, with what differed.
    pub failure: Option<String>,
}

impl SoakReport {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }

    /// Every fault injected.
    pub fn faults_injected(&self) -> u64 {
        self.faults.values().sum()
    }

    /// Faults injected by `<service>.<fault>`, over every operation.
    pub fn faults_by_kind(&self) -> BTreeMap<String, u64> {
        let mut kinds = BTreeMap::new();
        for (key, count) in &self.faults {
            let mut parts = key.split('.');
            let (service, fault) = (parts.next().unwrap_or(""), parts.next_back().unwrap_or(""));
            *kinds.entry(format!("{service}.{fault}")).or_default() += count;
        }
        kinds
    }

    /// The compact summary printed at the end.
    pub fn summary(&self) -> String {
        let list = |map: &BTreeMap<String, u64>| {
            map.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut operations = self.operations.clone();
        let retries = operations.remove("retries").unwrap_or(0);
        let gave_up = operations.remove("gave up").unwrap_or(0);
        let total: u64 = operations.values().sum();
        let mut out = String::new();
        let conditions = if self.conditions.is_empty() {
            "off".to_owned()
        } else {
            self.conditions
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let _ = writeln!(
            out,
            "soak: {:.0?}, seed {}, stock locks {}, AWS conditions {conditions}",
            self.elapsed,
            self.seed,
            if self.stock_locks { "on" } else { "off" }
        );
        let _ = writeln!(out, "operations: {total} ({})", list(&operations));
        let _ = writeln!(
            out,
            "client retries (same key): {retries}, requests given up after 40 tries: {gave_up}"
        );
        let _ = writeln!(
            out,
            "faults injected: {} over {} schedules ({})",
            self.faults_injected(),
            self.fault_schedules,
            list(&self.faults_by_kind())
        );
        let _ = writeln!(out, "worker crashes: {}", self.worker_crashes);
        let _ = writeln!(
            out,
            "checkpoints: {}, invariant checks passed: {} (+ {} live stock bounds); \
             stale pushes (ignored by clients): {}",
            self.checkpoints, self.checks_passed, self.live_checks_passed, self.stale_pushes
        );
        let series: Vec<String> = self
            .rss_mb_at_checkpoints
            .iter()
            .map(u64::to_string)
            .collect();
        let _ = writeln!(
            out,
            "memory: peak RSS {} MB (VmHWM {} MB); RSS MB at checkpoints: {}",
            self.peak_rss_mb,
            self.hwm_mb,
            series.join(" ")
        );
        match &self.failure {
            None => {
                let _ = writeln!(out, "verdict: PASS");
            }
            Some(failure) => {
                let _ = writeln!(
                    out,
                    "verdict: FAIL: {failure}\nreplay with SOAK_SEED={}",
                    self.seed
                );
            }
        }
        out
    }
}

/// `300`, `300s`, `5m`, `1h`, `1500ms`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 300, 90s, 5m or 1h"))?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(number)),
        "ms" => Ok(Duration::from_millis(number)),
        "m" | "min" => Ok(Duration::from_secs(number * 60)),
        "h" => Ok(Duration::from_secs(number * 3600)),
        _ => Err(format!("{text:?}: unknown unit {unit:?} (ms, s, m or h)")),
    }
}

/// Runs the soak. `Err` only when the stack cannot be set up; a failed invariant is in the
/// report.
pub async fn run(options: &SoakOptions) -> anyhow::Result<SoakReport> {
    let seed = options.seed;
    let mut rng = StdRng::seed_from_u64(seed);
    let stock_locks = rng.random_bool(0.5);
    let mut stack = start_stack(
        seed,
        stock_locks,
        options.data_dir.as_deref(),
        &options.conditions,
    )
    .await?;
    let secret = stack
        .config()
        .auth
        .jwt_secret
        .clone()
        .context("the local stack signs tokens with an HS256 secret")?;
    let webhook_secret = stack
        .config()
        .webhook_secret
        .clone()
        .context("the local stack has a webhook secret")?;
    let api = Api::new(&stack.http_url(), &secret, &format!("soak{seed}"))?;

    let mut accounts = Vec::new();
    for (index, (stock, shards)) in PRODUCTS.into_iter().enumerate() {
        let id = api
            .create_sharded_product(&format!("soak {index}"), stock, shards)
            .await?;
        accounts.push(ProductAccount {
            id,
            initial: stock,
            restocked: 0,
            retired: 0,
        });
    }
    let ledger = Arc::new(Mutex::new(Ledger {
        products: accounts,
        live_checks: 0,
        live_failure: None,
    }));
    let products = lock(&ledger)
        .products
        .iter()
        .map(|p| p.id.clone())
        .collect();
    let world = Arc::new(World::new(
        api.clone(),
        stack.http_url(),
        stack.ws_url(),
        crate::client::sqs_client(&stack.sqs_endpoint()).await,
        stack.aws_endpoint(),
        stack.order_queue_url().to_owned(),
        webhook_secret,
        products,
        options.shoppers,
    )?);
    for (index, book) in world.books.iter().enumerate() {
        shopper::new_round(&world, book, api.user(&format!("s{index}-r0"))).await;
    }

    if options.progress {
        println!(
            "soak: seed {seed} (replay with SOAK_SEED={seed}), for {:?}, {} shoppers, stock locks {}, checkpoint every {:?}",
            options.duration,
            options.shoppers,
            if stock_locks { "on" } else { "off" },
            options.checkpoint_every
        );
    }
    let sampler = memory::RssSampler::start();
    let shoppers: Vec<_> = (0..options.shoppers)
        .map(|index| tokio::spawn(shopper::shop(Arc::clone(&world), index, seed)))
        .collect();
    let watcher = {
        let (world, ledger) = (Arc::clone(&world), Arc::clone(&ledger));
        tokio::spawn(async move {
            while !world.stop.load(Ordering::Acquire) {
                tokio::time::sleep(Duration::from_secs(1)).await;
                checkpoint::live_check(&world, &ledger).await;
            }
        })
    };

    let started = Instant::now();
    let deadline = started + options.duration;
    let mut next_checkpoint = started + options.checkpoint_every;
    let mut next_schedule = started;
    let mut report = SoakReport {
        seed,
        stock_locks,
        conditions: options.conditions.clone(),
        elapsed: Duration::ZERO,
        operations: BTreeMap::new(),
        faults: BTreeMap::new(),
        fault_schedules: 0,
        worker_crashes: 0,
        checkpoints: 0,
        checks_passed: 0,
        live_checks_passed: 0,
        stale_pushes: 0,
        rss_mb_at_checkpoints: Vec::new(),
        peak_rss_mb: 0,
        hwm_mb: 0,
        failure: None,
    };
    loop {
        if let Some(failure) = lock(&ledger).live_failure.clone() {
            report.failure = Some(format!("between checkpoints: {failure}"));
            break;
        }
        let now = Instant::now();
        if now >= next_checkpoint || now >= deadline {
            let last = now >= deadline;
            let round = report.checkpoints + 1;
            match run_checkpoint(&mut stack, &world, &ledger, round, last).await {
                Ok(checked) => {
                    report.checkpoints = round;
                    report.checks_passed += checked.checks;
                    report.stale_pushes += checked.stale_pushes;
                    let rss = memory::mb(memory::status_kb("VmRSS"));
                    report.rss_mb_at_checkpoints.push(rss);
                    let tables = options
                        .data_dir
                        .as_deref()
                        .map(memory::tables_mb)
                        .map_or_else(String::new, |mb| format!(", tables on disk {mb} MB"));
                    if options.progress {
                        println!(
                            "checkpoint {round} at {:.0?}: quiet after {:.1?}, {} orders this round, {} checks passed, faults so far {}, rss {rss} MB{tables}",
                            started.elapsed(),
                            checked.quiet_after,
                            checked.orders,
                            checked.checks,
                            stack.faults().injected_total(),
                        );
                    }
                }
                Err(failure) => {
                    report.failure = Some(format!("checkpoint {round}: {failure}"));
                    break;
                }
            }
            if last {
                break;
            }
            // A round shorter than half the period would check little: the last one runs on.
            next_checkpoint = Instant::now() + options.checkpoint_every;
            if next_checkpoint + options.checkpoint_every / 2 > deadline {
                next_checkpoint = deadline;
            }
            next_schedule = Instant::now();
            continue;
        }
        if now >= next_schedule {
            let (rules, lasts) = schedule::next_rules(&mut rng);
            stack
                .faults()
                .set(rules)
                .map_err(anyhow::Error::msg)
                .context("a fault rule of the schedule")?;
            report.fault_schedules += 1;
            next_schedule = now + lasts;
            if rng.random_bool(0.15) {
                stack.crash_workers();
                report.worker_crashes += 1;
                tokio::time::sleep(Duration::from_millis(rng.random_range(100..1_500))).await;
                restart_workers(&mut stack).await?;
            }
        }
        let wake = next_schedule.min(next_checkpoint).min(deadline);
        tokio::time::sleep_until(wake.into()).await;
    }

    world.stop.store(true, Ordering::Release);
    stack.faults().clear();
    for shopper in shoppers {
        let _ = tokio::time::timeout(Duration::from_secs(30), shopper).await;
    }
    watcher.abort();
    report.elapsed = started.elapsed();
    report.operations = world
        .counts()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    report.faults = stack.faults().injected();
    report.live_checks_passed = lock(&ledger).live_checks;
    report.peak_rss_mb = memory::mb(sampler.peak_kb());
    report.hwm_mb = memory::mb(memory::status_kb("VmHWM"));
    drop(sampler);
    stack.shutdown().await;
    Ok(report)
}

/// A stack with short holds, a fast sweeper and reconciler, quick redelivery, payments seeded
/// from the soak's seed, no rate limit, and the AWS conditions of `conditions`.
async fn start_stack(
    seed: u64,
    stock_locks: bool,
    data_dir: Option<&std::path::Path>,
    conditions: &[(String, String)],
) -> anyhow::Result<Stack> {
    let local = local_settings(conditions)?;
    let mut options = in_process_stack_options(stock_locks, local);
    options.config.hold_ttl = HOLD_TTL;
    options.config.reconcile_after = Duration::from_secs(2);
    options.config.payments.success_rate = 0.7;
    options.config.payments.seed = Some(seed);
    options.local.hold_sweep_interval = SWEEP_EVERY;
    options.local.queue_visibility_timeout = Duration::from_secs(1);
    options.local.max_receive_count = 10;
    options.local.data_dir = data_dir.map(std::path::Path::to_path_buf);
    Stack::start(options)
        .await
        .context("starting the local stack")
}

/// Ephemeral ports and `conditions` (names from [`CONDITIONS_SETTINGS`]); every other local
/// setting at its default.
fn local_settings(conditions: &[(String, String)]) -> anyhow::Result<LocalSettings> {
    LocalSettings::from_lookup(|name| match name {
        "HTTP_PORT" | "WS_PORT" | "AWS_PORT" => Some("0".to_owned()),
        name => conditions
            .iter()
            .find(|(setting, _)| setting == name)
            .map(|(_, value)| value.clone()),
    })
    .context("the AWS conditions settings")
}

/// Starts the workers again; under faults their start may fail, so it is retried, the last time
/// with the faults off.
async fn restart_workers(stack: &mut Stack) -> anyhow::Result<()> {
    for _ in 0..5 {
        if stack.start_workers().await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stack.faults().clear();
    stack
        .start_workers()
        .await
        .context("restarting the workers")
}

/// Faults off, workers up, shoppers paused; the checks; restocks; then (unless `last`) the next
/// round's users with their WebSockets, and the shoppers resume.
async fn run_checkpoint(
    stack: &mut Stack,
    world: &Arc<World>,
    ledger: &Mutex<Ledger>,
    round: u64,
    last: bool,
) -> Result<checkpoint::Checked, String> {
    stack.faults().clear();
    restart_workers(stack).await.map_err(|e| format!("{e:#}"))?;
    let pause = world.gate.write().await;
    if last {
        world.stop.store(true, Ordering::Release);
    }
    let paused_at = Instant::now();
    let checked = checkpoint::check(world, ledger, paused_at, HOLD_TTL + SWEEP_EVERY * 4).await?;
    if !last {
        restock(world, ledger).await?;
        for (index, book) in world.books.iter().enumerate() {
            let user = world.api.user(&format!("s{index}-r{round}"));
            shopper::new_round(world, book, user).await;
        }
    }
    drop(pause);
    Ok(checked)
}

/// Tops up every product below a quarter of its initial stock by half of it (`PUT` sets the
/// absolute stock, so only while everything is quiet); the ledger first, so that the stock
/// watcher's bound is never below the stock.
async fn restock(world: &World, ledger: &Mutex<Ledger>) -> Result<(), String> {
    let admin = world.api.admin_token();
    for (index, id) in world.products.iter().enumerate() {
        let stock = world.api.stock(id).await.map_err(|e| format!("{e:#}"))?;
        let initial = lock(ledger).products[index].initial;
        if stock >= initial / 4 {
            continue;
        }
        let added = initial / 2;
        lock(ledger).products[index].restocked += added;
        let answer = world
            .api
            .send(
                reqwest::Method::PUT,
                &format!("/products/{id}"),
                Some(&admin),
                Some(&json!({"stock": stock + added})),
            )
            .await;
        if answer.status != 200 {
            return Err(format!("restock of {id}: {}", answer.summary()));
        }
        world.count("restock");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stack_takes_only_the_conditions_settings_and_ephemeral_ports() {
        assert_eq!(local_settings(&[]).unwrap(), LocalSettings::ephemeral());

        let on = local_settings(&[
            ("AWS_CONDITIONS".to_owned(), "on".to_owned()),
            ("PARTITION_SCALE".to_owned(), "0.05".to_owned()),
        ])
        .unwrap();

        assert!(on.aws_conditions && on.partition_limit && on.transaction_conflicts);
        assert_eq!(on.partition_scale, 0.05);
        assert_eq!((on.http_port, on.ws_port, on.aws_port), (0, 0, 0));
        assert!(local_settings(&[("AWS_CONDITIONS".to_owned(), "maybe".to_owned())]).is_err());
    }

    #[test]
    fn durations_take_seconds_minutes_and_hours() {
        assert_eq!(parse_duration("300"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("m").is_err());
    }
}
