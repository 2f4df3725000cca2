//! A fuzz pass (proptest) over the parsers that read user files: the run configuration (TOML),
//! dataset rows (JSONL), and GGUF metadata (the Teacher's loader). Every input must give a
//! value or an error, never a panic. Each property's input count is printed.

use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use wst_sdk::config::WstConfig;
use wst_sdk::dataset::{DataTask, DatasetConfig, FieldMap, parse_queries};
use wst_sdk::teacher::model::gguf::load_gguf;

const VALID: &str = r#"
[teacher]
model = "smollm2-135m-instruct"
[teacher.lora]
r = 8
[student]
spec = "llamacpp:qwen2.5-coder-0.5b-instruct"
[student.sampling]
temperature = 0.7
max_tokens = 320
[[rewards]]
plugin = "math"
[grpo]
num_generations = 4
per_device_train_batch_size = 8
learning_rate = 1e-4
[wst]
student_samples = 4
[output]
output_dir = "out"
"#;

static CONFIGS: AtomicUsize = AtomicUsize::new(0);
static ROWS: AtomicUsize = AtomicUsize::new(0);
static GGUFS: AtomicUsize = AtomicUsize::new(0);

/// TOML-ish fragments that hit the parser's corners: types, tables, arrays, odd numbers.
fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v:?}")),
        Just("nan".to_string()),
        Just("-inf".to_string()),
        Just("1e400".to_string()),
        "\"[^\"\\\\]{0,12}\"".prop_map(|s| s),
        Just("[1, \"a\", {x = 1}]".to_string()),
        Just("{ r = 0 }".to_string()),
        Just("true".to_string()),
        Just("18446744073709551616".to_string()),
        "[ -~]{0,10}".prop_map(|s| s),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, failure_persistence: None, ..ProptestConfig::default() })]

    /// Arbitrary text, and the valid file with one value replaced by an arbitrary one.
    #[test]
    fn config_parsing_never_panics(noise in "\\PC{0,200}", line in 0usize..40, value in toml_value()) {
        CONFIGS.fetch_add(2, Ordering::Relaxed);
        let _ = WstConfig::from_toml_str(&noise, "fuzz.toml");
        let lines: Vec<&str> = VALID.lines().collect();
        let mut mutated = String::new();
        for (i, l) in lines.iter().enumerate() {
            if i == line % lines.len() && l.contains('=') {
                let key = l.split('=').next().unwrap_or("");
                mutated.push_str(&format!("{key}= {value}\n"));
            } else {
                mutated.push_str(l);
                mutated.push('\n');
            }
        }
        let _ = WstConfig::from_toml_str(&mutated, "fuzz.toml");
    }

    /// JSONL rows with arbitrary shapes and types in the mapped fields, for every task.
    #[test]
    fn dataset_rows_never_panic(rows in prop::collection::vec(json_value(3), 0..6), garbage in "\\PC{0,80}", task in 0usize..3) {
        ROWS.fetch_add(rows.len() + 1, Ordering::Relaxed);
        let task = [DataTask::Gsm8k, DataTask::Math, DataTask::HhRlhf][task];
        let cfg = DatasetConfig {
            fields: FieldMap { query: "question".into(), gold: Some("answer".into()), id: Some("id".into()), metadata: vec!["solution".into()] },
            task,
            ..Default::default()
        };
        let mut text: String = rows.iter().map(|r| format!("{r}\n")).collect();
        let _ = parse_queries(&text, &cfg);
        text.push_str(&garbage);
        let _ = parse_queries(&text, &cfg);
    }
}

/// JSON values up to `depth` levels, biased towards the fields the loader reads.
fn json_value(depth: u32) -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map(serde_json::Value::Number).unwrap_or(serde_json::Value::Null)),
        "\\PC{0,30}".prop_map(serde_json::Value::from),
        Just(serde_json::Value::from("#### 42")),
        Just(serde_json::Value::from("\n\nHuman: hi\n\nAssistant:")),
    ];
    leaf.prop_recursive(depth, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![Just("question".to_string()), Just("answer".to_string()), Just("id".to_string()), Just("solution".to_string()), "[a-z]{1,6}"],
                inner,
                0..5
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Mutated copies of a tiny valid GGUF: flipped bytes, a 64-bit field overwritten with an
/// extreme value, truncation. The loader must answer each with a model or an error.
#[test]
fn gguf_metadata_parsing_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    wst_tests::tiny::write_model(dir.path(), wst_tests::tiny::Arch::Llama, 3);
    let gguf = wst_tests::tiny::write_gguf(dir.path());
    let bytes = std::fs::read(&gguf).unwrap();
    // The header, metadata and tensor directory are where the parser decides lengths.
    let header = bytes.len().min(64 * 1024);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() });
    let strategy = (0usize..header, any::<u8>(), 0usize..header, prop_oneof![Just(u64::MAX), Just(0u64), Just(1u64 << 40), any::<u64>()], 0usize..3, 0usize..bytes.len());
    let errors = AtomicUsize::new(0);
    runner
        .run(&strategy, |(flip_at, flip, field_at, field, how, cut)| {
            GGUFS.fetch_add(1, Ordering::Relaxed);
            let mut b = bytes.clone();
            match how {
                0 => b[flip_at] ^= flip.max(1),
                1 => {
                    let at = field_at.min(b.len() - 8);
                    b[at..at + 8].copy_from_slice(&field.to_le_bytes());
                }
                _ => b.truncate(cut),
            }
            let path = dir.path().join("mutated.gguf");
            std::fs::write(&path, &b).unwrap();
            if load_gguf(&path, candle_core::DType::F32, &candle_core::Device::Cpu).is_err() {
                errors.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        })
        .unwrap();
    let (tried, rejected) = (GGUFS.load(Ordering::Relaxed), errors.load(Ordering::Relaxed));
    eprintln!("GGUF fuzz: {tried} mutated files, {rejected} rejected with an error, none panicked");
    // A third of the cases cut the file short: a parser that accepted those would be wrong.
    assert!(rejected >= tried / 10, "only {rejected} of {tried} mutated files were rejected");
    eprintln!("config fuzz so far: {} inputs; dataset fuzz: {} rows", CONFIGS.load(Ordering::Relaxed), ROWS.load(Ordering::Relaxed));
}
