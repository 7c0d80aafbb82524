//! Local and cloud cannot drift: `template.yaml` is read and held to the code.
//!
//! - the functions: `shared::Function::all()` = `functions/src/bin/*.rs` = `events/<name>.json` =
//!   the template's functions (by `Metadata.BuildProperties.Binary`): adding a function means all four;
//! - each function's environment = exactly the settings its code reads (its footprint);
//! - each function's IAM names exactly the tables of its footprint, the queue only where it is
//!   used, `execute-api:ManageConnections` only where it pushes, no wildcard data action;
//! - the tables (keys, attribute types, GSIs, projections, TTL) = what the local stack provisions,
//!   read back from the running emulator;
//! - the queue: DLQ and `maxReceiveCount` = the local queues, visibility >= 6 x the consumer's timeout;
//! - the HTTP routes = the local gateway's route table (`Endpoint::ALL`), the WebSocket routes =
//!   `WsRoute::ALL`, each to the function of the same name; the consumer's event source reports
//!   batch item failures; the reconciler has a schedule;
//! - docs/deploy.md's IAM table = every (resource, action, transaction-only) the roles grant;
//! - the tables kept with the stack are deleted by their creation's rollback
//!   (`RetainExceptOnCreate`); `samconfig.toml`'s `first-deploy` environment is `default` but for
//!   the tables' protection and what a failure does;
//! - Globals, log groups and alarms: `template_observability.rs`.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_dynamodb::types::{KeyType, TimeToLiveStatus};
use aws_sdk_sqs::types::QueueAttributeName;
use localstack::{LocalSettings, Stack, StackOptions};
use serde_norway::Value;
use shared::function::Table;
use shared::ws::WsRoute;
use shared::{Config, Endpoint, Function};

#[path = "common/template.rs"]
mod template_model;

use template_model::*;

#[test]
fn every_function_has_a_binary_a_sample_event_and_a_template_resource() {
    let catalogue = names(&Function::all());
    assert_eq!(
        file_stems("functions/src/bin", "rs"),
        catalogue,
        "functions/src/bin"
    );
    let events = file_stems("events", "json");
    let missing: Vec<_> = catalogue.difference(&events).collect();
    assert!(
        missing.is_empty(),
        "functions without events/<name>.json: {missing:?}"
    );
    let template: BTreeSet<String> = Template::load().functions().into_keys().collect();
    assert_eq!(template, catalogue, "template.yaml's functions (Binary)");
}

