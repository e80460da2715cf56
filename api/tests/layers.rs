//! The modules of `api/src` form layers: each depends only on modules below it, so there is no
//! circle of modules importing each other (ARCHITECTURE.md, "Inside the api crate"). This test
//! reads the sources, draws the graph of which module names which, and fails on a cycle,
//! printing it; and, reading the layer table of ARCHITECTURE.md itself, fails on a module that
//! names a module of a row below its own (or on a top-level module the table does not place).
//!
//! A module names another when its code (comments, strings and `#[cfg(test)]` modules left out)
//! holds a path to it: `crate::a::b`, `super::…`, `self::…`, or a child module by its name
//! (`sql::…` in `workers/mod.rs`), also inside `use` groups. A module naming one of its own
//! ancestors is not an edge: a child lives in its parent's namespace (`super::WorkerConfig`),
//! but a parent using a child is one, so `auth` may not use a child that takes `AppState`.
//! Declaring a child (`pub mod x;`) is not an edge either.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `crate::a::b` for `src/a/b.rs` or `src/a/b/mod.rs`; `crate` for `lib.rs`; `None` for the
/// binary's `main.rs` (a crate of its own).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?.with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts == ["main"] {
        return None;
    }
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    let mut name = String::from("crate");
    for p in parts {
        name.push_str("::");
        name.push_str(&p);
    }
    Some(name)
}

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

/// The code of a file without comments, string and char literals (each replaced by a space) and
/// without its `#[cfg(test)]` items.
fn code(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            i += rest.find("*/").map_or(rest.len(), |e| e + 2);
            out.push(' ');
        } else if rest.starts_with("r#\"") || rest.starts_with("r\"") {
            let hashes = rest[1..].bytes().take_while(|&c| c == b'#').count();
            let close = format!("\"{}", "#".repeat(hashes));
            let start = 2 + hashes;
            i += start + rest[start..].find(&close).map_or(rest.len() - start, |e| e + close.len());
            out.push(' ');
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push(' ');
        } else if b[i] == b'\'' && is_char_literal(rest) {
            i += rest[1..].find('\'').map_or(rest.len(), |e| e + 2);
            out.push(' ');
        } else {
            let c = rest.chars().next().expect("char");
            out.push(c);
            i += c.len_utf8();
        }
    }
    strip_test_items(&out)
}

/// `'a'`, `'\n'`, `'\''` (not a lifetime `'a`).
fn is_char_literal(rest: &str) -> bool {
    let mut chars = rest.chars().skip(1);
    match chars.next() {
        Some('\\') => true,
        Some(_) => chars.next() == Some('\''),
        None => false,
    }
}

/// The code without the items that follow `#[cfg(test)]` (up to their closing brace or `;`).
fn strip_test_items(code: &str) -> String {
    let mut out = String::new();
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let Some(end) = after.find(['{', ';']) else { return out };
        if after.as_bytes()[end] == b';' {
            rest = &after[end + 1..];
            continue;
        }
        let mut depth = 0usize;
        let mut close = after.len();
        for (k, c) in after[end..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        close = end + k + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[close.min(after.len())..];
    }
    out.push_str(rest);
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Other,
}

fn tokens(code: &str) -> Vec<Tok> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
            continue;
        }
        if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push(Tok::PathSep);
            i += 2;
            continue;
        }
        if !c.is_whitespace() {
            out.push(match c {
                '{' => Tok::Open,
                '}' => Tok::Close,
                ',' => Tok::Comma,
                _ => Tok::Other,
            });
        }
        i += 1;
    }
    out
}

/// Every path of the token stream, `use` groups expanded (`a::{b, c::d}` gives `a::b`,
/// `a::c::d`), each as its segments.
fn paths(toks: &[Tok]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        // `mod x;` declares a child: not a path.
        let declared = i > 0 && toks[i - 1] == Tok::Ident("mod".into());
        let starts = matches!(&toks[i], Tok::Ident(_)) && (i == 0 || toks[i - 1] != Tok::PathSep) && !declared;
        if starts {
            i = path_at(toks, i, Vec::new(), &mut out);
        } else {
            i += 1;
        }
    }
    out
}

