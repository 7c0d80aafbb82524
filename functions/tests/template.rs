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
//! - Globals, log groups and alarms: `template_observability.rs`; the dashboard and the alarms on
//!   business metrics: `template_dashboard.rs`; the deploy guide's IAM table and the deploy
//!   settings: `deploy_guide.rs`.

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
fn every_function_times_out_as_the_catalogue_says() {
    let template = Template::load();
    let functions = template.functions();
    for function in Function::all() {
        let (id, resource) = &functions[function.name()];
        assert_eq!(
            template.property(resource, "Timeout").as_u64(),
            Some(function.timeout().as_secs()),
            "{id}'s Timeout against Function::timeout (shared/src/function.rs)"
        );
    }
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
            .chain(shared::config::LITERAL_SECRET_SETTINGS)
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
        let conditional = policy_statements(policies);
        let statements: Vec<&Value> = conditional
            .iter()
            .map(|(_, statement)| *statement)
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
        // A secret is readable by exactly the functions that verify with it, and only that secret:
        // the webhook secret by the function that verifies webhooks, the JWT secret (when the
        // stack names one) by those that verify tokens.
        let secret_statements: Vec<&(Option<String>, &Value)> = conditional
            .iter()
            .filter(|(_, statement)| {
                strings(&statement["Action"])
                    .iter()
                    .any(|action| action.starts_with("secretsmanager:"))
            })
            .collect();
        assert_eq!(
            !secret_statements.is_empty(),
            footprint.reads_secrets(),
            "{name}: Secrets Manager in its IAM policies vs its footprint"
        );
        let mut granted_secrets = BTreeSet::new();
        for (condition, statement) in secret_statements {
            assert_eq!(
                strings(&statement["Action"]),
                ["secretsmanager:GetSecretValue"],
                "{name}"
            );
            let resource = match &statement["Resource"] {
                Value::Tagged(tagged) => tagged.value.as_str(),
                _ => None,
            };
            let secret = resource
                .and_then(|arn| arn.strip_suffix("}-??????"))
                .and_then(|arn| arn.rsplit_once(":secret:${"))
                .map(|(_, parameter)| parameter);
            let expected_condition = match secret {
                Some("WebhookSecretName") => None,
                Some("JwtSecretName") => Some("HasJwtSecret"),
                _ => panic!(
                    "{name}: GetSecretValue on {:?}, not on one secret parameter's ARN",
                    statement["Resource"]
                ),
            };
            assert_eq!(
                condition.as_deref(),
                expected_condition,
                "{name}: the condition GetSecretValue on {secret:?} is granted under"
            );
            granted_secrets.insert(secret.unwrap_or_default());
        }
        let expected_secrets: BTreeSet<&str> = [
            (footprint.verifies_webhooks, "WebhookSecretName"),
            (footprint.authenticates, "JwtSecretName"),
        ]
        .into_iter()
        .filter_map(|(reads, secret)| reads.then_some(secret))
        .collect();
        assert_eq!(
            granted_secrets, expected_secrets,
            "{name}: the secrets its role may read vs its footprint"
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
