//! After `cargo bench --bench create_order`: writes `<out-dir>/handler-cpu.json` from criterion's
//! median estimates.
//!
//! ```sh
//! handler-cpu-report [--criterion-dir target/criterion] [--out-dir target/bench]
//! ```

use std::path::PathBuf;

use anyhow::{Context, bail};
use lambda_bench::handler_cpu;

fn main() -> anyhow::Result<()> {
    let mut criterion_dir = handler_cpu::default_criterion_dir();
    let mut out_dir = PathBuf::from("target/bench");
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--criterion-dir" => criterion_dir = PathBuf::from(value),
            "--out-dir" => out_dir = PathBuf::from(value),
            other => bail!("unknown argument {other}: --criterion-dir DIR, --out-dir DIR"),
        }
    }
    let (path, report) = handler_cpu::write_report(&criterion_dir, &out_dir)?;
    println!("{report:#}");
    println!("written to {}", path.display());
    Ok(())
}