/// Reads the path starting at `i` (after `prefix`), pushes its expansions, returns where it ends.
fn path_at(toks: &[Tok], mut i: usize, mut prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    loop {
        match toks.get(i) {
            Some(Tok::Ident(name)) => {
                prefix.push(name.clone());
                i += 1;
            }
            Some(Tok::Open) => {
                // A group: each comma-separated member extends the prefix.
                i += 1;
                loop {
                    match toks.get(i) {
                        Some(Tok::Close) => return i + 1,
                        Some(Tok::Comma) => i += 1,
                        Some(Tok::Ident(_) | Tok::Open) => i = path_at(toks, i, prefix.clone(), out),
                        Some(_) => i += 1,
                        None => return i,
                    }
                }
            }
            _ => {
                out.push(prefix);
                return i;
            }
        }
        if toks.get(i) == Some(&Tok::PathSep) {
            i += 1;
        } else {
            out.push(prefix);
            return i;
        }
    }
}

/// Which modules each module names (see the module's documentation).
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let sources: BTreeMap<String, String> =
        files.iter().filter_map(|f| Some((module_of(src, f)?, std::fs::read_to_string(f).expect("read")))).collect();
    let modules: BTreeSet<&str> = sources.keys().map(String::as_str).collect();
    let mut edges = BTreeMap::new();
    for (module, text) in &sources {
        let mut deps = BTreeSet::new();
        for path in paths(&tokens(&code(text))) {
            let mut segments: Vec<String> = match path.first().map(String::as_str) {
                Some("crate") => path.clone(),
                Some("self") => module.split("::").map(str::to_string).chain(path[1..].iter().cloned()).collect(),
                Some("super") => {
                    let mut base: Vec<String> = module.split("::").map(str::to_string).collect();
                    let mut rest = &path[..];
                    while rest.first().is_some_and(|s| s == "super") {
                        base.pop();
                        rest = &rest[1..];
                    }
                    base.into_iter().chain(rest.iter().cloned()).collect()
                }
                Some(first) if path.len() > 1 && modules.contains(format!("{module}::{first}").as_str()) => {
                    module.split("::").map(str::to_string).chain(path.iter().cloned()).collect()
                }
                _ => continue,
            };
            // The longest prefix that is a module.
            while !segments.is_empty() && !modules.contains(segments.join("::").as_str()) {
                segments.pop();
            }
            let target = segments.join("::");
            let is_ancestor = module == &target || module.starts_with(&format!("{target}::"));
            if !target.is_empty() && !is_ancestor {
                deps.insert(target);
            }
        }
        edges.insert(module.clone(), deps);
    }
    edges
}

/// The strongly connected components with more than one module (Tarjan).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.edges.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found
}

#[test]
fn the_modules_of_api_src_form_layers_without_a_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = graph(&src);
    assert!(edges.len() > 30, "the sources were read: {:?}", edges.keys());
    let found = cycles(&edges);
    let shown: Vec<String> = found
        .iter()
        .map(|c| {
            let lines: Vec<String> = c
                .iter()
                .map(|m| {
                    let inside: Vec<&str> = edges[m].iter().filter(|d| c.contains(d)).map(String::as_str).collect();
                    format!("  {m} -> {}", inside.join(", "))
                })
                .collect();
            lines.join("\n")
        })
        .collect();
    assert!(found.is_empty(), "modules of api/src that import each other in a circle:\n{}", shown.join("\n\n"));
}