#[test]
fn every_function_is_built_for_lambda_on_arm64_with_cargo_lambda() {
    let template = Template::load();
    for (binary, (id, function)) in template.functions() {
        assert_eq!(
            template.property(function, "Runtime").as_str(),
            Some("provided.al2023"),
            "{id}"
        );
        assert_eq!(
            strings(template.property(function, "Architectures")),
            ["arm64"],
            "{id}"
        );
        assert_eq!(
            function["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{id} ({binary})"
        );
    }
}

#[test]
fn every_function_gets_exactly_the_settings_its_code_reads() {
    let template = Template::load();
    let functions = template.functions();
    for function in Function::all() {
        let mut expected = Config::settings_read(&function.footprint());
        // Lambda sets the region; the endpoint and the seed are for emulators and tests.
        for name in ["AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION"]
            .into_iter()
            .chain(shared::config::TEST_ONLY_SETTINGS)
        {
            expected.remove(name);
        }
        let (_, resource) = &functions[function.name()];
        let mut given: BTreeSet<String> = template.environment(resource).into_keys().collect();
        // Declared for sam local only (an empty parameter in AWS): SAM's --env-vars can set only
        // variables the template declares.
        given.remove("AWS_ENDPOINT_URL");
        assert_eq!(
            given,
            expected,
            "{}: template environment vs settings read",
            function.name()
        );
    }
}

/// The template's logical id of each table, found through the `*_TABLE` variables.
fn table_ids(template: &Template) -> BTreeMap<Table, String> {
    let mut ids = BTreeMap::new();
    for (_, function) in template.functions().into_values() {
        let environment = template.environment(function);
        for table in Table::ALL {
            if let Some(value) = environment.get(table.setting()) {
                let referenced = references(value);
                assert_eq!(
                    referenced.len(),
                    1,
                    "{} refers to one table",
                    table.setting()
                );
                let id = referenced.into_iter().next().unwrap();
                let previous = ids.insert(table, id.clone());
                assert!(
                    previous.is_none() || previous.as_deref() == Some(id.as_str()),
                    "{} names two tables",
                    table.setting()
                );
            }
        }
    }
    for table in Table::ALL {
        let id = ids
            .get(&table)
            .unwrap_or_else(|| panic!("no function names {table:?}"));
        assert_eq!(
            template.resource(id)["Type"].as_str(),
            Some("AWS::DynamoDB::Table"),
            "{id}"
        );
    }
    ids
}

/// The order queue's dead-letter queue, as its redrive policy names it.
fn dead_letter_queue_id(template: &Template) -> String {
    let queue = &template.resource(&order_queue_id(template))["Properties"];
    let dlq = references(&queue["RedrivePolicy"]["deadLetterTargetArn"]);
    assert_eq!(dlq.len(), 1, "the redrive policy names one DLQ");
    dlq.into_iter().next().unwrap()
}

/// The order queue: what `ORDER_QUEUE_URL` refers to.
fn order_queue_id(template: &Template) -> String {
    let functions = template.functions();
    let (_, create_order) = &functions["create-order"];
    let environment = template.environment(create_order);
    let referenced = references(&environment["ORDER_QUEUE_URL"]);
    assert_eq!(referenced.len(), 1, "ORDER_QUEUE_URL refers to one queue");
    referenced.into_iter().next().unwrap()
}

#[test]
fn each_function_may_touch_exactly_the_tables_and_services_of_its_footprint() {
    let template = Template::load();
    let tables = table_ids(&template);
    let queue = order_queue_id(&template);
    let dead_letters = dead_letter_queue_id(&template);
    let functions = template.functions();
    for function in Function::all() {
        let name = function.name();
        let footprint = function.footprint();
        let (_, resource) = &functions[name];
        let policies = &resource["Properties"]["Policies"];
        let referenced = references(policies);
        let expected_tables: BTreeSet<&String> = footprint
            .tables
            .iter()
            .map(|table| &tables[table])
            .collect();
        let granted_tables: BTreeSet<&String> = tables
            .values()
            .filter(|id| referenced.contains(*id))
            .collect();
        assert_eq!(
            granted_tables, expected_tables,
            "{name}: tables in its IAM policies"
        );

        // The consumer receives through its event source mapping (its role may receive and
        // delete); among the others, only those whose footprint uses the queue may name it.
        if function != Function::OrderConsumer {
            assert_eq!(
                referenced.contains(&queue),
                footprint.order_queue,
                "{name}: the order queue in its IAM policies"
            );
        }
        // Only the reconciler empties the DLQ (what it reads is `ORDER_DLQ_URL`).
        assert_eq!(
            referenced.contains(&dead_letters),
            footprint.reconciles,
            "{name}: the dead-letter queue in its IAM policies"
        );
        if footprint.reconciles {
            assert_eq!(
                references(&template.environment(resource)["ORDER_DLQ_URL"]),
                BTreeSet::from([dead_letters.clone()]),
                "{name}: ORDER_DLQ_URL"
            );
        }
        let statements: Vec<&Value> = policies
            .as_sequence()
            .into_iter()
            .flatten()
            .flat_map(|policy| policy["Statement"].as_sequence().into_iter().flatten())
            .collect();
        let actions: BTreeSet<String> = statements
            .iter()
            .flat_map(|statement| strings(&statement["Action"]))
            .collect();
        assert_eq!(
            actions.contains("execute-api:ManageConnections"),
            footprint.pushes,
            "{name}: ManageConnections"
        );
        // Health only checks the queue (GetQueueAttributes); whoever sends has it in its footprint.
        assert!(
            !actions.contains("sqs:SendMessage") || footprint.order_queue,
            "{name}: sqs:SendMessage outside its footprint"
        );
        for statement in &statements {
            let actions = strings(&statement["Action"]);
            let data = actions
                .iter()
                .any(|action| action.starts_with("dynamodb:") || action.starts_with("sqs:"));
            assert!(
                !actions
                    .iter()
                    .any(|action| action.ends_with(":*") || action == "*"),
                "{name}: wildcard action in {actions:?}"
            );
            if data {
                assert!(
                    !strings(&statement["Resource"]).iter().any(|r| r == "*"),
                    "{name}: data actions on Resource '*': {actions:?}"
                );
            }
        }
    }
}

async fn local_stack() -> Stack {
    Stack::start(StackOptions {
        config: Config::default(),
        local: LocalSettings::ephemeral(),
        seed_products: false,
        run_workers: false,
    })
    .await
    .unwrap()
}

/// `(name, type)` pairs of a list of `{AttributeName, AttributeType | KeyType}` maps.
fn pairs(value: &Value, second: &str) -> BTreeSet<(String, String)> {
    value
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|item| {
            (
                item["AttributeName"].as_str().unwrap().to_owned(),
                item[second].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tables_are_the_ones_the_local_stack_provisions() {
    let template = Template::load();
    let ids = table_ids(&template);
    let stack = local_stack().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&shared::aws::sdk_config(stack.config()).await);
    for table in Table::ALL {
        let declared = &template.resource(&ids[&table])["Properties"];
        let local = dynamodb
            .describe_table()
            .table_name(table.default_name())
            .send()
            .await
            .unwrap()
            .table
            .unwrap();
        let key_schema = |elements: &[aws_sdk_dynamodb::types::KeySchemaElement]| {
            elements
                .iter()
                .map(|e| {
                    let kind = match e.key_type {
                        KeyType::Hash => "HASH",
                        _ => "RANGE",
                    };
                    (e.attribute_name.clone(), kind.to_owned())
                })
                .collect::<BTreeSet<_>>()
        };
        assert_eq!(
            pairs(&declared["KeySchema"], "KeyType"),
            key_schema(local.key_schema()),
            "{table:?}: key schema"
        );
        let attributes: BTreeSet<(String, String)> = local
            .attribute_definitions()
            .iter()
            .map(|a| {
                (
                    a.attribute_name.clone(),
                    a.attribute_type.as_str().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            pairs(&declared["AttributeDefinitions"], "AttributeType"),
            attributes,
            "{table:?}: attribute definitions"
        );
        let declared_indexes: BTreeMap<String, (BTreeSet<(String, String)>, String)> =
            declared["GlobalSecondaryIndexes"]
                .as_sequence()
                .into_iter()
                .flatten()
                .map(|index| {
                    (
                        index["IndexName"].as_str().unwrap().to_owned(),
                        (
                            pairs(&index["KeySchema"], "KeyType"),
                            index["Projection"]["ProjectionType"]
                                .as_str()
                                .unwrap()
                                .to_owned(),
                        ),
                    )
                })
                .collect();
        let local_indexes: BTreeMap<String, (BTreeSet<(String, String)>, String)> = local
            .global_secondary_indexes()
            .iter()
            .map(|index| {
                (
                    index.index_name().unwrap().to_owned(),
                    (
                        key_schema(index.key_schema()),
                        index
                            .projection()
                            .and_then(|p| p.projection_type())
                            .map(|p| p.as_str().to_owned())
                            .unwrap_or_default(),
                    ),
                )
            })
            .collect();
        assert_eq!(declared_indexes, local_indexes, "{table:?}: GSIs");

        let ttl = dynamodb
            .describe_time_to_live()
            .table_name(table.default_name())
            .send()
            .await
            .unwrap()
            .time_to_live_description
            .filter(|d| {
                matches!(
                    d.time_to_live_status,
                    Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
                )
            })
            .and_then(|d| d.attribute_name);
        let declared_ttl = match &declared["TimeToLiveSpecification"] {
            Value::Null => None,
            spec if spec["Enabled"].as_bool() == Some(true) => {
                spec["AttributeName"].as_str().map(str::to_owned)
            }
            _ => None,
        };
        assert_eq!(declared_ttl, ttl, "{table:?}: TTL attribute");
        assert_eq!(
            declared["BillingMode"].as_str(),
            Some("PAY_PER_REQUEST"),
            "{table:?}: on-demand"
        );
    }
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_dead_letters_like_the_local_one_and_outlasts_the_consumer() {
    let template = Template::load();
    let queue_id = order_queue_id(&template);
    let queue = &template.resource(&queue_id)["Properties"];
    let redrive = &queue["RedrivePolicy"];
    let dlq = references(&redrive["deadLetterTargetArn"]);
    assert_eq!(dlq.len(), 1, "the redrive policy names one DLQ");
    let dlq_id = dlq.into_iter().next().unwrap();
    assert_eq!(
        template.resource(&dlq_id)["Type"].as_str(),
        Some("AWS::SQS::Queue")
    );

    let stack = local_stack().await;
    let sqs = aws_sdk_sqs::Client::new(&shared::aws::sdk_config(stack.config()).await);
    let local_redrive: serde_json::Value = serde_json::from_str(
        &sqs.get_queue_attributes()
            .queue_url(stack.order_queue_url())
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()[&QueueAttributeName::RedrivePolicy],
    )
    .unwrap();
    assert_eq!(
        redrive["maxReceiveCount"].as_u64(),
        local_redrive["maxReceiveCount"].as_u64(),
        "maxReceiveCount: template vs local stack"
    );
    assert_eq!(
        local_redrive["maxReceiveCount"].as_u64(),
        Some(u64::from(LocalSettings::default().max_receive_count))
    );
    stack.shutdown().await;

    let functions = template.functions();
    let (_, consumer) = &functions["order-consumer"];
    let timeout = template.property(consumer, "Timeout").as_u64().unwrap();
    let visibility = queue["VisibilityTimeout"].as_u64().unwrap();
    assert!(
        visibility >= 6 * timeout,
        "visibility timeout {visibility} s < 6 x the consumer's timeout {timeout} s (AWS's guidance)"
    );
}

#[test]
fn the_http_routes_are_the_local_gateways_each_to_its_function() {
    let template = Template::load();
    let mut declared = BTreeSet::new();
    for (binary, (_, function)) in template.functions() {
        for event in function["Properties"]["Events"]
            .as_mapping()
            .into_iter()
            .flat_map(|events| events.values())
        {
            if event["Type"].as_str() == Some("HttpApi") {
                let properties = &event["Properties"];
                let route = format!(
                    "{} {}",
                    properties["Method"].as_str().unwrap().to_uppercase(),
                    properties["Path"].as_str().unwrap()
                );
                declared.insert((route, binary.clone()));
            }
        }
    }
    let local: BTreeSet<(String, String)> = Endpoint::ALL
        .iter()
        .map(|e| (e.route_key().to_owned(), e.function_name().to_owned()))
        .collect();
    assert_eq!(declared, local);
}

#[test]
fn the_websocket_routes_are_the_local_gateways_each_to_its_function() {
    let template = Template::load();
    let by_id: BTreeMap<String, String> = template
        .functions()
        .into_iter()
        .map(|(binary, (id, _))| (id, binary))
        .collect();
    let mut declared = BTreeSet::new();
    for (id, route) in template.resources_of_type("AWS::ApiGatewayV2::Route") {
        let properties = &route["Properties"];
        let integration = references(&properties["Target"])
            .into_iter()
            .find(|target| {
                template.resource(target)["Type"].as_str() == Some("AWS::ApiGatewayV2::Integration")
            })
            .unwrap_or_else(|| panic!("{id} targets an integration"));
        let function = references(&template.resource(&integration)["Properties"]["IntegrationUri"])
            .into_iter()
            .find_map(|target| by_id.get(&target).cloned())
            .unwrap_or_else(|| panic!("{integration} invokes a function of the template"));
        declared.insert((
            properties["RouteKey"].as_str().unwrap().to_owned(),
            function,
        ));
    }
    let local: BTreeSet<(String, String)> = WsRoute::ALL
        .iter()
        .map(|r| (r.route_key().to_owned(), r.function_name().to_owned()))
        .collect();
    assert_eq!(declared, local);
}

#[test]
fn the_consumer_reports_batch_item_failures_and_the_reconciler_runs_on_a_schedule() {
    let template = Template::load();
    let queue = order_queue_id(&template);
    let functions = template.functions();
    let events = |binary: &str| -> Vec<Value> {
        let (_, function) = &functions[binary];
        function["Properties"]["Events"]
            .as_mapping()
            .into_iter()
            .flat_map(|events| events.values().cloned())
            .collect()
    };
    let (consumer_id, _) = &functions["order-consumer"];
    let mut sources: Vec<Value> = events("order-consumer")
        .into_iter()
        .filter(|event| event["Type"].as_str() == Some("SQS"))
        .map(|event| event["Properties"].clone())
        .collect();
    sources.extend(
        template
            .resources_of_type("AWS::Lambda::EventSourceMapping")
            .filter(|(_, mapping)| {
                references(&mapping["Properties"]["FunctionName"]).contains(consumer_id)
            })
            .map(|(_, mapping)| mapping["Properties"].clone()),
    );
    assert!(!sources.is_empty(), "the consumer has an SQS event source");
    for source in &sources {
        let queue_ref = match &source["Queue"] {
            Value::Null => &source["EventSourceArn"],
            queue => queue,
        };
        assert!(references(queue_ref).contains(&queue), "{source:?}");
        assert!(
            strings(&source["FunctionResponseTypes"]).contains(&"ReportBatchItemFailures".into()),
            "{source:?}"
        );
    }
    assert!(
        events("reconciler")
            .iter()
            .any(|event| matches!(event["Type"].as_str(), Some("Schedule" | "ScheduleV2"))),
        "the reconciler runs on a schedule"
    );
}

/// What a policy statement's `Resource` names, as `docs/deploy.md`'s IAM table names it: a
/// table by its name without the stack prefix, an index as `<table>/index/<name>`, `order queue`,
/// `dead-letter queue`, `@connections` (the WebSocket API's management endpoint).
fn resource_names(template: &Template, resource: &Value) -> Vec<String> {
    if let Value::Sequence(items) = resource {
        return items
            .iter()
            .flat_map(|item| resource_names(template, item))
            .collect();
    }
    let tables = table_ids(template);
    let referenced = references(resource);
    let sub = match resource {
        Value::Tagged(tagged) if tagged.tag.to_string().trim_start_matches('!') == "Sub" => {
            tagged.value.as_str().unwrap_or_default()
        }
        _ => "",
    };
    if let Some((table, _)) = tables.iter().find(|(_, id)| referenced.contains(*id)) {
        let name = table.default_name().to_owned();
        return vec![match sub.split_once("/index/") {
            Some((_, index)) => format!("{name}/index/{index}"),
            None => name,
        }];
    }
    let name = if referenced.contains(&order_queue_id(template)) {
        "order queue"
    } else if referenced.contains(&dead_letter_queue_id(template)) {
        "dead-letter queue"
    } else if referenced.contains("WebSocketApi") && sub.contains("/@connections/") {
        "@connections"
    } else {
        panic!("a policy names a resource the IAM table has no name for: {resource:?}")
    };
    vec![name.to_owned()]
}

/// (resource, action, only inside `TransactWriteItems`): every grant of every function's role.
fn granted(template: &Template) -> BTreeSet<(String, String, bool)> {
    let mut grants = BTreeSet::new();
    for (_, function) in template.functions().into_values() {
        let statements = function["Properties"]["Policies"]
            .as_sequence()
            .into_iter()
            .flatten()
            .flat_map(|policy| policy["Statement"].as_sequence().into_iter().flatten());
        for statement in statements {
            let in_transaction = !statement["Condition"].is_null();
            for resource in resource_names(template, &statement["Resource"]) {
                for action in strings(&statement["Action"]) {
                    grants.insert((resource.clone(), action, in_transaction));
                }
            }
        }
    }
    grants
}

/// The backticked words of a Markdown table cell.
fn backticked(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The grants `docs/deploy.md`'s IAM table states, in the same form as [`granted`]: a row names
/// resources (or `every table`), actions, and `yes` when they are allowed only in a transaction.
fn documented_grants(deploy_md: &str) -> BTreeSet<(String, String, bool)> {
    const HEADER: &str = "| resource | actions | only in a transaction | what for |";
    let rows = deploy_md
        .lines()
        .skip_while(|line| line.trim() != HEADER)
        .skip(2)
        .take_while(|line| line.starts_with('|'));
    let mut grants = BTreeSet::new();
    for row in rows {
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        let resources = if cells[0] == "every table" {
            Table::ALL
                .iter()
                .map(|table| table.default_name().to_owned())
                .collect()
        } else {
            backticked(cells[0])
        };
        let in_transaction = match cells[2] {
            "yes" => true,
            "" => false,
            other => panic!("{row}: the transaction column says {other:?}, not `yes` or nothing"),
        };
        for resource in &resources {
            for action in backticked(cells[1]) {
                grants.insert((resource.clone(), action, in_transaction));
            }
        }
    }
    assert!(
        !grants.is_empty(),
        "docs/deploy.md has no IAM table under {HEADER}"
    );
    grants
}

#[test]
fn the_iam_table_of_the_deploy_guide_states_exactly_what_the_roles_grant() {
    let template = Template::load();
    let deploy_md = std::fs::read_to_string(repository().join("docs/deploy.md")).unwrap();
    let granted = granted(&template);
    let documented = documented_grants(&deploy_md);
    let undocumented: Vec<_> = granted.difference(&documented).collect();
    let not_granted: Vec<_> = documented.difference(&granted).collect();
    assert!(
        undocumented.is_empty() && not_granted.is_empty(),
        "docs/deploy.md's IAM table vs template.yaml's roles\n  granted, not in the table: \
         {undocumented:?}\n  in the table, granted by no role: {not_granted:?}"
    );
}

#[test]
fn the_iam_table_check_finds_a_grant_missing_from_the_table() {
    let template = Template::load();
    let deploy_md = std::fs::read_to_string(repository().join("docs/deploy.md")).unwrap();
    let without_scan: String = deploy_md
        .lines()
        .filter(|line| !line.contains("`dynamodb:Scan`"))
        .map(|line| format!("{line}\n"))
        .collect();
    let missing: Vec<_> = granted(&template)
        .difference(&documented_grants(&without_scan))
        .cloned()
        .collect();
    assert!(
        missing.contains(&("products".to_owned(), "dynamodb:Scan".to_owned(), false)),
        "{missing:?}"
    );
}

/// `samconfig.toml`: each `[section]`'s `key = value` lines, an array's entries joined by `,`.
fn samconfig() -> BTreeMap<String, BTreeMap<String, String>> {
    let text = std::fs::read_to_string(repository().join("samconfig.toml")).unwrap();
    let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut section = String::new();
    let mut array: Option<(String, Vec<String>)> = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((key, entries)) = &mut array {
            if line == "]" {
                let value = entries.join(",");
                sections
                    .entry(section.clone())
                    .or_default()
                    .insert(key.clone(), value);
                array = None;
            } else {
                entries.push(line.trim_end_matches(',').trim_matches('"').to_owned());
            }
        } else if let Some(name) = line.strip_prefix('[') {
            section = name.trim_end_matches(']').to_owned();
        } else if let Some((key, value)) = line.split_once(" = ") {
            if value == "[" {
                array = Some((key.to_owned(), Vec::new()));
            } else {
                sections
                    .entry(section.clone())
                    .or_default()
                    .insert(key.to_owned(), value.trim_matches('"').to_owned());
            }
        }
    }
    sections
}

#[test]
fn the_first_deploy_differs_from_the_later_ones_only_in_table_protection_and_failure() {
    let config = samconfig();
    assert_eq!(
        config["first-deploy.global.parameters"], config["default.global.parameters"],
        "the same stack in the same region"
    );
    let mut first = config["first-deploy.deploy.parameters"].clone();
    let mut later = config["default.deploy.parameters"].clone();
    // A failed creation deletes its stack; a failed update rolls back to the last good state.
    assert_eq!(first.remove("on_failure").as_deref(), Some("DELETE"));
    assert_eq!(later.remove("on_failure").as_deref(), Some("ROLLBACK"));
    let protection = |parameters: &BTreeMap<String, String>| {
        parameters["parameter_overrides"]
            .split(',')
            .find_map(|entry| entry.strip_prefix("TableDeletionProtection="))
            .map(str::to_owned)
    };
    assert_eq!(protection(&first).as_deref(), Some("false"));
    assert_eq!(protection(&later).as_deref(), Some("true"));
    for parameters in [&mut first, &mut later] {
        let overrides = parameters["parameter_overrides"]
            .split(',')
            .filter(|entry| !entry.starts_with("TableDeletionProtection="))
            .collect::<Vec<_>>()
            .join(",");
        parameters.insert("parameter_overrides".to_owned(), overrides);
    }
    assert_eq!(first, later, "first-deploy vs default: every other setting");
}

#[test]
fn the_tables_kept_with_the_stack_are_deleted_when_their_creation_rolls_back() {
    let template = Template::load();
    for (id, table) in template.resources_of_type("AWS::DynamoDB::Table") {
        let policy = table["DeletionPolicy"].as_str();
        assert!(
            matches!(policy, Some("RetainExceptOnCreate" | "Delete")),
            "{id}: DeletionPolicy {policy:?}: Retain would keep a table made by a failed first \
             deploy, whose fixed name then stops the next one"
        );
    }
}
