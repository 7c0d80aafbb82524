//! Binary size, cold start (as a ratio to the minimal `lambda_runtime` function) and peak memory
//! of Lambda binaries, against a local stack started in this process; writes
//! `<out-dir>/lambda.json` and prints a table.
//!
//! ```sh
//! lambda-figures --baseline target/release/lambda-baseline \
//!     --bin create-order=target/release/create-order --bin get-product=target/release/get-product \
//!     [--runs 10] [--warmup 1] [--invocations 50] [--events-dir events] \
//!     [--env-file events/cargo-lambda.env] [--timeout-secs 30] [--out-dir target/bench]
//! ```

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use lambda_bench::figures::{self, Binary, Options};

fn parse_args() -> anyhow::Result<(Options, PathBuf)> {
    let mut options = Options::default();
    let mut out_dir = PathBuf::from("target/bench");
    let mut baseline = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--bin" => {
                let value = value()?;
                let (name, path) = value
                    .split_once('=')
                    .with_context(|| format!("--bin {value}: expected NAME=PATH"))?;
                options.binaries.push(Binary {
                    name: name.to_owned(),
                    path: PathBuf::from(path),
                });
            }
            "--baseline" => baseline = Some(PathBuf::from(value()?)),
            "--runs" => options.runs = value()?.parse().context("--runs")?,
            "--warmup" => options.warmup = value()?.parse().context("--warmup")?,
            "--invocations" => options.invocations = value()?.parse().context("--invocations")?,
            "--events-dir" => options.events_dir = PathBuf::from(value()?),
            "--env-file" => options.env_file = PathBuf::from(value()?),
            "--timeout-secs" => {
                options.timeout = Duration::from_secs(value()?.parse().context("--timeout-secs")?);
            }
            "--out-dir" => out_dir = PathBuf::from(value()?),
            "-h" | "--help" => {
                println!(
                    "usage: lambda-figures --baseline PATH --bin NAME=PATH... [--runs N] [--warmup N] \
                     [--invocations N] [--events-dir DIR] [--env-file FILE] [--timeout-secs S] [--out-dir DIR]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other} (see --help)"),
        }
    }
    options.baseline = baseline.context("--baseline PATH is required")?;
    anyhow::ensure!(options.runs > 0, "--runs must be at least 1");
    Ok((options, out_dir))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (options, out_dir) = parse_args()?;
    let report = figures::run(&options, |line| eprintln!("lambda-figures: {line}")).await?;
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let path = out_dir.join("lambda.json");
    std::fs::write(&path, format!("{report:#}\n"))
        .with_context(|| format!("writing {}", path.display()))?;
    print!("{}", figures::table(&report));
    println!("written to {}", path.display());
    Ok(())
}