/// The layers of ARCHITECTURE.md's table ("Inside the api crate"): each top-level module of
/// `api/src` and its row, read from the table itself (the modules column, children in
/// parentheses left out), so the rule the test checks is the one the document states.
fn layers(architecture: &str) -> BTreeMap<String, u32> {
    let section = architecture.split("## Inside the api crate").nth(1).expect("the api crate's section");
    let mut out = BTreeMap::new();
    for line in section.lines().take_while(|l| !l.starts_with("### ")) {
        let mut cells = line.trim_start_matches('|').split('|').map(str::trim);
        let (Some(row), Some(modules)) = (cells.next(), cells.next()) else { continue };
        let Ok(row) = row.parse::<u32>() else { continue };
        let mut depth = 0;
        let top_level: String = modules
            .chars()
            .filter(|c| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => return depth == 0,
                }
                false
            })
            .collect();
        for name in top_level.split('`').skip(1).step_by(2) {
            out.insert(name.to_string(), row);
        }
    }
    out
}

/// The row of a module (`crate::auth::sql` is in `auth`'s row); `None` for the crate root.
fn row_of(layers: &BTreeMap<String, u32>, module: &str) -> Option<u32> {
    layers.get(module.split("::").nth(1)?).copied()
}

#[test]
fn every_module_names_only_modules_of_its_layer_or_above_it_in_the_table() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let edges = graph(&root.join("src"));
    let layers = layers(&std::fs::read_to_string(root.join("../ARCHITECTURE.md")).expect("read ARCHITECTURE.md"));
    assert_eq!(layers.get("error"), Some(&1), "the table was read: {layers:?}");
    assert_eq!(layers.get("http"), Some(&9), "the table was read: {layers:?}");
    let unplaced: BTreeSet<&str> =
        edges.keys().filter_map(|m| m.split("::").nth(1)).filter(|top| !layers.contains_key(*top)).collect();
    assert!(unplaced.is_empty(), "modules of api/src without a row in ARCHITECTURE.md's layers: {unplaced:?}");
    let mut upward = Vec::new();
    for (module, deps) in &edges {
        let Some(row) = row_of(&layers, module) else { continue };
        for dep in deps {
            if let Some(dep_row) = row_of(&layers, dep).filter(|r| *r > row) {
                upward.push(format!("{module} (row {row}) names {dep} (row {dep_row})"));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "modules of api/src naming a module of a row below their own in the table:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_table_is_read_without_the_children_in_parentheses() {
    let text = "## Inside the api crate\n\n| layer | modules | what |\n| --- | --- | --- |\n\
                | 1 | `error`, `limits` | a |\n| 3 | `auth` (`secret`, `sql`) | b |\n\
                | 5 | `workers` (`sql`), `publish` | c |\n\n### Where things go\n| 9 | `x` | no |\n";
    let read = layers(text);
    let want: BTreeMap<String, u32> = [("error", 1), ("limits", 1), ("auth", 3), ("workers", 5), ("publish", 5)]
        .map(|(m, r)| (m.to_string(), r))
        .into();
    assert_eq!(read, want);
    assert_eq!(row_of(&read, "crate::auth::sql"), Some(3));
    assert_eq!(row_of(&read, "crate"), None);
}

#[test]
fn the_reader_sees_paths_the_way_the_compiler_does() {
    let text = r#"
        use crate::auth::{cache::Key, secret};
        use super::sql::{self, X};
        // crate::state in a comment
        const S: &str = "crate::state";
        fn f() { crate::metrics::track(); child::g(); let c = '{'; }
        #[cfg(test)]
        mod tests { use crate::routes::x; }
    "#;
    let toks = tokens(&code(text));
    let found: BTreeSet<String> = paths(&toks).iter().map(|p| p.join("::")).collect();
    for want in [
        "crate::auth::cache::Key",
        "crate::auth::secret",
        "super::sql::self",
        "super::sql::X",
        "crate::metrics::track",
        "child::g",
    ] {
        assert!(found.contains(want), "{want} in {found:?}");
    }
    assert!(!found.iter().any(|p| p.contains("state") || p.contains("routes")), "{found:?}");
}
