//! What an operator watches during a sale, held to the stack and to the code: `template.yaml`'s
//! CloudWatch dashboard and its alarms read the business metrics in the stack's own namespace
//! (`METRICS_NAMESPACE`, said once in `Globals`), only names the functions write, and show every
//! one of them; the dashboard names only resources of the template and shows every function's
//! concurrency and throttles, every table's throttles, every queue's depth and every alarm; every
//! alarm notifies `AlarmTopicArn` and treats missing data as fine. docs/operations.md says what
//! each graph and alarm means.

use std::collections::BTreeSet;

use serde_json::Value as Json;
use serde_norway::Value;

#[path = "common/template.rs"]
mod template_model;

use shared::metrics::BusinessMetric;
use template_model::*;

/// The namespace of the business metrics, as the template writes it inside `!Sub`.
const NAMESPACE: &str = "OrderProcessing/${AWS::StackName}";

/// The one business metric with a dimension, and that dimension (its values are error codes).
const REFUSALS: &str = "OrdersRefused";
const REASON: &str = shared::metrics::REASON_DIMENSION;

/// Every business metric the functions write: the one list in shared/src/metrics.rs.
fn business_metrics() -> BTreeSet<String> {
    BusinessMetric::ALL
        .iter()
        .map(|metric| metric.name().to_owned())
        .collect()
}

/// One metric a dashboard graph or an alarm reads: a metric line, or what a `SEARCH` expression
/// asks for (its schema's namespace, its `MetricName="..."`, its other `Name="value"` terms).
#[derive(Debug, Clone)]
struct MetricRead {
    /// The graph's title or the alarm's logical id.
    place: String,
    namespace: String,
    name: String,
    dimensions: Vec<(String, String)>,
}

impl MetricRead {
    fn has_dimension(&self, name: &str, value: &str) -> bool {
        self.dimensions.iter().any(|(n, v)| n == name && v == value)
    }
}

/// The dashboard: its logical id, its body with the `${...}` of `!Sub` left in place (they only
/// stand inside JSON strings, so the body parses as it is), and the references of that `!Sub`.
struct Dashboard {
    id: String,
    body: Json,
    references: BTreeSet<String>,
}

fn dashboard(template: &Template) -> Dashboard {
    let dashboards: Vec<(&str, &Value)> = template
        .resources_of_type("AWS::CloudWatch::Dashboard")
        .collect();
    assert_eq!(dashboards.len(), 1, "one AWS::CloudWatch::Dashboard");
    let (id, resource) = dashboards[0];
    let body = &resource["Properties"]["DashboardBody"];
    let Value::Tagged(tagged) = body else {
        panic!("{id}: DashboardBody is a !Sub of the JSON body, so it names this stack's resources")
    };
    assert!(tagged.tag == "Sub", "{id}: DashboardBody is a !Sub");
    let text = tagged
        .value
        .as_str()
        .expect("DashboardBody: !Sub of one string");
    Dashboard {
        id: id.to_owned(),
        body: serde_json::from_str(text)
            .unwrap_or_else(|error| panic!("{id}: DashboardBody is not JSON: {error}")),
        references: references(body),
    }
}

impl Dashboard {
    fn widgets(&self) -> &Vec<Json> {
        self.body["widgets"].as_array().expect("widgets")
    }

    /// Every metric the graphs read, metric lines and `SEARCH` expressions alike.
    fn metrics(&self) -> Vec<MetricRead> {
        let mut found = Vec::new();
        for widget in self.widgets() {
            let title = widget["properties"]["title"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            for row in widget["properties"]["metrics"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let row = row.as_array().expect("a metric line is an array");
                if let Some(expression) = row[0]["expression"].as_str() {
                    found.extend(search_reads(&title, expression));
                    continue;
                }
                let words: Vec<&str> = row.iter().filter_map(Json::as_str).collect();
                assert!(
                    words.len() >= 2 && words.len() % 2 == 0 && !words.contains(&"."),
                    "{}: graph {title:?}: a metric line is [namespace, name, dimension, value, ..., \
                     {{options}}] written in full (no \".\" shorthand), found {row:?}",
                    self.id
                );
                found.push(MetricRead {
                    place: title.clone(),
                    namespace: words[0].to_owned(),
                    name: words[1].to_owned(),
                    dimensions: words[2..]
                        .chunks(2)
                        .map(|pair| (pair[0].to_owned(), pair[1].to_owned()))
                        .collect(),
                });
            }
        }
        found
    }

    /// The graphs that read `metric` of `namespace`.
    fn reading<'a>(
        reads: &'a [MetricRead],
        namespace: &'a str,
        metric: &'a str,
    ) -> impl Iterator<Item = &'a MetricRead> {
        reads
            .iter()
            .filter(move |read| read.namespace == namespace && read.name == metric)
    }
}

