//! The shipped GSM8K data keeps training and evaluation apart by GSM-Symbolic template:
//! training rows come only from templates 0000–0069, evaluation rows (the GSM8K originals of
//! 0070–0099 and fresh variants of them) only from 0070–0099.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const FIRST_EVAL_TEMPLATE: u32 = 70;

fn data() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/data"))
}

fn rows(file: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(data().join(file)).unwrap();
    text.lines().enumerate().map(|(i, l)| serde_json::from_str(l).unwrap_or_else(|e| panic!("{file}:{}: {e}", i + 1))).collect()
}

/// GSM8K test index → template number, from the templates' `id_orig`.
fn template_of_original() -> BTreeMap<u64, u32> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(data().join("gsm_symbolic")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let id = text.lines().find_map(|l| l.strip_prefix("id_orig = ")).unwrap().trim().parse::<u64>().unwrap();
        let n = path.file_stem().unwrap().to_str().unwrap().parse::<u32>().unwrap();
        out.insert(id, n);
    }
    out
}

fn template(row: &serde_json::Value, originals: &BTreeMap<u64, u32>) -> u32 {
    if let Some(t) = row["template"].as_str() {
        return t.parse().unwrap();
    }
    let id = row["id"].as_str().unwrap();
    let index: u64 = id.strip_prefix("gsm8k-test-").unwrap_or_else(|| panic!("{id}: no template field")).parse().unwrap();
    originals[&index]
}

#[test]
fn no_training_row_comes_from_an_evaluation_template() {
    let originals = template_of_original();
    assert_eq!(originals.len(), 100);
    let train = rows("gsm_symbolic_train.jsonl");
    let eval = rows("gsm_symbolic_eval.jsonl");
    assert!(train.len() >= 250, "{} training rows", train.len());
    assert!(eval.len() >= 100, "{} evaluation rows", eval.len());
    for r in &train {
        let t = template(r, &originals);
        assert!(t < FIRST_EVAL_TEMPLATE, "training row {} comes from evaluation template {t:04}", r["id"]);
    }
    let eval_templates: BTreeSet<u32> = eval.iter().map(|r| template(r, &originals)).collect();
    assert!(eval_templates.iter().all(|&t| t >= FIRST_EVAL_TEMPLATE), "{eval_templates:?}");
    assert!(eval_templates.len() >= 29, "evaluation covers {} templates", eval_templates.len());
    // Every evaluation template's GSM8K original is in the evaluation file.
    let eval_ids: BTreeSet<&str> = eval.iter().map(|r| r["id"].as_str().unwrap()).collect();
    for (index, t) in &originals {
        if *t >= FIRST_EVAL_TEMPLATE {
            assert!(eval_ids.contains(format!("gsm8k-test-{index}").as_str()), "template {t:04}'s original is missing");
        }
    }
    let questions: BTreeSet<&str> = eval.iter().map(|r| r["question"].as_str().unwrap()).collect();
    assert_eq!(questions.len(), eval.len(), "duplicate evaluation questions");
    assert!(train.iter().all(|r| !questions.contains(r["question"].as_str().unwrap())));
    let ids: BTreeSet<&str> = train.iter().chain(&eval).map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), train.len() + eval.len(), "ids are unique across both files");
}

#[test]
fn gsm8k_originals_in_the_eval_file_match_the_shipped_test_problems() {
    let test: BTreeMap<String, serde_json::Value> = rows("gsm8k_test_100.jsonl").into_iter().map(|r| (r["id"].as_str().unwrap().to_string(), r)).collect();
    let mut seen = 0;
    for r in rows("gsm_symbolic_eval.jsonl").iter().filter(|r| r["id"].as_str().unwrap().starts_with("gsm8k-test-")) {
        let t = &test[r["id"].as_str().unwrap()];
        assert_eq!(r["question"], t["question"], "{}", r["id"]);
        assert_eq!(r["answer"], t["answer"], "{}", r["id"]);
        seen += 1;
    }
    assert_eq!(seen, 30);
}
