//! The figures other tools left in `target/bench/*.json`: read, shown as tables, and looked up
//! by the goals.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::outcome::show;

/// One JSON object another tool left in the extra folder.
#[derive(Debug, Clone)]
pub struct Extra {
    /// Its `kind`.
    pub kind: String,
    /// Its file name.
    pub file: String,
    /// The whole object.
    pub value: Value,
}

/// Every `*.json` object with a `kind` in `dir` (sorted by file name); others are skipped.
pub fn read_extras(dir: &Path) -> Vec<Extra> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|path| {
            let value: Value = serde_json::from_str(&std::fs::read_to_string(&path).ok()?).ok()?;
            Some(Extra {
                kind: value["kind"].as_str()?.to_owned(),
                file: path.file_name()?.to_string_lossy().into_owned(),
                value,
            })
        })
        .collect()
}

/// The number at `path` (dotted) of the first extra of `kind`.
pub(super) fn extra<'a>(extras: &'a [Extra], kind: &str) -> Option<&'a Value> {
    extras.iter().find(|e| e.kind == kind).map(|e| &e.value)
}

/// The first number under a key containing `word`, searched depth first.
pub(super) fn find_number(value: &Value, word: &str) -> Option<f64> {
    match value {
        Value::Object(map) => map
            .iter()
            .find_map(|(k, v)| if k.contains(word) { v.as_f64() } else { None })
            .or_else(|| map.values().find_map(|v| find_number(v, word))),
        Value::Array(items) => items.iter().find_map(|v| find_number(v, word)),
        _ => None,
    }
}

pub(super) fn extras_section(md: &mut String, extras: &[Extra]) {
    if extras.is_empty() {
        let _ = writeln!(
            md,
            "## Other measurements\n\nNo figures in `target/bench/*.json` in this run (binary size, cold start, handler CPU and `make run` speed: not measured in this run).\n"
        );
        return;
    }
    let _ = writeln!(md, "## Other measurements\n");
    for extra in extras {
        let title = match extra.kind.as_str() {
            "lambda" => "Lambda binaries: size, cold start, memory",
            "handler-cpu" => "Handler CPU time",
            "make-run" => "`make run` build options (measured apart, see its command)",
            "transaction-rate" => {
                "Embedded DynamoDB: TransactWriteItems per second over 60,000 transactions"
            }
            other => other,
        };
        let _ = writeln!(md, "### {title} (`{}`)\n", extra.file);
        generic_table(md, &extra.value);
    }
}

/// Scalars as key/value rows; arrays of objects as tables of their own; nested objects flattened.
pub(super) fn generic_table(md: &mut String, value: &Value) {
    let mut scalars = Vec::new();
    let mut tables = Vec::new();
    flatten("", value, &mut scalars, &mut tables);
    if !scalars.is_empty() {
        let _ = writeln!(md, "| key | value |\n|---|---|");
        for (key, value) in scalars {
            let _ = writeln!(md, "| {key} | {value} |");
        }
        let _ = writeln!(md);
    }
    for (key, rows) in tables {
        let mut columns: Vec<String> = Vec::new();
        for row in &rows {
            for (k, _) in row.as_object().into_iter().flatten() {
                if !columns.contains(k) {
                    columns.push(k.clone());
                }
            }
        }
        let _ = writeln!(
            md,
            "{key}:\n\n| {} |\n|{}",
            columns.join(" | "),
            "---|".repeat(columns.len())
        );
        for row in &rows {
            let cells: Vec<String> = columns.iter().map(|c| show(&row[c.as_str()])).collect();
            let _ = writeln!(md, "| {} |", cells.join(" | "));
        }
        let _ = writeln!(md);
    }
}

pub(super) fn flatten(
    prefix: &str,
    value: &Value,
    scalars: &mut Vec<(String, String)>,
    tables: &mut Vec<(String, Vec<Value>)>,
) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, scalars, tables);
            }
        }
        Value::Array(items) if items.iter().all(Value::is_object) && !items.is_empty() => {
            tables.push((prefix.to_owned(), items.clone()));
        }
        other => scalars.push((prefix.to_owned(), show(other))),
    }
}
