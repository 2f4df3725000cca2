//! The layering of ARCHITECTURE.md, enforced: a module of wst-sdk names (`crate::x`) only
//! modules of lower layers. Doc comments are skipped (a doc link may point anywhere). And the
//! SDK's manifest keeps the backends' heavy crates out.

use std::collections::BTreeMap;
use std::path::Path;

/// ARCHITECTURE.md's table: module → layer.
fn layers() -> BTreeMap<&'static str, usize> {
    let table: [(&[&str], usize); 8] = [
        (&["error", "types", "alloc", "query", "instruction"], 0),
        (&["score", "template", "models"], 1),
        (&["student", "chat_template", "reward", "dataset", "grpo"], 2),
        (&["config"], 3),
        (&["teacher", "backend"], 4),
        (&["pipeline"], 5),
        (&["eval"], 6),
        (&["train"], 7),
    ];
    table.iter().flat_map(|(ms, l)| ms.iter().map(move |m| (*m, *l))).collect()
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

/// The first path segments of a `use`-style list after `prefix::`: `name` or the names in
/// `{a, b::c, d}` (nested braces skipped).
fn heads(rest: &str) -> Vec<String> {
    let ident = |s: &str| s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>();
    let Some(inner) = rest.strip_prefix('{') else {
        let name = ident(rest);
        return if name.is_empty() { Vec::new() } else { vec![name] };
    };
    let (mut out, mut depth, mut start) = (Vec::new(), 0usize, 0usize);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                out.push(ident(inner[start..i].trim_start()));
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(ident(inner[start..i].trim_start()));
                start = i + 1;
            }
            _ => {}
        }
    }
    out.retain(|n| !n.is_empty() && n != "self");
    out
}

/// The top-level modules named in Rust source outside comments: `crate::x`, `crate::{x, y}`,
/// and `super::super::x` where the `super`s climb from `depth` (the file's module depth: 1 for
/// `teacher.rs` or `teacher/mod.rs`, 2 for `teacher/lm/mod.rs`) to the crate root.
fn named_modules(src: &str, depth: usize) -> Vec<String> {
    let mut out = Vec::new();
    for line in src.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + 7..];
            out.extend(heads(rest));
        }
        let mut rest = code;
        while let Some(i) = rest.find("super::") {
            let preceded = code.len() - rest.len() + i;
            let mut ups = 0;
            let mut tail = &rest[i..];
            while let Some(t) = tail.strip_prefix("super::") {
                ups += 1;
                tail = t;
            }
            let is_word_start = preceded == 0 || !code[..preceded].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':');
            if is_word_start && ups >= depth {
                out.extend(heads(tail));
            }
            rest = tail;
        }
    }
    out
}

#[test]
fn the_scanner_sees_grouped_imports_and_super_chains() {
    assert_eq!(named_modules("use crate::{eval::Report, pipeline, teacher::{A, B}};", 1), ["eval", "pipeline", "teacher"]);
    assert_eq!(named_modules("use crate::train::log;\n// crate::ignored", 1), ["train"]);
    // From teacher/lm/save.rs (depth 3), three supers reach the root; two stay inside teacher.
    assert_eq!(named_modules("use super::super::super::train::X;", 3), ["train"]);
    assert!(named_modules("use super::super::model::Decoder;", 3).is_empty());
    assert_eq!(named_modules("use super::super::{eval, pipeline::P};", 2), ["eval", "pipeline"]);
}

#[test]
fn sdk_modules_use_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk/src");
    let layers = layers();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let first = rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        if first == "lib" {
            continue;
        }
        let Some(&own) = layers.get(first.as_str()) else {
            violations.push(format!("{}: module `{first}` is not in ARCHITECTURE.md's table", rel.display()));
            continue;
        };
        // The file's module depth: `x.rs` and `x/mod.rs` are 1, `x/y.rs` and `x/y/mod.rs` are 2.
        let parts = rel.components().count();
        let depth = if rel.file_name().is_some_and(|n| n == "mod.rs") { parts - 1 } else { parts };
        for used in named_modules(&std::fs::read_to_string(f).unwrap(), depth) {
            if used == first {
                continue;
            }
            match layers.get(used.as_str()) {
                Some(&l) if l < own => {}
                Some(&l) => violations.push(format!("{}: `{first}` (layer {own}) uses `crate::{used}` (layer {l})", rel.display())),
                None => violations.push(format!("{}: uses `crate::{used}`, which is not in the table", rel.display())),
            }
        }
    }
    assert!(violations.is_empty(), "layering violations:\n{}", violations.join("\n"));
}

#[test]
fn the_checker_sees_uses_and_skips_comments() {
    assert_eq!(named_modules("use crate::config::X; // crate::train", 1), ["config"]);
    assert_eq!(named_modules("/// [`crate::backend::Backends`]", 1), Vec::<String>::new());
    assert_eq!(named_modules("let a = crate::types::mix(&[crate::types::hash_str(s)]);", 1), ["types", "types"]);
}

/// The names in a manifest's `[dependencies]` table.
fn dependencies(manifest: &str) -> Vec<String> {
    let mut in_table = false;
    let mut names = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_table = line == "[dependencies]";
        } else if in_table
            && !line.starts_with('#')
            && let Some((name, _)) = line.split_once('=')
        {
            names.push(name.trim().trim_end_matches(".workspace").to_string());
        }
    }
    names
}

/// An app that embeds the SDK with its own Student compiles none of a backend's heavy crates
/// (candle-transformers alone is ~110 CPU-s of a clean build): they belong to the backends.
#[test]
fn the_sdk_does_not_compile_what_only_a_backend_uses() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let sdk = dependencies(&std::fs::read_to_string(root.join("sdk/Cargo.toml")).unwrap());
    assert!(sdk.iter().any(|d| d == "candle-core"), "the parser reads the table: {sdk:?}");
    for backend_only in ["candle-transformers", "llama-cpp-2", "llama-cpp-sys-2", "reqwest", "axum"] {
        assert!(!sdk.iter().any(|d| d == backend_only), "wst-sdk depends on {backend_only}, which only a backend uses");
    }
    let candle = dependencies(&std::fs::read_to_string(root.join("backends/candle/Cargo.toml")).unwrap());
    assert!(candle.iter().any(|d| d == "candle-transformers"), "{candle:?}");
}
