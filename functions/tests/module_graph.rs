//! No import circles anywhere in the workspace: in every crate's source tree (each member's `src/`
//! and its multi-file test crates, such as `tests/e2e/`), the modules of one folder form a graph
//! without cycles. A file of `a::c` naming `crate::a::b` or `super::b` is the edge `c → b` inside
//! `a`; one naming `crate::x` from outside `x` is an edge between top-level modules. Comments,
//! `#[cfg(test)] mod tests` blocks and `tests.rs` / `tests/` files are left out: test code may
//! reach anywhere. A cycle would mean modules that can only be understood, tested or moved
//! together.
//!
//! The scan reads paths, not names brought in by re-exports: `crate::Api` is not an edge to
//! `client`, though `crate::client::Api` is.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module's path below its crate root: `["gateway", "http_api"]`.
type ModulePath = Vec<String>;

/// The modules of one folder and, for each, the siblings it names.
type Siblings = BTreeMap<String, BTreeSet<String>>;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Each workspace member's `src/`, and every folder of it or of its `tests/` holding a
/// `main.rs`: a test crate of several files.
fn source_trees() -> Vec<PathBuf> {
    let root = repository();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let members = manifest
        .lines()
        .find_map(|line| line.trim().strip_prefix("members = ["))
        .expect("the workspace lists its members on one line");
    let mut trees = Vec::new();
    for member in members.trim_end_matches(']').split(',') {
        let member = root.join(member.trim().trim_matches('"'));
        trees.push(member.join("src"));
        for folder in [member.clone(), member.join("tests")] {
            let Ok(entries) = std::fs::read_dir(&folder) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                if path.join("main.rs").is_file() {
                    trees.push(path);
                }
            }
        }
    }
    trees.retain(|tree| tree.is_dir());
    trees.sort();
    // `src/` itself when it holds a `main.rs`.
    trees.dedup();
    trees
}

/// The `.rs` files of a source tree with their module paths, leaving out test files and `bin/`
/// (each file there is a crate of its own).
fn modules(tree: &Path) -> Vec<(PathBuf, ModulePath)> {
    let mut files = Vec::new();
    let mut folders = vec![tree.to_owned()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if name != "tests" && !(folder == tree && name == "bin") {
                    folders.push(path);
                }
            } else if name.ends_with(".rs") && name != "tests.rs" {
                let relative = path.strip_prefix(tree).unwrap().with_extension("");
                let mut module: ModulePath = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                let last = module.last().unwrap().as_str();
                if last == "mod" || (module.len() == 1 && (last == "lib" || last == "main")) {
                    module.pop();
                }
                files.push((path, module));
            }
        }
    }
    files.sort();
    files
}

/// The code of a file without its unit-test module (the last thing in a file) and comment lines.
fn code(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let text = text.split("#[cfg(test)]\nmod tests {").next().unwrap();
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths written in `code` that start at `crate`, `super` or `self`, a `use` group giving
/// one path per member: `use super::{a, b::{c, d}}` names `super::a`, `super::b::c` and
/// `super::b::d`.
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for start in ["crate::", "super::", "self::"] {
        for (i, _) in code.match_indices(start) {
            // The first segment only: not `super` in `super::super::`, nor `myself::`.
            let before = code[..i].chars().next_back().unwrap_or(' ');
            if before.is_alphanumeric() || before == '_' || before == ':' {
                continue;
            }
            paths.extend(expand(&code[i..]));
        }
    }
    paths
}

/// The paths the text at the start of `rest` writes: `a::b::c`, or a prefix and a `{...}` group.
fn expand(rest: &str) -> Vec<Vec<String>> {
    let rest = rest.trim_start();
    if let Some(group) = rest.strip_prefix('{') {
        let mut members = Vec::new();
        let (mut depth, mut member_start) = (0, 0);
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    members.push(&group[member_start..i]);
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    members.push(&group[member_start..i]);
                    member_start = i + 1;
                }
                _ => {}
            }
        }
        return members
            .into_iter()
            .filter(|member| !member.trim().is_empty())
            .flat_map(expand)
            .collect();
    }
    let segment: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    if segment.is_empty() {
        // `*` or the end of the path.
        return vec![Vec::new()];
    }
    match rest[segment.len()..].strip_prefix("::") {
        Some(tail) => expand(tail)
            .into_iter()
            .map(|mut path| {
                path.insert(0, segment.clone());
                path
            })
            .collect(),
        None => vec![vec![segment]],
    }
}

/// Where `path`, written in module `from`, points: a module path below the crate root, followed
/// by whatever item it names.
fn resolve(from: &[String], path: &[String]) -> Option<ModulePath> {
    let mut segments = path.iter();
    let mut resolved: ModulePath = match segments.next()?.as_str() {
        "crate" => Vec::new(),
        "self" => from.to_vec(),
        "super" => from[..from.len().checked_sub(1)?].to_vec(),
        _ => return None,
    };
    for segment in segments {
        match segment.as_str() {
            "super" => {
                resolved.pop()?;
            }
            "self" => {}
            _ => resolved.push(segment.clone()),
        }
    }
    Some(resolved)
}

