//! Every problem `validate_dir` finds in the broken packages of `tests/broken/` is located
//! precisely, because the studio jumps to it: a file, a JSON pointer that resolves in that
//! file's YAML (or ends with the key that is missing or unknown there), and for scripts and
//! templates the line and column inside them. Posted as JSON (the config API), a package gets
//! the same locations as the folder.
//!
//! The exact file, pointer and position of each case are in its `expected.txt`
//! (`tests/suite/validate.rs` compares them line by line); this file checks what must hold of
//! all of them.

use std::path::{Path, PathBuf};

use engine::limits::Limits;
use serde_json::Value;
use tenants::validate::{validate_dir, Problem};
use tenants::Package;

fn broken() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken")
}

/// Every case of `tests/broken/`, by name.
fn cases() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(broken())
        .expect("tests/broken")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    names.sort();
    assert!(names.len() > 30, "{names:?}");
    names
}

/// The problems that are about a whole file or folder (no pointer): `(case, file)`.
const WHOLE_FILE: &[(&str, &str)] =
    &[("missing_files", "tenant.yaml"), ("missing_files", "types"), ("yaml_syntax", "types/thing.yaml")];

/// The file's YAML as JSON, if it parses.
fn document(dir: &Path, file: &str) -> Option<Value> {
    let text = std::fs::read_to_string(dir.join(file)).ok()?;
    serde_yaml_ng::from_str(&text).ok()
}

/// Why `problem`'s pointer does not locate anything in `doc`, if it does not.
fn unlocated(doc: &Value, problem: &Problem) -> Option<String> {
    if doc.pointer(&problem.path).is_some() {
        return None;
    }
    // A key that is not there (missing, or misspelt and so unknown): its parent must be, and
    // the message must name it.
    let (parent, last) = problem.path.rsplit_once('/').unwrap_or(("", &problem.path));
    let key = last.replace("~1", "/").replace("~0", "~");
    if doc.pointer(parent).is_some_and(Value::is_object) && problem.message.contains(&format!("`{key}`")) {
        return None;
    }
    Some(format!("{problem}: the pointer does not resolve"))
}

#[test]
fn every_problem_points_into_its_file() {
    let mut wrong = Vec::new();
    for case in cases() {
        let dir = broken().join(&case);
        let report = validate_dir(&dir, &Limits::default());
        assert!(!report.problems.is_empty(), "{case}: no problem found");
        for p in &report.problems {
            if WHOLE_FILE.contains(&(case.as_str(), p.file.as_str())) {
                if !p.path.is_empty() {
                    wrong.push(format!("{case}: {p}: expected a whole-file problem"));
                }
                continue;
            }
            if p.file.is_empty() || p.path.is_empty() {
                wrong.push(format!("{case}: {p}: no file or no pointer"));
                continue;
            }
            match document(&dir, &p.file) {
                Some(doc) => wrong.extend(unlocated(&doc, p).map(|why| format!("{case}: {why}"))),
                None => wrong.push(format!("{case}: {p}: the file does not parse as YAML")),
            }
            if p.column.is_some() && p.line.is_none() {
                wrong.push(format!("{case}: {p}: a column without a line"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// `(path, line, column)` of a case's problems whose path ends with `suffix`.
fn positions(case: &str, suffix: &str) -> Vec<(String, Option<usize>, Option<usize>)> {
    let report = validate_dir(&broken().join(case), &Limits::default());
    report.problems.into_iter().filter(|p| p.path.ends_with(suffix)).map(|p| (p.path, p.line, p.column)).collect()
}

#[test]
fn script_problems_have_line_and_column() {
    let script = "/workflow/transitions/finish/script".to_string();
    assert_eq!(positions("script", "/script"), [(script.clone(), Some(3), Some(1))]);
    assert_eq!(
        positions("script_names", "/script"),
        [
            (script.clone(), Some(2), Some(1)),
            (script.clone(), Some(4), Some(1)),
            (script.clone(), Some(5), Some(8)),
            (script.clone(), Some(7), Some(1)),
            (script, Some(8), Some(44)),
        ]
    );
    // The position is in the fields, not repeated in the message.
    let report = validate_dir(&broken().join("script"), &Limits::default());
    assert!(report.problems.iter().all(|p| !p.message.contains("line")), "{report}");
}

#[test]
fn template_problems_have_a_line() {
    for (path, line, _) in positions("templates", "") {
        assert!(path == "/title" || path == "/number/template", "{path}");
        assert_eq!(line, Some(1), "{path}");
    }
}

#[test]
fn guard_problems_point_at_the_guard_rule() {
    for case in ["guard_compile", "named_rules", "entity_vars", "context_vars", "input_vars", "iteration_vars"] {
        let report = validate_dir(&broken().join(case), &Limits::default());
        for p in report.problems.iter().filter(|p| p.path.contains("/guards/")) {
            let rest = p.path.split("/guards/").nth(1).unwrap_or_default();
            let (index, tail) = rest.split_once('/').unwrap_or((rest, ""));
            assert!(index.parse::<usize>().is_ok() && tail == "rule", "{case}: {p}");
        }
    }
}

/// The config API validates a posted package by writing it as a folder: the problems must be
/// located as for the folder itself (for every case whose files load as a package).
#[test]
fn a_posted_package_gets_the_same_locations() {
    let mut compared = 0;
    for case in cases() {
        let dir = broken().join(&case);
        // A duplicate YAML key is a problem of the text only: a JSON body cannot repeat a key.
        if case == "duplicate_key" {
            continue;
        }
        let Ok(package) = Package::load_dir(&dir) else { continue };
        // Sample data is not posted.
        let from_json = Package::from_json(&package.to_json()).expect("package JSON");
        let posted = tenants::export::validate_package(&from_json, &Limits::default()).expect("validate");
        let folder = validate_dir(&dir, &Limits::default());
        let located = |problems: &[Problem]| -> Vec<(String, String, Option<usize>, Option<usize>)> {
            problems
                .iter()
                // Sample data and the package's tests are not posted.
                .filter(|p| !p.file.starts_with("data/") && !p.file.starts_with("tests/"))
                .map(|p| (p.file.clone(), p.path.clone(), p.line, p.column))
                .collect()
        };
        assert_eq!(located(&posted.problems), located(&folder.problems), "{case}");
        compared += 1;
    }
    assert!(compared > 20, "only {compared} cases load as packages");
}
