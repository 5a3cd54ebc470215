//! The library's modules import only downward along the data flow, and never each other in a
//! cycle. The order below is the layering docs/src/development.md draws; a new module must be
//! placed in it, and an import against it fails here with the offending file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lowest first: a module may use only modules listed before it (or its own submodules).
const LAYERS: &[&str] = &[
    "error",
    "vector",
    "taxonomy",
    "shard",
    "transcode",
    "input",
    "sentences",
    "sink",
    "progress",
    "cache",
    "embed",
    "chunk",
    "fewshot",
    "classify",
    "eval",
    "calibration",
    "record",
    "pipeline",
    "profile",
    "output",
    "merge",
    "report",
    "bench",
];

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// The module path of a file under `src/`: `embed/amx/mod.rs` is `embed::amx`.
fn module_of(rel: &Path) -> String {
    let mut parts: Vec<String> = rel
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

/// The modules `source` (the text of module `module`) names through `crate::` or `super::`
/// paths, grouped ones (`crate::{a::X, b::Y}`) included, outside comments and its unit tests.
/// `embed::x` counts as its own module when `x` is a submodule, else as `embed`.
fn imports(module: &str, source: &str) -> BTreeSet<String> {
    let code: Vec<&str> = source
        .split("#[cfg(test)]\nmod tests")
        .next()
        .unwrap_or_default()
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect();
    let code = code.join("\n");
    let mut found = BTreeSet::new();
    for (prefix, base) in [("crate::", Vec::new()), ("super::", parent(module))] {
        for (at, _) in code.match_indices(prefix) {
            let before = &code[..at];
            // Only where a path starts: not the second `super::` of `super::super::`.
            let continues = before.ends_with("::")
                || before.ends_with(|c: char| c.is_alphanumeric() || c == '_');
            if continues {
                continue;
            }
            for path in use_paths(&code[at + prefix.len()..], base.clone()) {
                add_import(module, path, &mut found);
            }
        }
    }
    found
}

/// The module paths named by the path or use-tree that `text` starts with, below `base`.
fn use_paths(text: &str, mut base: Vec<String>) -> Vec<Vec<String>> {
    let mut rest = text;
    loop {
        if let Some(group) = rest.strip_prefix('{') {
            let (mut depth, mut start, mut out) = (0, 0, Vec::new());
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth > 0 => depth -= 1,
                    '}' | ',' if depth == 0 => {
                        out.extend(use_paths(group[start..i].trim_start(), base.clone()));
                        if c == '}' {
                            return out;
                        }
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            return out;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name == "super" {
            base.pop();
        } else if name.starts_with(|c: char| c.is_lowercase()) {
            base.push(name.clone());
        } else {
            return vec![base];
        }
        match rest[name.len()..].strip_prefix("::") {
            Some(next) => rest = next,
            None => return vec![base],
        }
    }
}

/// Records `path` as an import of `module`: top-level modules, and one level below `embed`,
/// whose engines are modules of their own; never `module` itself or its ancestors.
fn add_import(module: &str, mut path: Vec<String>, found: &mut BTreeSet<String>) {
    if path.is_empty() {
        return;
    }
    let depth = if path[0] == "embed" { 2 } else { 1 };
    path.truncate(depth);
    if path.len() == 2 && !module_exists(&path) {
        path.truncate(1);
    }
    let target = path.join("::");
    if target != module && !module.starts_with(&format!("{target}::")) {
        found.insert(target);
    }
}

fn parent(module: &str) -> Vec<String> {
    let mut parts: Vec<String> = module.split("::").map(String::from).collect();
    parts.pop();
    parts
}

fn module_exists(path: &[String]) -> bool {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let rel = path.join("/");
    src.join(format!("{rel}.rs")).exists() || src.join(&rel).join("mod.rs").exists()
}

/// The top-level modules `src/lib.rs` declares: the library, and nothing else.
fn library_modules() -> Vec<String> {
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs");
    std::fs::read_to_string(lib)
        .unwrap()
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("pub mod")
                .or(l.trim().strip_prefix("mod"))
        })
        .map(|m| m.trim().trim_end_matches(';').to_string())
        .collect()
}

/// Every library file with its module path.
fn library_files() -> Vec<(String, PathBuf)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = library_modules();
    rust_files(&src)
        .into_iter()
        .map(|file| (module_of(file.strip_prefix(&src).unwrap()), file))
        .filter(|(module, _)| modules.iter().any(|m| module.split("::").next() == Some(m)))
        .collect()
}

/// The import graph of the library's modules.
fn library_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut graph = BTreeMap::new();
    for (module, file) in library_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        graph
            .entry(module.clone())
            .or_insert_with(BTreeSet::new)
            .extend(imports(&module, &text));
    }
    graph
}

/// A cycle in `graph`, if there is one, as the list of modules around it.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            return Some(path[at..].to_vec());
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

fn layer(module: &str) -> Option<usize> {
    let top = module.split("::").next().unwrap();
    LAYERS.iter().position(|l| *l == top)
}

/// Every import that goes up or sideways in [`LAYERS`], or names an unplaced module.
fn violations(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut bad = Vec::new();
    for (module, targets) in graph {
        let Some(from) = layer(module) else {
            bad.push(format!("{module} is not placed in LAYERS"));
            continue;
        };
        for target in targets {
            let same_tree = module.split("::").next() == target.split("::").next();
            match layer(target) {
                Some(to) if to < from || same_tree => {}
                _ => bad.push(format!("{module} imports {target}")),
            }
        }
    }
    bad
}

#[test]
fn library_modules_import_only_downward_and_never_in_a_cycle() {
    let graph = library_graph();
    assert!(graph.len() > 20, "found {} modules", graph.len());
    assert_eq!(find_cycle(&graph), None);
    assert_eq!(violations(&graph), Vec::<String>::new());
}

#[test]
fn the_library_never_names_clap() {
    let modules = library_modules();
    assert!(modules.contains(&"pipeline".to_string()), "{modules:?}");
    for cli in ["cli", "commands"] {
        assert!(!modules.iter().any(|m| m == cli), "lib.rs declares {cli}");
    }
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs");
    let files = library_files().into_iter().map(|(_, f)| f);
    for file in files.chain([lib]) {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains("clap"), "{} names clap", file.display());
    }
}

#[test]
fn the_checks_catch_what_they_are_for() {
    let found = imports(
        "embed::amx",
        "use super::lanes::Lanes;\nuse crate::error::Result;\n// crate::report in a comment\n\
         fn f() { crate::embed::dot(); super::Embedder; crate::pipeline::Engine::load() }\n\
         #[cfg(test)]\nmod tests { crate::x }",
    );
    // Its own parent (`embed`) is not an import; the comment and the tests are skipped.
    let want: BTreeSet<String> = ["embed::lanes", "error", "pipeline"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(found, want);
    let grouped = imports(
        "embed::amx",
        "use crate::{\n    report::Format,\n    sink::{Sink, self},\n};\nuse super::super::taxonomy::X;",
    );
    let want: BTreeSet<String> = ["report", "sink", "taxonomy"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(grouped, want);

    let mut graph = BTreeMap::new();
    graph.insert(
        "classify".to_string(),
        BTreeSet::from(["fewshot".to_string()]),
    );
    graph.insert(
        "fewshot".to_string(),
        BTreeSet::from(["classify".to_string()]),
    );
    assert!(find_cycle(&graph).is_some());
    assert_eq!(violations(&graph), ["fewshot imports classify"]);
    graph.insert("newcomer".to_string(), BTreeSet::new());
    assert!(violations(&graph).contains(&"newcomer is not placed in LAYERS".to_string()));
}
