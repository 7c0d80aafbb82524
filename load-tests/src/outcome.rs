//! What a scenario ends with: a verdict, the reasons for a failure, and named figures; printed as
//! a small table followed by one JSON line.

use serde_json::{Map, Value, json};

/// PASS/FAIL for scenarios that check an invariant; REPORT for those that only measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every check held.
    Pass,
    /// At least one check failed (see [`ScenarioResult::failures`]).
    Fail,
    /// Figures only, no invariant.
    Report,
}

impl Verdict {
    /// `PASS`, `FAIL` or `REPORT`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Report => "REPORT",
        }
    }
}

/// One scenario's outcome under one label (a lock mode, a deployment).
#[derive(Debug, Clone)]
pub struct ScenarioResult {
    /// The scenario's name (`oversell`, `flash-sale`, ...).
    pub scenario: String,
    /// What the run was labelled with (`locks-on`, `locks-off`, `--label`).
    pub label: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Why it failed, one line per failed check.
    pub failures: Vec<String>,
    /// Figures in the order they were recorded; arrays carry chart series.
    pub figures: Vec<(String, Value)>,
}

impl ScenarioResult {
    /// A result that passes until a check fails.
    pub fn pass(scenario: &str, label: &str) -> Self {
        ScenarioResult {
            scenario: scenario.to_owned(),
            label: label.to_owned(),
            verdict: Verdict::Pass,
            failures: Vec::new(),
            figures: Vec::new(),
        }
    }

    /// A result that only reports figures (a failed check still makes it FAIL).
    pub fn report(scenario: &str, label: &str) -> Self {
        ScenarioResult {
            verdict: Verdict::Report,
            ..Self::pass(scenario, label)
        }
    }

    /// A scenario that could not run at all (setup failed).
    pub fn broken(scenario: &str, label: &str, error: &anyhow::Error) -> Self {
        let mut result = Self::pass(scenario, label);
        result.check(false, format!("could not run: {error:#}"));
        result
    }

    /// Records a figure; a float is rounded to three decimals so the JSON stays readable.
    pub fn put(&mut self, key: &str, value: impl Into<Value>) {
        let value = match value.into() {
            Value::Number(n) if n.is_f64() => round(n.as_f64().unwrap_or_default()),
            other => other,
        };
        match self.figures.iter_mut().find(|(k, _)| k == key) {
            Some((_, slot)) => *slot = value,
            None => self.figures.push((key.to_owned(), value)),
        }
    }

    /// A figure by name.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.figures.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// A numeric figure by name.
    pub fn number(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(Value::as_f64)
    }

    /// Fails the result with `what` unless `ok`.
    pub fn check(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            self.verdict = Verdict::Fail;
            self.failures.push(what.into());
        }
    }

    /// `{"scenario":..., "label":..., "verdict":..., "failures":[...], ...figures}`.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("scenario".into(), json!(self.scenario));
        map.insert("label".into(), json!(self.label));
        map.insert("verdict".into(), json!(self.verdict.as_str()));
        if !self.failures.is_empty() {
            map.insert("failures".into(), json!(self.failures));
        }
        for (key, value) in &self.figures {
            map.insert(key.clone(), value.clone());
        }
        Value::Object(map)
    }

    /// The verdict and the scalar figures as a small text table (series are summarised).
    pub fn table(&self) -> String {
        let mut out = format!(
            "== {} [{}]: {}\n",
            self.scenario,
            self.label,
            self.verdict.as_str()
        );
        for failure in &self.failures {
            out.push_str(&format!("   ! {failure}\n"));
        }
        let width = self.figures.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (key, value) in &self.figures {
            out.push_str(&format!("   {key:<width$}  {}\n", show(value)));
        }
        out
    }
}

/// A figure as a table cell: strings bare, series as their length.
pub fn show(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => format!("[{} values]", items.len()),
        Value::Null => "n/a".to_owned(),
        other => other.to_string(),
    }
}

/// Seconds from the sell-out to the last order's terminal event, once every order has had one;
/// null while `missing` orders have none.
pub fn settled_after_sell_out(
    missing: u64,
    last_event: Option<std::time::Instant>,
    sold_out: std::time::Instant,
) -> Value {
    match (missing, last_event) {
        (0, Some(last)) => round(last.saturating_duration_since(sold_out).as_secs_f64()),
        _ => Value::Null,
    }
}

/// `x` rounded to three decimals (non-finite values become null).
pub fn round(x: f64) -> Value {
    if !x.is_finite() {
        return Value::Null;
    }
    let rounded = (x * 1000.0).round() / 1000.0;
    serde_json::Number::from_f64(rounded).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_check_turns_a_report_into_a_fail_and_the_json_keeps_figures() {
        let mut result = ScenarioResult::report("x", "l");
        result.put("orders_per_s", 12.34567);
        result.check(true, "fine");
        result.check(false, "broken");
        let json = result.to_json();
        assert_eq!(json["verdict"], "FAIL");
        assert_eq!(json["orders_per_s"], 12.346);
        assert_eq!(json["failures"][0], "broken");
    }
}
