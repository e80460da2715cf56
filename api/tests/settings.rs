//! Every setting the server reads from the environment has its row in the README's
//! configuration table (ARCHITECTURE.md, "Where things go": a setting is a field of `config`,
//! its variable named in the field's doc, and a row in that table). This test reads the sources
//! of `api/src` for the variables they name (`"SWITCHYARD_…"` string literals; a prefix such as
//! `SWITCHYARD_WEBHOOK_SECRET_` is a family the table documents by its pattern) and fails on
//! one the table lacks, or on a row that is there twice.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The `SWITCHYARD_…` names in string literals of `text` (a literal that starts with one),
/// without the prefixes (ending in `_`) that families of variables are built from.
fn variables(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("\"SWITCHYARD_") {
        let name: String =
            text[i + 1..].chars().take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_').collect();
        if !name.ends_with('_') {
            out.insert(name);
        }
    }
    out
}

/// The variables of the README's configuration table: the first cell of each row, in backquotes.
fn table(readme: &str) -> BTreeMap<String, usize> {
    let section = readme.split("## Configuration").nth(1).expect("a Configuration section in README.md");
    let mut rows = BTreeMap::new();
    for line in section.lines().skip_while(|l| !l.starts_with('|')).take_while(|l| l.starts_with('|')) {
        let first = line.trim_start_matches('|').split('|').next().unwrap_or_default().trim();
        if let Some(name) = first.strip_prefix('`').and_then(|n| n.strip_suffix('`')) {
            *rows.entry(name.to_string()).or_insert(0) += 1;
        }
    }
    rows
}

#[test]
fn every_setting_has_one_row_in_the_readme() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut read: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read a source file");
        for name in variables(&text) {
            read.entry(name).or_default().push(file.strip_prefix(root).unwrap_or(file).display().to_string());
        }
    }
    assert!(read.contains_key("SWITCHYARD_LISTEN"), "the sources were not read: {read:?}");
    let readme = std::fs::read_to_string(root.join("../README.md")).expect("read README.md");
    let rows = table(&readme);
    let missing: Vec<String> = read
        .iter()
        .filter(|(name, _)| !rows.contains_key(*name))
        .map(|(name, files)| format!("{name} (read in {})", files.join(", ")))
        .collect();
    assert!(missing.is_empty(), "settings without a row in README.md's configuration table: {missing:#?}");
    let twice: Vec<&String> = rows.iter().filter(|(_, n)| **n > 1).map(|(name, _)| name).collect();
    assert!(twice.is_empty(), "rows of README.md's configuration table given more than once: {twice:?}");
}

#[test]
fn a_variable_is_read_from_a_literal_and_a_prefix_is_not_one() {
    let text = r#"var("SWITCHYARD_LISTEN"); format!("SWITCHYARD_WEBHOOK_SECRET_{slug}"); "not SWITCHYARD_X""#;
    assert_eq!(variables(text), BTreeSet::from(["SWITCHYARD_LISTEN".to_string()]));
    let readme = "## Configuration\n\n| variable | meaning |\n| --- | --- |\n| `A` | a |\n| `B` | b |\n| `A` | again |\n\n## More\n| `C` | no |\n";
    assert_eq!(table(readme), BTreeMap::from([("A".to_string(), 2), ("B".to_string(), 1)]));
}