/// What a `SEARCH('{Namespace,Dimension,...} MetricName="X" Name="value" ...', ...)` reads;
/// nothing for other expressions (metric math over the graph's own lines).
fn search_reads(place: &str, expression: &str) -> Option<MetricRead> {
    let query = expression.strip_prefix("SEARCH('")?;
    // The schema `{...}` may hold a `${...}` of `!Sub`: its end is the brace that balances.
    let mut depth = 0;
    let schema_end = query
        .char_indices()
        .find(|&(_, c)| {
            depth += match c {
                '{' => 1,
                '}' => -1,
                _ => 0,
            };
            depth == 0
        })
        .map(|(at, _)| at)
        .expect("SEARCH schema {...}");
    let namespace = query[1..schema_end]
        .split(',')
        .next()
        .unwrap()
        .trim()
        .trim_matches('"')
        .to_owned();
    let mut name = None;
    let mut dimensions = Vec::new();
    let mut rest = &query[schema_end + 1..];
    while let Some(equals) = rest.find("=\"") {
        let key = rest[..equals]
            .rsplit(|c: char| !c.is_ascii_alphanumeric())
            .next()
            .unwrap()
            .to_owned();
        let after = &rest[equals + 2..];
        let end = after.find('"').expect("a closing quote");
        let value = after[..end].to_owned();
        if key == "MetricName" {
            name = Some(value);
        } else {
            dimensions.push((key, value));
        }
        rest = &after[end + 1..];
    }
    Some(MetricRead {
        place: place.to_owned(),
        namespace,
        name: name.expect("SEARCH names its metric: MetricName=\"...\""),
        dimensions,
    })
}

/// The text of a property that may be a `!Sub` (a namespace, an expression).
fn text(value: &Value) -> String {
    strings(value).concat()
}

