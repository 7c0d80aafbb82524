//! What the docs-versus-code tests share: where the repository is, and which Markdown files a
//! reader takes facts from.

use std::path::{Path, PathBuf};

/// The repository's root.
pub fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `docs/*.md` but the generated `docs/benchmarks.md`, sorted.
pub fn docs_markdown() -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repository().join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension().is_some_and(|e| e == "md")
                && path.file_name().is_some_and(|n| n != "benchmarks.md")
        })
        .collect();
    docs.sort();
    docs
}
