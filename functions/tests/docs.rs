//! The docs say how many functions and tables there are, as the code does: every "the N
//! functions", "all N binaries", "every one of the N functions", "the N tables" (digits or words)
//! in the README, `docs/` (but the generated `docs/benchmarks.md`), `load-tests/README.md`,
//! `samconfig.toml` and `template.yaml` must name the catalogue's count (`shared::function`).
//! A count of a subset ("the ten HTTP functions", "two tables") is not a phrase this reads.
//!
//! Nor do docs, code, scripts or settings cite what a reader of the repository does not have: a
//! section or the file of the product specification, or an issue by its number (the tracker
//! lives elsewhere). They say the fact, or name the file here that holds it.

mod common;

use std::path::{Path, PathBuf};

use common::{docs_markdown, repository};

use shared::Function;
use shared::function::Table;

/// The files a reader takes the counts from.
fn documents() -> Vec<PathBuf> {
    let root = repository();
    let mut files: Vec<PathBuf> = [
        "README.md",
        "load-tests/README.md",
        "samconfig.toml",
        "template.yaml",
    ]
    .iter()
    .map(|name| root.join(name))
    .collect();
    files.extend(docs_markdown());
    files
}

fn number(word: &str) -> Option<usize> {
    const WORDS: [&str; 21] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "twenty",
    ];
    word.parse()
        .ok()
        .or_else(|| WORDS.iter().position(|w| w.eq_ignore_ascii_case(word)))
}

/// Every (count, noun, line) of "the|all N <noun>" and "every one of the N <noun>" in `text`,
/// `<noun>` one of `nouns`.
fn counts(text: &str, nouns: &[&str]) -> Vec<(usize, String, usize)> {
    let mut found = Vec::new();
    for (line_number, line) in text.lines().enumerate() {
        let words: Vec<String> = line
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_ascii_lowercase)
            .collect();
        for window in words.windows(3) {
            let [lead, count, noun] = window else {
                continue;
            };
            if (lead == "the" || lead == "all") && nouns.contains(&noun.as_str()) {
                if let Some(n) = number(count) {
                    found.push((n, noun.clone(), line_number + 1));
                }
            }
        }
    }
    found
}

/// What the documents say that differs from `expected`, as `file:line: N noun`.
fn wrong_counts(nouns: &[&str], expected: usize) -> Vec<String> {
    let root = repository();
    let mut wrong = Vec::new();
    for file in documents() {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, noun, line) in counts(&text, nouns) {
            if n != expected {
                let shown = file.strip_prefix(&root).unwrap_or(&file).display();
                wrong.push(format!("{shown}:{line}: {n} {noun}"));
            }
        }
    }
    wrong
}

#[test]
fn the_docs_count_the_functions_and_tables_the_code_has() {
    let functions = Function::all().len();
    let tables = Table::ALL.len();
    let wrong = wrong_counts(&["functions", "binaries", "bootstraps"], functions);
    assert!(
        wrong.is_empty(),
        "the code has {functions} functions; the docs say otherwise: {wrong:#?}"
    );
    let wrong = wrong_counts(&["tables"], tables);
    assert!(
        wrong.is_empty(),
        "the code has {tables} tables; the docs say otherwise: {wrong:#?}"
    );
}

#[test]
fn a_wrong_count_is_found() {
    let text = "The template declares the 15 functions and all eight tables.\nEvery one of the 19 functions; the ten HTTP functions.";
    assert_eq!(
        counts(text, &["functions"]),
        vec![
            (15, "functions".to_owned(), 1),
            (19, "functions".to_owned(), 2)
        ]
    );
    assert_eq!(counts(text, &["tables"]), vec![(8, "tables".to_owned(), 1)]);
}

/// What is scanned for citations: Markdown (but the generated `docs/benchmarks.md`), code,
/// scripts and settings, by extension; `Makefile`; and scripts without one (a `#!` line).
const SCANNED_EXTENSIONS: [&str; 8] = ["md", "rs", "yaml", "yml", "toml", "py", "js", "sh"];

/// Directories never scanned: build output, vendored crates, installed tools, local data.
const SKIPPED_DIRECTORIES: [&str; 7] = [
    "target",
    "vendor",
    ".tools",
    "node_modules",
    ".git",
    ".venv",
    ".data",
];