/// Every metric each alarm reads, from its `MetricName` or its `Metrics`.
fn alarm_metrics(template: &Template) -> Vec<MetricRead> {
    let mut found = Vec::new();
    for (id, alarm) in template.resources_of_type("AWS::CloudWatch::Alarm") {
        let properties = &alarm["Properties"];
        let mut metrics = vec![properties];
        for query in properties["Metrics"].as_sequence().into_iter().flatten() {
            metrics.push(&query["MetricStat"]["Metric"]);
        }
        for metric in metrics {
            if metric["MetricName"].is_null() {
                continue;
            }
            found.push(MetricRead {
                place: id.to_owned(),
                namespace: text(&metric["Namespace"]),
                name: text(&metric["MetricName"]),
                dimensions: metric["Dimensions"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .map(|dimension| (text(&dimension["Name"]), text(&dimension["Value"])))
                    .collect(),
            });
        }
    }
    found
}

/// The `error_code`s the API answers, as written in shared/src/api/error.rs.
fn error_codes() -> BTreeSet<String> {
    let source = std::fs::read_to_string(repository().join("shared/src/api/error.rs")).unwrap();
    source
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|word| word.len() > 3 && word.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_business_metrics_live_in_the_stacks_namespace_given_once_in_globals() {
    let template = Template::load();
    let variable = &template.global("Environment")["Variables"]["METRICS_NAMESPACE"];
    assert!(
        matches!(variable, Value::Tagged(tagged) if tagged.tag == "Sub"),
        "Globals: METRICS_NAMESPACE: !Sub '{NAMESPACE}' (one namespace per stack, so two \
         stacks in one account do not add up)"
    );
    assert_eq!(text(variable), NAMESPACE, "Globals: METRICS_NAMESPACE");
    let reads = [dashboard(&template).metrics(), alarm_metrics(&template)].concat();
    for read in &reads {
        assert!(
            read.namespace.starts_with("AWS/") || read.namespace == NAMESPACE,
            "{}: reads {} in namespace {:?}: business metrics are in {NAMESPACE:?} \
             (METRICS_NAMESPACE), the rest in AWS/*",
            read.place,
            read.name,
            read.namespace
        );
    }
}

#[test]
fn every_business_metric_the_dashboard_and_the_alarms_read_is_one_the_functions_write() {
    let template = Template::load();
    let known = business_metrics();
    let codes = error_codes();
    let reads = [dashboard(&template).metrics(), alarm_metrics(&template)].concat();
    let business: Vec<&MetricRead> = reads.iter().filter(|r| r.namespace == NAMESPACE).collect();
    assert!(!business.is_empty(), "nothing reads the business metrics");
    for read in business {
        assert!(
            known.contains(&read.name),
            "{}: reads {:?}, which the functions do not write (the metric list: {known:?})",
            read.place,
            read.name
        );
        for (dimension, value) in &read.dimensions {
            assert!(
                read.name == REFUSALS && dimension == REASON,
                "{}: {} with dimension {dimension:?}: only {REFUSALS} has a dimension, {REASON}",
                read.place,
                read.name
            );
            assert!(
                codes.contains(value),
                "{}: {REFUSALS} {REASON}={value:?} is not an error code of \
                 shared/src/api/error.rs ({codes:?})",
                read.place
            );
        }
    }
}

#[test]
fn every_business_metric_is_on_the_dashboard() {
    let template = Template::load();
    let dashboard = dashboard(&template);
    let shown: BTreeSet<String> = dashboard
        .metrics()
        .into_iter()
        .filter(|read| read.namespace == NAMESPACE)
        .map(|read| read.name)
        .collect();
    let missing: Vec<String> = business_metrics().difference(&shown).cloned().collect();
    assert!(
        missing.is_empty(),
        "{}: no graph shows {missing:?}",
        dashboard.id
    );
}

#[test]
fn the_dashboard_names_only_resources_of_the_template() {
    let template = Template::load();
    let dashboard = dashboard(&template);
    let parameters = &template.root["Parameters"];
    for id in &dashboard.references {
        assert!(
            !template.resource(id).is_null() || !parameters[id.as_str()].is_null(),
            "{}: names ${{{id}}}, which is no resource or parameter of the template",
            dashboard.id
        );
    }
    let functions: BTreeSet<String> = template
        .functions()
        .into_values()
        .map(|(id, _)| id)
        .collect();
    for read in dashboard.metrics() {
        for (dimension, value) in &read.dimensions {
            if dimension == "FunctionName" {
                let id = value
                    .strip_prefix("${")
                    .and_then(|rest| rest.strip_suffix('}'))
                    .unwrap_or_default();
                assert!(
                    functions.contains(id),
                    "{}: graph {:?} names function {value:?}: write ${{<Function>}} of a \
                     function of the template ({functions:?})",
                    dashboard.id,
                    read.place
                );
            }
        }
    }
}

/// `${Id}` or `${Id.Attribute}` as the dashboard's `!Sub` writes a resource's name.
fn named(id: &str, attribute: Option<&str>) -> String {
    match attribute {
        Some(attribute) => format!("${{{id}.{attribute}}}"),
        None => format!("${{{id}}}"),
    }
}

#[test]
fn every_function_is_on_the_dashboards_concurrency_and_throttles_graphs() {
    let template = Template::load();
    let dashboard = dashboard(&template);
    let reads = dashboard.metrics();
    for (binary, (id, _)) in template.functions() {
        for metric in ["ConcurrentExecutions", "Throttles"] {
            assert!(
                Dashboard::reading(&reads, "AWS/Lambda", metric)
                    .any(|read| read.has_dimension("FunctionName", &named(&id, None))),
                "{}: no graph shows AWS/Lambda {metric} of {id} ({binary}): add a line \
                 [\"AWS/Lambda\", \"{metric}\", \"FunctionName\", \"${{{id}}}\", ...]",
                dashboard.id
            );
        }
    }
}

#[test]
fn every_table_and_queue_is_on_the_dashboards_throttle_and_queue_graphs() {
    let template = Template::load();
    let dashboard = dashboard(&template);
    let reads = dashboard.metrics();
    let tables: Vec<&str> = template
        .resources_of_type("AWS::DynamoDB::Table")
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        tables.len(),
        table_ids(&template).len(),
        "every table in use"
    );
    for id in tables {
        for metric in [
            "ReadThrottleEvents",
            "WriteThrottleEvents",
            "ThrottledRequests",
        ] {
            assert!(
                Dashboard::reading(&reads, "AWS/DynamoDB", metric)
                    .any(|read| read.has_dimension("TableName", &named(id, None))),
                "{}: no graph shows AWS/DynamoDB {metric} of {id} (TableName ${{{id}}})",
                dashboard.id
            );
        }
    }
    for (id, _) in template.resources_of_type("AWS::SQS::Queue") {
        assert!(
            Dashboard::reading(&reads, "AWS/SQS", "ApproximateNumberOfMessagesVisible")
                .any(|read| read.has_dimension("QueueName", &named(id, Some("QueueName")))),
            "{}: no graph shows the depth of {id} (ApproximateNumberOfMessagesVisible, \
             QueueName ${{{id}.QueueName}})",
            dashboard.id
        );
    }
    let queue = order_queue_id(&template);
    assert!(
        Dashboard::reading(&reads, "AWS/SQS", "ApproximateAgeOfOldestMessage")
            .any(|read| read.has_dimension("QueueName", &named(&queue, Some("QueueName")))),
        "{}: no graph shows the age of the oldest message of {queue}",
        dashboard.id
    );
}

#[test]
fn the_dashboard_shows_the_http_apis_errors_and_latency() {
    let template = Template::load();
    let dashboard = dashboard(&template);
    let reads = dashboard.metrics();
    let apis: Vec<&str> = template
        .resources_of_type("AWS::Serverless::HttpApi")
        .map(|(id, _)| id)
        .collect();
    assert_eq!(apis.len(), 1, "one HTTP API");
    for metric in ["Count", "4xx", "5xx", "Latency"] {
        assert!(
            Dashboard::reading(&reads, "AWS/ApiGateway", metric)
                .any(|read| read.has_dimension("ApiId", &named(apis[0], None))),
            "{}: no graph shows AWS/ApiGateway {metric} of {} (ApiId)",
            dashboard.id,
            apis[0]
        );
    }
}

#[test]
fn every_alarm_notifies_the_alarm_topic_and_is_on_the_dashboard() {
    let template = Template::load();
    let dashboard = dashboard(&template);
    let shown: BTreeSet<String> = dashboard
        .widgets()
        .iter()
        .filter(|widget| widget["type"] == "alarm")
        .flat_map(|widget| widget["properties"]["alarms"].as_array().unwrap().clone())
        .map(|arn| arn.as_str().unwrap().to_owned())
        .collect();
    let actions: Value =
        serde_norway::from_str("!If [HasAlarmTopic, [!Ref AlarmTopicArn], !Ref AWS::NoValue]")
            .unwrap();
    for (id, alarm) in template.resources_of_type("AWS::CloudWatch::Alarm") {
        let properties = &alarm["Properties"];
        for property in ["AlarmActions", "OKActions"] {
            assert_eq!(
                properties[property], actions,
                "{id}: {property}: !If [HasAlarmTopic, [!Ref AlarmTopicArn], !Ref AWS::NoValue]"
            );
        }
        assert_eq!(
            properties["TreatMissingData"].as_str(),
            Some("notBreaching"),
            "{id}: no data (no traffic) is not an alarm"
        );
        assert!(
            shown.contains(&named(id, Some("Arn"))),
            "{}: its alarm graph does not list {id} (${{{id}.Arn}})",
            dashboard.id
        );
    }
    assert!(
        alarm_metrics(&template)
            .iter()
            .any(|read| read.namespace == NAMESPACE),
        "no alarm reads a business metric"
    );
}

#[test]
fn the_dead_letter_queue_alarm_fires_on_any_message() {
    let template = Template::load();
    let dlq = dead_letter_queue_id(&template);
    let alarms: Vec<String> = alarm_metrics(&template)
        .into_iter()
        .filter(|read| {
            read.namespace == "AWS/SQS"
                && read.name == "ApproximateNumberOfMessagesVisible"
                && read.has_dimension("QueueName", &format!("{dlq}.QueueName"))
        })
        .map(|read| read.place)
        .collect();
    assert_eq!(alarms.len(), 1, "one alarm on the depth of {dlq}");
    let properties = &template.resource(&alarms[0])["Properties"];
    assert_eq!(
        properties["Statistic"].as_str(),
        Some("Maximum"),
        "{}",
        alarms[0]
    );
    assert_eq!(properties["Threshold"].as_i64(), Some(0), "{}", alarms[0]);
    assert_eq!(
        properties["ComparisonOperator"].as_str(),
        Some("GreaterThanThreshold"),
        "{}: one message is enough",
        alarms[0]
    );
    assert_eq!(
        properties["EvaluationPeriods"].as_i64(),
        Some(1),
        "{}",
        alarms[0]
    );
}
