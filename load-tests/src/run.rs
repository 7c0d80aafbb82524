//! A run of the load scenarios: the id its users and products carry, and each result emitted as
//! it finishes (its table and JSON line printed, the line appended to `--json-out`).

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::outcome::ScenarioResult;
use crate::scenarios::{Scenario, Sizes, Target};

/// Prints a result's table and JSON line, and appends the line to `json_out`.
pub fn emit(result: &ScenarioResult, json_out: Option<&Path>) -> anyhow::Result<()> {
    let line = result.to_json().to_string();
    print!("{}", result.table());
    println!("{line}");
    if let Some(path) = json_out {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        writeln!(file, "{line}")?;
    }
    Ok(())
}

/// Runs every scenario against `target`, emitting each result.
pub async fn run_all(
    target: &Target,
    sizes: &Sizes,
    scenarios: &[Scenario],
    json_out: Option<&Path>,
) -> anyhow::Result<Vec<ScenarioResult>> {
    let mut results = Vec::new();
    for scenario in Scenario::ALL.iter().filter(|s| scenarios.contains(s)) {
        eprintln!("-- {} [{}] ...", scenario.name(), target.label);
        let result = scenario.run(target, sizes).await;
        emit(&result, json_out)?;
        results.push(result);
    }
    Ok(results)
}

/// A short id for this run: users and products carry it.
pub fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}
