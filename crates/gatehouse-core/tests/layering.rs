//! Dependencies inside gatehouse-core point one way: every module has a layer, and a module
//! may name (`crate::…`) only modules of a lower layer, or itself. The table below is the
//! architecture (ARCHITECTURE.md, "Layers"); this test reads every source file and fails on
//! any `crate::` path that reaches up or sideways, naming the file and line.
//!
//! Test code (`#[cfg(test)]` modules and `tests.rs` files) and comments are not checked.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use std::collections::BTreeSet;
use std::path::Path;

/// Layers, lowest first. A module path is placed by its longest prefix in this table.
const LAYERS: &[&[&str]] = &[
    // The vocabulary: names, digests, findings, the wire types, the parsing of config files.
    &["digest", "layout"],
    &["waiver", "record", "config::parse", "config::env"],
    &["report"],
    &["contract"],
    // The store, and what observes it.
    &["store"],
    &["audit", "resume"],
    // What to read and how.
    &["registry"],
    &["source", "privacy"],
    // The stages, in pipeline order where one uses another.
    &["coverage", "suggest", "doctor", "build", "html"],
    &["gates", "qa", "consume"],
    &["croissant"],
    &["publish"],
    // Resolution of every setting, then the orchestrator.
    &["config"],
    &["release"],
    &["fuzz"],
];

fn layer(path: &str) -> Option<(usize, &'static str)> {
    let mut best: Option<(usize, &'static str)> = None;
    for (i, names) in LAYERS.iter().enumerate() {
        for name in names.iter() {
            let matches = path == *name || path.starts_with(&format!("{name}::"));
            if matches && best.is_none_or(|(_, b)| name.len() > b.len()) {
                best = Some((i, name));
            }
        }
    }
    best
}

/// `a/b.rs` → `a::b`, `a/mod.rs` → `a`, `lib.rs` → ``.
fn module_of(rel: &Path) -> String {
    let s = rel.with_extension("").to_string_lossy().replace('\\', "/");
    let s = s.strip_suffix("/mod").unwrap_or(&s);
    s.replace('/', "::")
}

/// Code without comments and without the `#[cfg(test)]` module at the end of a file.
fn code(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") {
            break;
        }
        if t.starts_with("//") {
            continue;
        }
        let line = line.split(" //").next().unwrap_or(line);
        out.push((i + 1, line.to_string()));
    }
    out
}

/// Every module path named after `crate::`, with grouped imports (`crate::{a, b::c}`) split.
fn named(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let item = item.trim();
                if !item.is_empty() {
                    out.push(path_part(item));
                }
            }
        } else {
            out.push(path_part(rest));
        }
    }
    out
}

fn path_part(s: &str) -> String {
    s.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .next()
        .unwrap_or("")
        .trim_end_matches(':')
        .to_string()
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_module_imports_a_higher_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut problems = BTreeSet::new();
    let mut unplaced = BTreeSet::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        if rel.file_name().is_some_and(|n| n == "tests.rs") || rel == Path::new("lib.rs") {
            continue;
        }
        let from = module_of(rel);
        let Some((from_layer, from_name)) = layer(&from) else {
            unplaced.insert(from.clone());
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (line_no, line) in code(&text) {
            for to in named(&line) {
                let top = to.split("::").next().unwrap_or("");
                if top.is_empty() || top.chars().next().is_some_and(char::is_uppercase) {
                    continue; // an item re-exported at the crate root
                }
                let Some((to_layer, to_name)) = layer(&to) else {
                    unplaced.insert(to.clone());
                    continue;
                };
                if to_name == from_name {
                    continue;
                }
                if to_layer >= from_layer {
                    problems.insert(format!(
                        "src/{}:{line_no}: {from} (layer {from_layer}) names crate::{to} (layer {to_layer})",
                        rel.display()
                    ));
                }
            }
        }
    }
    assert!(
        unplaced.is_empty(),
        "modules missing from the layer table: {unplaced:?}"
    );
    assert!(
        problems.is_empty(),
        "dependencies must point down the layers (tests/layering.rs):\n{}",
        problems.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn the_checker_sees_grouped_and_nested_paths() {
    assert_eq!(
        named("use crate::{audit::Event, store};"),
        ["audit::Event", "store"]
    );
    assert_eq!(
        named("let x = crate::build::split::Split::Train;"),
        ["build::split::Split::Train"]
    );
    assert_eq!(layer("config::parse::line_col").unwrap().1, "config::parse");
    assert_eq!(layer("config").unwrap().1, "config");
    assert!(layer("store::list").unwrap().0 < layer("audit").unwrap().0);
}
