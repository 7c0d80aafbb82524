//! The business metrics table in `docs/deploy.md` lists exactly `shared::metrics::BusinessMetric::ALL`,
//! in its order, each with its unit.

use std::path::Path;

use shared::metrics::BusinessMetric;

/// `(name, unit)` of each row of the table under "## Business metrics".
fn documented_metrics() -> Vec<(String, String)> {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/deploy.md");
    let text = std::fs::read_to_string(&deploy).expect("docs/deploy.md is readable");
    let section = text
        .split("\n## Business metrics\n")
        .nth(1)
        .expect("docs/deploy.md has a \"## Business metrics\" section");
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            (cells[1].trim_matches('`').to_owned(), cells[2].to_owned())
        })
        .collect()
}

#[test]
fn the_deploy_guide_lists_every_business_metric_with_its_unit_and_no_other() {
    let expected: Vec<(String, String)> = BusinessMetric::ALL
        .iter()
        .map(|m| (m.name().to_owned(), m.unit().name().to_owned()))
        .collect();

    assert_eq!(documented_metrics(), expected);
}
