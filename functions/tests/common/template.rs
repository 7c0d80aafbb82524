//! `template.yaml` as the drift tests read it: the template with CloudFormation's short-form tags,
//! its resources, and the references and names in them. Shared by `template.rs` and
//! `template_observability.rs`; each uses part of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_norway::Value;
use shared::Function;

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
