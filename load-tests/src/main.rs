//! `load-test`: the load scenarios against any stack (`run`), or both lock modes of the local
//! stack and the benchmark report (`bench`, what `make bench` calls), or the randomized soak
//! under injected faults (`soak`, what `make soak` calls).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use load_tests::bench::{self, BenchOptions};
use load_tests::{Api, Scenario, Sizes, Target, Trust, Verdict};
use load_tests::{run, soak};

const USAGE: &str = "\
usage:
  load-test run --base-url URL --ws-url URL [--aws-endpoint URL --order-queue-url URL]
                [--jwt-secret S] [--ca-cert PEM] [--label NAME] [--stock-locks on|off]
                [--scenarios oversell,idempotency,high-load,flash-sale,holds,ceiling,cost]
                [--flash-stock 20000] [--buyers 64] [--stock-shards 1] [--retry-busy]
                [--quick] [--json-out FILE]
  load-test bench --stack-bin PATH --out docs/benchmarks.md [--quick] [--json-out FILE]
                  [--extra-dir target/bench] [--scenarios ...] [--jwt-secret S]
                  [--only locks|hot|partitions] [--hot-runs 'S=8 lock-free;S=64 locks']
  load-test soak [--for 5m] [--seed N] [--shoppers 12] [--checkpoint-every 15s] [--tables disk|memory]

--base-url and --ws-url take https:// and wss:// (the `tls` feature, on by default): the
system's roots are trusted, and with --ca-cert (or LOAD_TEST_CA_CERT) the certificates of that PEM
file too, for a private or self-signed front. The JWT secret signs every user's token and the
admin token the scenarios create their products with; --jwt-secret, else LOAD_TEST_JWT_SECRET
(out of the process list), else the local stack's development secret.
--stock-shards: the flash sale's product over N stock items (1-64). --retry-busy: its buyers
retry a 503 or 409 LOCK_CONFLICT with the same key after a short pause (as with the partition
limit on). bench runs both lock modes, then a hot product over 1, 8 and 64 stock shards under
AWS_CONDITIONS=on; --only: one phase (locks, hot, or partitions: the older flash sale over 1
and 16 shards under the partition limit alone), replacing its part of the report and keeping
the rest; --hot-runs: only the hot-product runs with these labels (a trial, not a report of
record). soak: an in-process
local stack under random faults; --for takes 300, 300s, 5m; the seed is random unless --seed
or SOAK_SEED gives it, and printed so that a failure replays; --tables disk (the default, a
temporary LOCAL_DATA_DIR) keeps the tables out of the process, so its RSS shows the stack's own
memory, memory keeps them in it.

Exits 1 when a scenario FAILs (bench writes its report first) or a soak check fails.";

/// `--name value` pairs and bare `--flag`s.
struct Args {
    pairs: Vec<(String, Option<String>)>,
}

