//! The layering of ARCHITECTURE.md, enforced: a module of wst-sdk names (`crate::x`) only
//! modules of lower layers. Doc comments are skipped (a doc link may point anywhere).

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

/// The `crate::<module>` names in Rust source, outside comments.
fn named_modules(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in src.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + 7..];
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
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
        for used in named_modules(&std::fs::read_to_string(f).unwrap()) {
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
    assert_eq!(named_modules("use crate::config::X; // crate::train"), ["config"]);
    assert_eq!(named_modules("/// [`crate::backend::Backends`]"), Vec::<String>::new());
    assert_eq!(named_modules("let a = crate::types::mix(&[crate::types::hash_str(s)]);"), ["types", "types"]);
}
