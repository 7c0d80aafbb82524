//! The docs say how many functions and tables there are, as the code does: every "the N
//! functions", "all N binaries", "every one of the N functions", "the N tables" (digits or words)
//! in the README, `docs/` (but the generated `docs/benchmarks.md`), `load-tests/README.md`,
//! `samconfig.toml` and `template.yaml` must name the catalogue's count (`shared::function`).
//! A count of a subset ("the ten HTTP functions", "two tables") is not a phrase this reads.

use std::path::{Path, PathBuf};

use shared::Function;
use shared::function::Table;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

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
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension().is_some_and(|e| e == "md")
                && path.file_name().is_some_and(|n| n != "benchmarks.md")
        })
        .collect();
    docs.sort();
    files.extend(docs);
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
