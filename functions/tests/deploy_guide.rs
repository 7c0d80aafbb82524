//! The deploy guide and the deploy settings cannot drift from `template.yaml`:
//!
//! - docs/deploy.md's IAM table = every (resource, action, transaction-only) the roles grant;
//! - the tables kept with the stack are deleted by their creation's rollback
//!   (`RetainExceptOnCreate`); `samconfig.toml`'s `first-deploy` environment is `default` but for
//!   the tables' protection and what a failure does.

use std::collections::{BTreeMap, BTreeSet};

use serde_norway::Value;
use shared::function::Table;

#[path = "common/template.rs"]
mod template_model;

use template_model::*;

/// What a policy statement's `Resource` names, as `docs/deploy.md`'s IAM table names it: a
/// table by its name without the stack prefix, an index as `<table>/index/<name>`, `order queue`,
/// `dead-letter queue`, `@connections` (the WebSocket API's management endpoint), `webhook secret`
/// and `JWT secret` (the Secrets Manager secrets `WebhookSecretName` and `JwtSecretName` name).
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
    } else if sub.contains(":secret:${WebhookSecretName}-??????") {
        "webhook secret"
    } else if sub.contains(":secret:${JwtSecretName}-??????") {
        "JWT secret"
    } else {
        panic!("a policy names a resource the IAM table has no name for: {resource:?}")
    };
    vec![name.to_owned()]
}

/// (resource, action, only inside `TransactWriteItems`): every grant of every function's role.
fn granted(template: &Template) -> BTreeSet<(String, String, bool)> {
    let mut grants = BTreeSet::new();
    for (_, function) in template.functions().into_values() {
        for (_, statement) in policy_statements(&function["Properties"]["Policies"]) {
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