/// Every folder's sibling graph in `tree`, keyed by the folder (`localstack/src/gateway`).
fn sibling_graphs(tree: &Path) -> BTreeMap<String, Siblings> {
    let files = modules(tree);
    let known: BTreeSet<ModulePath> = files
        .iter()
        .flat_map(|(_, module)| (1..=module.len()).map(|n| module[..n].to_vec()))
        .collect();
    let folder_name = |parent: &[String]| {
        let tree = tree.strip_prefix(repository()).unwrap_or(tree);
        [tree.display().to_string()]
            .into_iter()
            .chain(parent.iter().cloned())
            .collect::<Vec<_>>()
            .join("/")
    };
    let mut graphs: BTreeMap<String, Siblings> = BTreeMap::new();
    for module in &known {
        let (parent, name) = module.split_at(module.len() - 1);
        graphs
            .entry(folder_name(parent))
            .or_default()
            .entry(name[0].clone())
            .or_default();
    }
    for (file, from) in &files {
        for path in paths(&code(file)) {
            let Some(to) = resolve(from, &path) else {
                continue;
            };
            // The first module where `from` and `to` part: below their common ancestor.
            let shared = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if shared == from.len() || shared == to.len() || !known.contains(&to[..=shared]) {
                continue;
            }
            graphs
                .entry(folder_name(&from[..shared]))
                .or_default()
                .entry(from[shared].clone())
                .or_default()
                .insert(to[shared].clone());
        }
    }
    graphs
}

/// A cycle through each edge back to a module still being explored (depth-first), as
/// `a → b → a`.
fn cycles(graph: &Siblings) -> Vec<String> {
    fn visit<'a>(
        module: &'a str,
        graph: &'a Siblings,
        stack: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
        found: &mut Vec<String>,
    ) {
        stack.push(module);
        for next in graph.get(module).into_iter().flatten() {
            if let Some(at) = stack.iter().position(|m| m == next) {
                let mut cycle = stack[at..].to_vec();
                cycle.push(next);
                found.push(cycle.join(" → "));
            } else if !done.contains(next.as_str()) {
                visit(next, graph, stack, done, found);
            }
        }
        stack.pop();
        done.insert(module);
    }
    let (mut stack, mut done, mut found) = (Vec::new(), BTreeSet::new(), Vec::new());
    for module in graph.keys() {
        if !done.contains(module.as_str()) {
            visit(module, graph, &mut stack, &mut done, &mut found);
        }
    }
    found
}

#[test]
fn no_modules_of_a_folder_import_each_other_in_a_circle() {
    let trees = source_trees();
    for crate_src in [
        "shared/src",
        "localstack/src",
        "load-tests/src",
        "tests/e2e",
    ] {
        assert!(
            trees.contains(&repository().join(crate_src)),
            "{crate_src} is not scanned: {trees:?}"
        );
    }
    let mut circles = Vec::new();
    for tree in &trees {
        for (folder, graph) in sibling_graphs(tree) {
            circles.extend(
                cycles(&graph)
                    .into_iter()
                    .map(|cycle| format!("{folder}: {cycle}")),
            );
        }
    }
    assert!(
        circles.is_empty(),
        "import circles:\n  {}",
        circles.join("\n  ")
    );
}

#[test]
fn a_use_group_names_each_of_its_members() {
    let code = "use crate::gateway::{console, http_api::{self, serve}};\nuse super::{a, b::*};\n\
                let x = super::super::c::run();";
    assert_eq!(
        paths(code),
        [
            vec!["crate", "gateway", "console"],
            vec!["crate", "gateway", "http_api", "self"],
            vec!["crate", "gateway", "http_api", "serve"],
            vec!["super", "a"],
            vec!["super", "b"],
            vec!["super", "super", "c", "run"],
        ]
    );
}

#[test]
fn a_reference_is_an_edge_between_the_siblings_below_the_common_ancestor() {
    let module = |path: &str| -> ModulePath { path.split("::").map(str::to_owned).collect() };
    let path = |path: &str| -> Vec<String> { path.split("::").map(str::to_owned).collect() };
    // From `a::c`: `crate::a::b::f` and `super::b::f` both reach `a::b`.
    assert_eq!(
        resolve(&module("a::c"), &path("crate::a::b::f")),
        Some(module("a::b::f"))
    );
    assert_eq!(
        resolve(&module("a::c"), &path("super::b::f")),
        Some(module("a::b::f"))
    );
    assert_eq!(
        resolve(&module("a::c::d"), &path("super::super::b")),
        Some(module("a::b"))
    );
    assert_eq!(
        resolve(&module("a"), &path("self::b")),
        Some(module("a::b"))
    );
    assert_eq!(resolve(&[], &path("super::b")), None);

    let graph: Siblings = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(m, uses)| (m.to_owned(), uses.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(cycles(&graph), ["a → b → c → a"]);
}
