//! The settings tables of the docs agree with the code. Every `| variable | default | ... |`
//! table in the README, `docs/` and `load-tests/README.md` names variables that `shared::Config`
//! (what the functions read; the local stack reads all of it) or `localstack::LocalSettings` (what
//! only the local stack reads) reads, each with the default the code gives it; and the README's two
//! tables, "Read by the functions" and "Read only by the local stack", list every variable each of
//! the two reads, as does a variable read straight from the process environment.
//!
//! "The code" is the two loaders themselves, called through a lookup (`from_lookup`): the names are
//! the ones they look up in an empty environment, and a documented default is right when reading
//! it gives the same settings as reading nothing. No list of names or defaults is kept apart from
//! them. (`localstack/tests/openapi.rs` holds `openapi.yaml` to the routes the code serves.)

mod common;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::PathBuf;

use common::{docs_markdown, repository};

use localstack::LocalSettings;
use shared::{Config, Footprint};

/// The Markdown files a reader takes the settings from (the generated `docs/benchmarks.md` aside).
fn documents() -> Vec<PathBuf> {
    let root = repository();
    let mut files = vec![root.join("README.md"), root.join("load-tests/README.md")];
    files.extend(docs_markdown());
    files
}

/// Who reads a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reader {
    /// `shared::Config`: the functions (and the local stack, for all of them).
    Functions,
    /// `localstack::LocalSettings`: the local stack alone.
    LocalStack,
}

/// Reads the settings of `reader` from an environment holding only `name=value` (nothing when
/// `value` is `None`): their `{:#?}`, or the loader's refusal.
fn read_settings(reader: Reader, name: &str, value: Option<&str>) -> Result<String, String> {
    let lookup = |wanted: &str| value.filter(|_| wanted == name).map(str::to_owned);
    match reader {
        Reader::Functions => Config::from_lookup(&Footprint::everything(), lookup)
            .map(|config| format!("{config:#?}"))
            .map_err(|error| error.to_string()),
        Reader::LocalStack => LocalSettings::from_lookup(lookup)
            .map(|settings| format!("{settings:#?}"))
            .map_err(|error| error.to_string()),
    }
}

/// Every variable `reader`'s loader looks up, found by reading an empty environment through a
/// recording lookup.
fn settings_read(reader: Reader) -> BTreeSet<String> {
    match reader {
        Reader::Functions => Config::settings_read(&Footprint::everything()),
        Reader::LocalStack => {
            let read = RefCell::new(BTreeSet::new());
            LocalSettings::from_lookup(|name| {
                read.borrow_mut().insert(name.to_owned());
                None
            })
            .expect("an empty environment gives the local stack's defaults");
            read.into_inner()
        }
    }
}

/// Where two `{:#?}` renderings differ: the lines of each between their common first and last
/// lines, from the field that holds the first difference, joined into one line each.
fn difference(code: &str, documented: &str) -> Option<(String, String)> {
    let a: Vec<&str> = code.lines().map(str::trim).collect();
    let b: Vec<&str> = documented.lines().map(str::trim).collect();
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    if prefix == a.len() && prefix == b.len() {
        return None;
    }
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    // Back to the line naming the field (`data_dir: Some(` before `"x",`).
    let mut start = prefix;
    while start > 0 && !a[start.min(a.len() - 1)].contains(": ") {
        start -= 1;
    }
    let part = |lines: &[&str]| lines.join(" ");
    Some((
        part(&a[start..a.len() - suffix]),
        part(&b[start..b.len() - suffix]),
    ))
}

