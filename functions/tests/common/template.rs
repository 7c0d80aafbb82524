//! `template.yaml` as the drift tests read it: the template with CloudFormation's short-form tags,
//! its resources, and the references and names in them. Shared by `template.rs`,
//! `template_observability.rs`, `template_dashboard.rs` and `deploy_guide.rs`; each uses part of
//! it.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_norway::Value;
use shared::Function;
use shared::function::Table;

pub fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The template, with CloudFormation's short-form tags (`!Ref`, `!Sub`, ...) as tagged values.
pub struct Template {
    pub root: Value,
}

impl Template {
    pub fn load() -> Self {
        let text = std::fs::read_to_string(repository().join("template.yaml"))
            .expect("template.yaml at the repository root");
        Template {
            root: serde_norway::from_str(&text).expect("template.yaml is YAML"),
        }
    }

    pub fn resources(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.root["Resources"]
            .as_mapping()
            .expect("Resources")
            .iter()
            .map(|(id, resource)| (id.as_str().unwrap(), resource))
    }

    pub fn resources_of_type<'a>(
        &'a self,
        kind: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a Value)> {
        self.resources()
            .filter(move |(_, resource)| resource["Type"].as_str() == Some(kind))
    }

    pub fn resource(&self, id: &str) -> &Value {
        &self.root["Resources"][id]
    }

    /// Serverless functions by binary name: (logical id, resource).
    pub fn functions(&self) -> BTreeMap<String, (String, &Value)> {
        self.resources_of_type("AWS::Serverless::Function")
            .map(|(id, resource)| {
                let binary = resource["Metadata"]["BuildProperties"]["Binary"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{id} has no Metadata.BuildProperties.Binary"));
                (binary.to_owned(), (id.to_owned(), resource))
            })
            .collect()
    }

    pub fn global(&self, property: &str) -> &Value {
        &self.root["Globals"]["Function"][property]
    }

    /// A function property, or its `Globals.Function` value.
    pub fn property<'a>(&'a self, function: &'a Value, property: &str) -> &'a Value {
        match &function["Properties"][property] {
            Value::Null => self.global(property),
            value => value,
        }
    }

    /// A function's environment: `Globals` merged with its own.
    pub fn environment(&self, function: &Value) -> BTreeMap<String, Value> {
        let mut variables = BTreeMap::new();
        for source in [
            &self.global("Environment")["Variables"],
            &function["Properties"]["Environment"]["Variables"],
        ] {
            if let Some(mapping) = source.as_mapping() {
                for (name, value) in mapping {
                    variables.insert(name.as_str().unwrap().to_owned(), value.clone());
                }
            }
        }
        variables
    }
}

/// Every logical id `value` refers to (`Ref`, `GetAtt`, `${...}` in `Sub`), in short or long form.
pub fn references(value: &Value) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    collect_references(value, &mut found);
    found.retain(|id| !id.starts_with("AWS::"));
    found
}

/// The logical ids one intrinsic function call names directly.
pub fn intrinsic(function: &str, argument: &Value, found: &mut BTreeSet<String>) {
    match function {
        "Ref" => {
            if let Some(id) = argument.as_str() {
                found.insert(id.to_owned());
            }
        }
        "GetAtt" | "Fn::GetAtt" => match argument {
            Value::String(text) => {
                found.insert(text.split('.').next().unwrap().to_owned());
            }
            Value::Sequence(parts) => {
                if let Some(id) = parts.first().and_then(Value::as_str) {
                    found.insert(id.to_owned());
                }
            }
            _ => {}
        },
        "Sub" | "Fn::Sub" => {
            let text = match argument {
                Value::String(text) => Some(text.as_str()),
                Value::Sequence(parts) => parts.first().and_then(Value::as_str),
                _ => None,
            };
            for piece in text.unwrap_or_default().split("${").skip(1) {
                let name = piece.split('}').next().unwrap_or_default();
                if !name.starts_with('!') {
                    found.insert(name.split('.').next().unwrap().to_owned());
                }
            }
        }
        _ => {}
    }
}

pub fn collect_references(value: &Value, found: &mut BTreeSet<String>) {
    match value {
        Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            intrinsic(tag.trim_start_matches('!'), &tagged.value, found);
            collect_references(&tagged.value, found);
        }
        Value::Mapping(mapping) => {
            for (key, inner) in mapping {
                if let Some(key) = key.as_str() {
                    intrinsic(key, inner, found);
                }
                collect_references(inner, found);
            }
        }
        Value::Sequence(items) => items
            .iter()
            .for_each(|item| collect_references(item, found)),
        _ => {}
    }
}

/// Every statement of a function's `Policies`, each with the condition it is granted under: a
/// statement written `!If [Condition, statement, !Ref AWS::NoValue]` counts as `statement`, granted
/// when `Condition` holds.
pub fn policy_statements(policies: &Value) -> Vec<(Option<String>, &Value)> {
    policies
        .as_sequence()
        .into_iter()
        .flatten()
        .flat_map(|policy| policy["Statement"].as_sequence().into_iter().flatten())
        .map(|statement| match statement {
            Value::Tagged(tagged) if tagged.tag.to_string().trim_start_matches('!') == "If" => {
                let branches = tagged.value.as_sequence().expect("!If takes a list");
                assert_eq!(
                    references(&branches[2]),
                    BTreeSet::new(),
                    "a conditional statement's other branch grants nothing: {statement:?}"
                );
                assert!(
                    matches!(&branches[2], Value::Tagged(no) if no.value.as_str() == Some("AWS::NoValue")),
                    "a conditional statement's other branch is AWS::NoValue: {statement:?}"
                );
                (
                    branches[0].as_str().map(str::to_owned),
                    &branches[1],
                )
            }
            _ => (None, statement),
        })
        .collect()
}

/// Every string in `value` (actions of a policy statement, ...).
pub fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(text) => vec![text.clone()],
        Value::Sequence(items) => items.iter().flat_map(strings).collect(),
        Value::Tagged(tagged) => strings(&tagged.value),
        _ => Vec::new(),
    }
}

pub fn file_stems(directory: &str, extension: &str) -> BTreeSet<String> {
    std::fs::read_dir(repository().join(directory))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().and_then(|e| e.to_str()) == Some(extension))
        .map(|path| path.file_stem().unwrap().to_str().unwrap().to_owned())
        .collect()
}

pub fn names(functions: &[Function]) -> BTreeSet<String> {
    functions.iter().map(|f| f.name().to_owned()).collect()
}

/// The template's logical id of each table, found through the `*_TABLE` variables.
pub fn table_ids(template: &Template) -> BTreeMap<Table, String> {
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
pub fn dead_letter_queue_id(template: &Template) -> String {
    let queue = &template.resource(&order_queue_id(template))["Properties"];
    let dlq = references(&queue["RedrivePolicy"]["deadLetterTargetArn"]);
    assert_eq!(dlq.len(), 1, "the redrive policy names one DLQ");
    dlq.into_iter().next().unwrap()
}

/// The order queue: what `ORDER_QUEUE_URL` refers to.
pub fn order_queue_id(template: &Template) -> String {
    let functions = template.functions();
    let (_, create_order) = &functions["create-order"];
    let environment = template.environment(create_order);
    let referenced = references(&environment["ORDER_QUEUE_URL"]);
    assert_eq!(referenced.len(), 1, "ORDER_QUEUE_URL refers to one queue");
    referenced.into_iter().next().unwrap()
}