/// The files to scan, relative to the repository: what git tracks, and new files it does not
/// ignore; without git, a walk of the directories.
fn scanned_files() -> Vec<PathBuf> {
    let root = repository();
    let listed = std::process::Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(&root)
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| {
            String::from_utf8_lossy(&output.stdout)
                .split('\0')
                .filter(|name| !name.is_empty())
                .map(PathBuf::from)
                .collect::<Vec<_>>()
        });
    let mut files = listed.unwrap_or_else(|| {
        let mut found = Vec::new();
        walk(&root, &root, &mut found);
        found
    });
    files.retain(|file| scanned(&root, file));
    files.sort();
    files.dedup();
    files
}

fn walk(root: &Path, dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            walk(root, &path, found);
        } else if let Ok(relative) = path.strip_prefix(root) {
            found.push(relative.to_path_buf());
        }
    }
}

fn scanned(root: &Path, file: &Path) -> bool {
    let skipped = file.components().any(|part| {
        part.as_os_str()
            .to_str()
            .is_some_and(|name| SKIPPED_DIRECTORIES.contains(&name))
    });
    if skipped || file == Path::new("docs/benchmarks.md") {
        return false;
    }
    match file.extension().and_then(|e| e.to_str()) {
        Some(extension) => SCANNED_EXTENSIONS.contains(&extension),
        None => {
            file.file_name().is_some_and(|name| name == "Makefile")
                || std::fs::read(root.join(file)).is_ok_and(|bytes| bytes.starts_with(b"#!"))
        }
    }
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// What may stand between the words of one citation: spaces, a line break, and the comment or
/// quote markers that begin the next line (`//`, `//!`, `#`, `*`, `>`); at least one space or
/// break, so `issues/8` in an address is no citation.
fn joins(between: &str) -> bool {
    between.contains(char::is_whitespace)
        && between
            .chars()
            .all(|c| c.is_whitespace() || "/!#*>".contains(c))
}

/// The 1-based lines of `text` where a citation begins: the word `spec` then `section` or
/// `sections`, the file name `spec` + `.md`, or `issue` or `issues` then a number (`#` allowed),
/// in any case, each word whole, a citation possibly wrapped onto the next line.
fn citations(text: &str) -> Vec<usize> {
    let lower = text.to_ascii_lowercase();
    let mut words: Vec<(usize, usize)> = Vec::new();
    let mut start = None;
    for (at, c) in lower.char_indices() {
        match (is_word_char(c), start) {
            (true, None) => start = Some(at),
            (false, Some(from)) => {
                words.push((from, at));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(from) = start {
        words.push((from, lower.len()));
    }
    let mut found = Vec::new();
    for (i, &(from, to)) in words.iter().enumerate() {
        let next = words
            .get(i + 1)
            .filter(|&&(next_from, _)| joins(&lower[to..next_from]))
            .map(|&(next_from, next_to)| &lower[next_from..next_to]);
        let cited = match &lower[from..to] {
            "spec" => {
                (lower[to..].starts_with(".md") && !lower[to + 3..].starts_with(is_word_char))
                    || matches!(next, Some("section" | "sections"))
            }
            "issue" | "issues" => next.is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())),
            _ => false,
        };
        if cited {
            found.push(lower[..from].matches('\n').count() + 1);
        }
    }
    found
}

#[test]
fn nothing_cites_documents_outside_the_repository() {
    let root = repository();
    let mut cited = Vec::new();
    for file in scanned_files() {
        // Listed by git but deleted in the working tree: nothing to read.
        let Ok(bytes) = std::fs::read(root.join(&file)) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        for line in citations(&text) {
            let quoted = text.lines().nth(line - 1).unwrap_or_default().trim();
            cited.push(format!("{}:{line}: {quoted}", file.display()));
        }
    }
    assert!(
        cited.is_empty(),
        "these cite the product specification's sections or file, or an issue by number, which a \
         reader of the repository does not have; say the fact, or name the file here that holds \
         it:\n{}",
        cited.join("\n")
    );
}

#[test]
fn a_citation_is_found_and_a_look_alike_is_not() {
    // Built from pieces, so that this file cites nothing itself.
    let (spec, issues) = ("SPEC", "Issues");
    let text = format!(
        "Prices ({spec} section 7).\nsee {spec}.md, not {spec}s.md\n// as asked in issue\n// 11\n\
         {issues} #4 and 5\nreissue 5, issue_6, tissues 7, issues/8, {spec}.mdx, {spec} sectional\n\
         let spec = section(3);\n"
    );
    assert_eq!(citations(&text), vec![1, 2, 3, 5]);
}