/// The backticked values of a table cell outside parentheses: "`0` (at most `900`)" gives `0`,
/// "none (`make run`: `x`)" nothing.
fn values_outside_parentheses(cell: &str) -> Vec<String> {
    let mut values = Vec::new();
    let mut depth = 0usize;
    let mut current: Option<String> = None;
    for c in cell.chars() {
        if current.is_some() {
            if c == '`' {
                let value = current.take().unwrap_or_default();
                if depth == 0 {
                    values.push(value);
                }
            } else if let Some(value) = current.as_mut() {
                value.push(c);
            }
            continue;
        }
        match c {
            '`' => current = Some(String::new()),
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    values
}

/// One row of a settings table.
#[derive(Debug, PartialEq)]
struct SettingRow {
    /// `file:line`.
    at: String,
    /// The variables of its first cell, with the default its second cell gives each (`None`: no
    /// value, as "unset", "none", "empty" or "required" say).
    settings: Vec<(String, Option<String>)>,
    /// Whether its table has a "read by" column: the README's table of the functions' settings.
    read_by_column: bool,
}

/// The rows of every `| variable | default | ... |` table in `text` (of file `shown`).
fn setting_rows(shown: &str, text: &str) -> Result<Vec<SettingRow>, String> {
    let mut rows = Vec::new();
    let mut table: Option<bool> = None;
    for (index, line) in text.lines().enumerate() {
        let at = format!("{shown}:{}", index + 1);
        let Some(inner) = line.trim().strip_prefix('|') else {
            table = None;
            continue;
        };
        let cells: Vec<&str> = inner.split('|').map(str::trim).collect();
        let header: Vec<String> = cells.iter().map(|c| c.to_ascii_lowercase()).collect();
        if header.len() >= 3 && header[0] == "variable" && header[1] == "default" {
            table = Some(header.iter().any(|c| c == "read by"));
            continue;
        }
        let Some(read_by_column) = table else {
            continue;
        };
        if cells[0].starts_with("---") {
            continue;
        }
        let names: Vec<String> = values_outside_parentheses(cells[0])
            .into_iter()
            .filter(|name| {
                name.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            })
            .collect();
        let defaults = values_outside_parentheses(cells.get(1).copied().unwrap_or_default());
        let settings = match (names.len(), defaults.len()) {
            (0, _) => return Err(format!("{at}: no `VARIABLE` in the first cell")),
            (_, 0) => names.into_iter().map(|name| (name, None)).collect(),
            (_, 1) => names
                .into_iter()
                .map(|name| (name, Some(defaults[0].clone())))
                .collect(),
            (n, m) if n == m => names
                .into_iter()
                .zip(defaults.into_iter().map(Some))
                .collect(),
            (n, m) => {
                return Err(format!(
                    "{at}: {n} variables but {m} defaults (one each, in order, or one for all)"
                ));
            }
        };
        rows.push(SettingRow {
            at,
            settings,
            read_by_column,
        });
    }
    Ok(rows)
}

/// What is wrong with the documented default of `name` (read by `reader`), if anything.
fn wrong_default(reader: Reader, name: &str, documented: Option<&str>) -> Option<String> {
    let code = match read_settings(reader, name, None) {
        Ok(code) => code,
        Err(error) => return Some(format!("an empty environment is refused: {error}")),
    };
    match documented {
        Some(value) => match read_settings(reader, name, Some(value)) {
            Err(error) => Some(format!(
                "documented default `{value}`, which the code refuses: {error}"
            )),
            Ok(read) => difference(&code, &read).map(|(code, read)| {
                format!(
                    "documented default `{value}`, but the code's default differs: unset gives \
                     `{code}`, `{name}={value}` gives `{read}`"
                )
            }),
        },
        // No default ("unset", "none", "empty", "required"): unset, the field the variable fills
        // is `None` or empty. A sample value shows which field that is; a setting that refuses
        // the sample (none does today) cannot be checked this way and passes.
        None => match read_settings(reader, name, Some("7")) {
            Err(_) => None,
            Ok(read) => match difference(&code, &read) {
                None => Some(format!(
                    "documented without a default, but `{name}=7` reads the same as unset"
                )),
                Some((code, _)) if code.ends_with(": None,") || code.ends_with(": [],") => None,
                Some((code, _)) => Some(format!(
                    "documented without a default, but unset gives `{code}`"
                )),
            },
        },
    }
}

/// Every setting row of the documents.
fn documented_settings() -> Vec<(PathBuf, SettingRow)> {
    let root = repository();
    let mut rows = Vec::new();
    for file in documents() {
        let shown = file
            .strip_prefix(&root)
            .unwrap_or(&file)
            .display()
            .to_string();
        let text = std::fs::read_to_string(&file).unwrap();
        let found = setting_rows(&shown, &text).unwrap_or_else(|error| panic!("{error}"));
        rows.extend(found.into_iter().map(|row| (file.clone(), row)));
    }
    rows
}

#[test]
fn the_settings_tables_give_the_codes_defaults() {
    let functions = settings_read(Reader::Functions);
    let local = settings_read(Reader::LocalStack);
    let rows = documented_settings();
    assert!(
        rows.iter().any(|(file, _)| file.ends_with("README.md")),
        "README.md has no `| variable | default |` table"
    );
    let mut wrong = Vec::new();
    for (_, row) in &rows {
        for (name, default) in &row.settings {
            let reader = if functions.contains(name) {
                Reader::Functions
            } else if local.contains(name) {
                Reader::LocalStack
            } else {
                wrong.push(format!(
                    "{}: `{name}` is documented, but neither shared::Config nor \
                     LocalSettings reads it",
                    row.at
                ));
                continue;
            };
            if let Some(problem) = wrong_default(reader, name, default.as_deref()) {
                wrong.push(format!("{}: `{name}`: {problem}", row.at));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "the settings tables disagree with the code:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_readme_lists_every_setting_the_code_reads_in_its_table() {
    let readme = repository().join("README.md");
    let rows: Vec<SettingRow> = documented_settings()
        .into_iter()
        .filter(|(file, _)| *file == readme)
        .map(|(_, row)| row)
        .collect();
    let mut wrong = Vec::new();
    for (reader, read_by_column, table) in [
        (Reader::Functions, true, "\"Read by the functions\""),
        (
            Reader::LocalStack,
            false,
            "\"Read only by the local stack\"",
        ),
    ] {
        let documented: BTreeSet<String> = rows
            .iter()
            .filter(|row| row.read_by_column == read_by_column)
            .flat_map(|row| row.settings.iter().map(|(name, _)| name.clone()))
            .collect();
        let read = settings_read(reader);
        for missing in read.difference(&documented) {
            wrong.push(format!(
                "`{missing}` is read by {reader:?} but missing from README.md's {table} table"
            ));
        }
        for extra in documented.difference(&read) {
            wrong.push(format!(
                "`{extra}` is in README.md's {table} table but {reader:?} does not read it"
            ));
        }
    }
    // A variable read straight from the process environment, outside both loaders, is a setting
    // too; the only one that is not ours is the AWS SDK's.
    const NOT_SETTINGS: [&str; 1] = [
        // The SDK's credential chain reads it; `shared::aws` only checks whether it is set, to
        // give an emulator dummy credentials.
        "AWS_ACCESS_KEY_ID",
    ];
    let documented: BTreeSet<String> = rows
        .iter()
        .flat_map(|row| row.settings.iter().map(|(name, _)| name.clone()))
        .collect();
    for (at, name) in direct_environment_reads() {
        if !documented.contains(&name) && !NOT_SETTINGS.contains(&name.as_str()) {
            wrong.push(format!(
                "{at}: reads `{name}` from the environment; README.md's settings tables do not list it"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// `(file:line, NAME)` of every `env::var("NAME")` and `env::var_os("NAME")` in the code the
/// functions and the local stack are built from.
fn direct_environment_reads() -> Vec<(String, String)> {
    let root = repository();
    let mut found = Vec::new();
    let mut directories: Vec<PathBuf> = ["shared/src", "localstack/src", "functions/src"]
        .iter()
        .map(|dir| root.join(dir))
        .collect();
    while let Some(directory) = directories.pop() {
        for entry in std::fs::read_dir(&directory).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                directories.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let shown = path
                .strip_prefix(&root)
                .unwrap_or(&path)
                .display()
                .to_string();
            for (index, line) in text.lines().enumerate() {
                for call in ["env::var(\"", "env::var_os(\""] {
                    for (position, _) in line.match_indices(call) {
                        let rest = &line[position + call.len()..];
                        if let Some(end) = rest.find('"') {
                            found.push((format!("{shown}:{}", index + 1), rest[..end].to_owned()));
                        }
                    }
                }
            }
        }
    }
    found
}

#[test]
fn a_settings_row_is_read_and_a_wrong_default_is_found() {
    let text = "| variable | default | meaning |\n|---|---|---|\n\
                | `A_B`, `C_D` | `1`, `x` | two |\n\
                | `WINDOW` | `0` (at most `900`) | one |\n\
                | `SECRET` | none (`make run`: `dev`) | none |\n";
    let rows = setting_rows("doc.md", text).unwrap();
    let settings: Vec<_> = rows.iter().flat_map(|row| row.settings.clone()).collect();
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(
        settings,
        vec![
            ("A_B".to_owned(), some("1")),
            ("C_D".to_owned(), some("x")),
            ("WINDOW".to_owned(), some("0")),
            ("SECRET".to_owned(), None),
        ]
    );
    assert_eq!(rows[0].at, "doc.md:3");
    assert!(
        setting_rows(
            "doc.md",
            "| variable | default | m |\n| `A`, `B` | `1`, `2`, `3` | x |"
        )
        .is_err()
    );

    let wrong = wrong_default(Reader::Functions, "RATE_LIMIT_PER_MINUTE", Some("100")).unwrap();
    assert!(wrong.contains("rate_limit_per_minute: 120,"), "{wrong}");
    assert!(wrong_default(Reader::Functions, "RATE_LIMIT_PER_MINUTE", Some("120")).is_none());
    assert!(wrong_default(Reader::Functions, "JWT_SECRET", None).is_none());
    assert!(wrong_default(Reader::Functions, "AWS_REGION", None).is_some());
    assert!(wrong_default(Reader::LocalStack, "LOCAL_DATA_DIR", None).is_none());
    assert!(wrong_default(Reader::LocalStack, "HTTP_PORT", Some("x")).is_some());
}