impl Args {
    fn parse(raw: &[String]) -> anyhow::Result<Self> {
        let mut pairs = Vec::new();
        let mut iter = raw.iter().peekable();
        while let Some(arg) = iter.next() {
            let Some(name) = arg.strip_prefix("--") else {
                bail!("unexpected argument {arg:?}");
            };
            let value = match iter.peek() {
                Some(next) if !next.starts_with("--") => iter.next().cloned(),
                _ => None,
            };
            pairs.push((name.to_owned(), value));
        }
        Ok(Args { pairs })
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    fn required(&self, name: &str) -> anyhow::Result<&str> {
        self.value(name)
            .with_context(|| format!("--{name} is required\n\n{USAGE}"))
    }

    fn flag(&self, name: &str) -> bool {
        self.pairs.iter().any(|(n, _)| n == name)
    }

    fn number<T: std::str::FromStr>(&self, name: &str) -> anyhow::Result<Option<T>> {
        self.value(name)
            .map(|v| {
                v.parse()
                    .map_err(|_| anyhow::anyhow!("--{name}: {v:?} is not a number"))
            })
            .transpose()
    }

    fn scenarios(&self) -> anyhow::Result<Vec<Scenario>> {
        match self.value("scenarios") {
            None => Ok(Scenario::ALL.to_vec()),
            Some(list) => list
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(|s| s.parse::<Scenario>().map_err(anyhow::Error::msg))
                .collect(),
        }
    }

    fn jwt_secret(&self) -> String {
        self.value("jwt-secret")
            .map(str::to_owned)
            .or_else(|| non_empty_env("LOAD_TEST_JWT_SECRET"))
            .unwrap_or_else(|| shared::config::DEVELOPMENT_JWT_SECRET.to_owned())
    }

    /// `--ca-cert`, else `LOAD_TEST_CA_CERT`.
    fn ca_cert(&self) -> Option<PathBuf> {
        self.value("ca-cert")
            .map(str::to_owned)
            .or_else(|| non_empty_env("LOAD_TEST_CA_CERT"))
            .map(PathBuf::from)
    }
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

#[tokio::main]
async fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match raw.first().map(String::as_str) {
        Some("run") => run(&raw[1..]).await,
        Some("bench") => bench_command(&raw[1..]).await,
        Some("soak") => soak(&raw[1..]).await,
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("load-test: {error:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(raw: &[String]) -> anyhow::Result<bool> {
    let args = Args::parse(raw)?;
    let mut sizes = if args.flag("quick") {
        Sizes::quick()
    } else {
        Sizes::full()
    };
    if let Some(stock) = args.number("flash-stock")? {
        sizes.flash_stock = stock;
    }
    if let Some(buyers) = args.number("buyers")? {
        sizes.buyers = buyers;
    }
    if let Some(shards) = args.number::<u32>("stock-shards")? {
        if !(1..=64).contains(&shards) {
            bail!("--stock-shards: {shards} is not 1 to 64");
        }
        sizes.stock_shards = shards;
    }
    sizes.retry_busy = args.flag("retry-busy");
    let stock_locks = match args.value("stock-locks").unwrap_or("on") {
        "on" => true,
        "off" => false,
        other => bail!("--stock-locks: {other:?} is not on or off"),
    };
    let label = args.value("label").map_or_else(
        || format!("locks-{}", if stock_locks { "on" } else { "off" }),
        str::to_owned,
    );
    let secret = args.jwt_secret();
    let base_url = args.required("base-url")?;
    let ws_url = args.required("ws-url")?;
    Trust::check_scheme(base_url)?;
    Trust::check_scheme(ws_url)?;
    let trust = Trust::with_ca_file(args.ca_cert().as_deref())?;
    let target = Target {
        api: Api::with_trust(base_url, &secret, &run::run_id(), trust)?,
        ws_url: ws_url.to_owned(),
        aws_endpoint: args.value("aws-endpoint").map(str::to_owned),
        order_queue_url: args.value("order-queue-url").map(str::to_owned),
        stock_locks,
        label,
        jwt_secret: secret,
    };
    let json_out = args.value("json-out").map(PathBuf::from);
    target.check_reachable().await?;
    let results = run::run_all(&target, &sizes, &args.scenarios()?, json_out.as_deref()).await?;
    Ok(results.iter().all(|r| r.verdict != Verdict::Fail))
}

async fn bench_command(raw: &[String]) -> anyhow::Result<bool> {
    let args = Args::parse(raw)?;
    let options = BenchOptions {
        stack_bin: PathBuf::from(args.required("stack-bin")?),
        out: PathBuf::from(args.required("out")?),
        quick: args.flag("quick"),
        json_out: args.value("json-out").map(PathBuf::from),
        extra_dir: PathBuf::from(args.value("extra-dir").unwrap_or("target/bench")),
        scenarios: args.scenarios()?,
        jwt_secret: args.jwt_secret(),
        only: args
            .value("only")
            .map(|phase| phase.parse().map_err(anyhow::Error::msg))
            .transpose()?,
        hot_runs: args
            .value("hot-runs")
            .map(|labels| labels.split(';').map(|l| l.trim().to_owned()).collect()),
    };
    bench::bench(&options).await
}

async fn soak(raw: &[String]) -> anyhow::Result<bool> {
    let args = Args::parse(raw)?;
    let duration = soak::parse_duration(args.value("for").unwrap_or("5m"))
        .map_err(|e| anyhow::anyhow!("--for: {e}"))?;
    let seed = match args.number::<u64>("seed")? {
        Some(seed) => seed,
        None => match std::env::var("SOAK_SEED") {
            Ok(text) if !text.trim().is_empty() => text
                .trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("SOAK_SEED: {text:?} is not a number"))?,
            _ => rand::random(),
        },
    };
    let mut options = soak::SoakOptions::new(duration, seed);
    if let Some(shoppers) = args.number("shoppers")? {
        options.shoppers = shoppers;
    }
    if let Some(every) = args.value("checkpoint-every") {
        options.checkpoint_every =
            soak::parse_duration(every).map_err(|e| anyhow::anyhow!("--checkpoint-every: {e}"))?;
    }
    // On disk by default, as a long-running stack with LOCAL_DATA_DIR: in memory, every order the
    // run adds stays in the process and RSS grows with the data, hiding what a leak would do.
    let temporary = match args.value("tables").unwrap_or("disk") {
        "disk" => {
            let dir =
                std::env::temp_dir().join(format!("order-soak-{seed}-{}", std::process::id()));
            options.data_dir = Some(dir.clone());
            Some(dir)
        }
        "memory" => None,
        other => anyhow::bail!("--tables: {other:?} is not disk or memory"),
    };
    if let Some(dir) = &temporary {
        println!(
            "soak: tables on disk in {} (removed at the end)",
            dir.display()
        );
    }
    let report = soak::run(&options).await;
    if let Some(dir) = &temporary {
        let _ = std::fs::remove_dir_all(dir);
    }
    let report =
        report.with_context(|| format!("soak with seed {seed} (replay with SOAK_SEED={seed})"))?;
    print!("{}", report.summary());
    Ok(report.passed())
}
