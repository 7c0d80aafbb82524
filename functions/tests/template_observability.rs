//! What `template.yaml` gives every function to be operated: what they all share lives in
//! `Globals.Function` and no function restates it; every function has its log group
//! (`/aws/lambda/<function>`, with a retention), an `Errors` alarm and a `Throttles` alarm whose
//! metrics name it (grouped per role: one line per function, docs/decisions.md); a metric-math
//! alarm fires on all its metrics and holds no more than `ALARM_METRICS_PER_GROUP` metrics, so a
//! group always has room below CloudWatch's limit.

use std::collections::{BTreeMap, BTreeSet};

use serde_norway::Value;

#[path = "common/template.rs"]
mod template_model;

use template_model::*;

/// A metric-math alarm references at most 10 metrics (`MetricStat` entries of `Metrics`), a hard
/// limit; its expressions are counted apart (at most 10 too).
const CLOUDWATCH_ALARM_METRICS: usize = 10;
/// Metrics one grouped alarm may hold: below the limit, leaving room for the next function of its
/// role (docs/deploy.md, "Alarms").
const ALARM_METRICS_PER_GROUP: usize = 8;

#[test]
fn no_function_restates_what_globals_give_every_function() {
    let template = Template::load();
    let globals = template.root["Globals"]["Function"]
        .as_mapping()
        .expect("Globals.Function");
    for property in [
        "Runtime",
        "Architectures",
        "MemorySize",
        "Handler",
        "CodeUri",
    ] {
        assert!(
            !template.global(property).is_null(),
            "Globals.Function.{property}: what every function shares is said once"
        );
    }
    let shared_variables = template.global("Environment")["Variables"].as_mapping();
    for (binary, (id, function)) in template.functions() {
        for (property, value) in globals {
            let property = property.as_str().unwrap();
            if property == "Environment" {
                continue;
            }
            assert_ne!(
                &function["Properties"][property], value,
                "{id} ({binary}) restates Globals.Function.{property}"
            );
        }
        let own = &function["Properties"]["Environment"]["Variables"];
        for (name, value) in shared_variables.into_iter().flatten() {
            assert_ne!(
                &own[name.as_str().unwrap()],
                value,
                "{id} ({binary}) restates the Globals variable {name:?}"
            );
        }
    }
}

#[test]
fn every_function_has_its_log_group() {
    let template = Template::load();
    for (binary, (id, _)) in template.functions() {
        let groups: Vec<&str> = template
            .resources_of_type("AWS::Logs::LogGroup")
            .filter(|(_, group)| {
                let name = &group["Properties"]["LogGroupName"];
                references(name).contains(&id)
                    && strings(name)
                        .iter()
                        .any(|text| text.starts_with("/aws/lambda/"))
            })
            .map(|(group_id, _)| group_id)
            .collect();
        assert_eq!(
            groups.len(),
            1,
            "{id} ({binary}): one AWS::Logs::LogGroup named /aws/lambda/${{{id}}}, found {groups:?} \
             (without it Lambda creates the group itself, kept forever)"
        );
        let group = template.resource(groups[0]);
        assert!(
            !group["Properties"]["RetentionInDays"].is_null(),
            "{}: RetentionInDays",
            groups[0]
        );
    }
}

/// Each `(metric name, function logical id)` an alarm watches, from its `MetricName` and
/// `Dimensions` or from each `MetricStat` of its `Metrics`.
fn alarm_coverage(alarm: &Value) -> BTreeSet<(String, String)> {
    let properties = &alarm["Properties"];
    let mut metrics: Vec<(&Value, &Value)> =
        vec![(&properties["MetricName"], &properties["Dimensions"])];
    for query in properties["Metrics"].as_sequence().into_iter().flatten() {
        let metric = &query["MetricStat"]["Metric"];
        metrics.push((&metric["MetricName"], &metric["Dimensions"]));
    }
    let mut covered = BTreeSet::new();
    for (name, dimensions) in metrics {
        let Some(name) = name.as_str() else { continue };
        for dimension in dimensions.as_sequence().into_iter().flatten() {
            if dimension["Name"].as_str() == Some("FunctionName") {
                for id in references(&dimension["Value"]) {
                    covered.insert((name.to_owned(), id));
                }
            }
        }
    }
    covered
}

#[test]
fn every_function_is_covered_by_an_errors_alarm_and_a_throttles_alarm() {
    let template = Template::load();
    let mut covered: BTreeMap<(String, String), Vec<&str>> = BTreeMap::new();
    for (alarm_id, alarm) in template.resources_of_type("AWS::CloudWatch::Alarm") {
        for key in alarm_coverage(alarm) {
            covered.entry(key).or_default().push(alarm_id);
        }
    }
    for (binary, (id, _)) in template.functions() {
        for metric in ["Errors", "Throttles"] {
            assert!(
                covered.contains_key(&(metric.to_owned(), id.clone())),
                "{id} ({binary}): no alarm watches its {metric} (a metric with dimension \
                 FunctionName: !Ref {id})"
            );
        }
    }
}

/// The words of a metric-math expression that may be query ids.
fn expression_ids(expression: &str) -> impl Iterator<Item = &str> {
    expression.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
}

#[test]
fn every_grouped_alarm_fires_on_the_sum_of_all_its_metrics() {
    // A metric listed in `Metrics` but left out of the expression the alarm returns is watched by
    // nobody, though `alarm_coverage` counts it. The returned expression may reach a metric
    // through other expressions (`unexpected / attempted`).
    let template = Template::load();
    for (id, alarm) in template.resources_of_type("AWS::CloudWatch::Alarm") {
        let Some(queries) = alarm["Properties"]["Metrics"].as_sequence() else {
            continue;
        };
        let returned: Vec<&Value> = queries
            .iter()
            .filter(|query| query["ReturnData"].as_bool() != Some(false))
            .collect();
        assert_eq!(
            returned.len(),
            1,
            "{id}: an alarm returns exactly one series (ReturnData: false on every other query)"
        );
        // `!Sub` expressions (a parameter in the formula) read as their text.
        let expressions: BTreeMap<&str, String> = queries
            .iter()
            .filter(|query| !query["Expression"].is_null())
            .map(|query| {
                (
                    query["Id"].as_str().unwrap_or_default(),
                    strings(&query["Expression"]).concat(),
                )
            })
            .collect();
        let returned_expression = strings(&returned[0]["Expression"]).concat();
        let mut reached: BTreeSet<&str> = BTreeSet::new();
        let mut pending = vec![returned_expression.as_str()];
        while let Some(expression) = pending.pop() {
            if expression.contains("METRICS()") {
                reached.extend(queries.iter().filter_map(|query| query["Id"].as_str()));
            }
            for word in expression_ids(expression) {
                if reached.insert(word)
                    && let Some(inner) = expressions.get(word)
                {
                    pending.push(inner);
                }
            }
        }
        let left_out: Vec<&str> = queries
            .iter()
            .filter(|query| !query["MetricStat"].is_null())
            .filter_map(|query| query["Id"].as_str())
            .filter(|metric_id| !reached.contains(metric_id))
            .collect();
        assert!(
            left_out.is_empty(),
            "{id}: its returned expression {returned_expression:?} leaves out {left_out:?}"
        );
    }
}

#[test]
fn every_grouped_alarm_has_room_below_cloudwatchs_metric_limit() {
    let template = Template::load();
    for (id, alarm) in template.resources_of_type("AWS::CloudWatch::Alarm") {
        let Some(queries) = alarm["Properties"]["Metrics"].as_sequence() else {
            continue;
        };
        let metrics = queries
            .iter()
            .filter(|query| !query["MetricStat"].is_null())
            .count();
        let expressions = queries.len() - metrics;
        assert!(
            metrics <= CLOUDWATCH_ALARM_METRICS && expressions <= CLOUDWATCH_ALARM_METRICS,
            "{id}: {metrics} metrics and {expressions} expressions; CloudWatch takes at most \
             {CLOUDWATCH_ALARM_METRICS} of each"
        );
        assert!(
            metrics <= ALARM_METRICS_PER_GROUP,
            "{id}: {metrics} metrics; a group holds at most {ALARM_METRICS_PER_GROUP} so the next \
             function of its role fits below CloudWatch's {CLOUDWATCH_ALARM_METRICS}: start another \
             alarm (docs/deploy.md, \"Alarms\")"
        );
    }
}
