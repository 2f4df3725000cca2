//! The candle Student on tiny models the test writes: a quantized GGUF and safetensors folders
//! (llama and qwen2). Its greedy answers agree with llama.cpp's on the same GGUF.

use wst_candle::CandleStudent;
use wst_llamacpp::LlamaCppStudent;
use wst_sdk::{ChatMessage, SamplingParams, Student, StudentRequest};
use wst_tests::tiny::{Arch, write_gguf, write_model};

fn request(n: usize, temperature: f64, seed: u64) -> StudentRequest {
    StudentRequest { messages: vec![ChatMessage::user("hello world")], n, params: SamplingParams { temperature, seed: Some(seed), max_tokens: 8, ..Default::default() } }
}

fn texts(a: &[wst_sdk::StudentSample]) -> Vec<String> {
    a.iter().map(|s| s.text.clone()).collect()
}

#[tokio::test]
async fn gguf_and_safetensors_agree_with_llama_cpp_greedily() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), Arch::Llama, 21);
    let gguf = write_gguf(dir.path());
    let from_gguf = CandleStudent::load(gguf.to_str().unwrap(), &Default::default()).unwrap();
    let from_folder = CandleStudent::load(dir.path().to_str().unwrap(), &Default::default()).unwrap();
    let llama_cpp = LlamaCppStudent::load(&gguf, &Default::default()).unwrap();
    let a = from_gguf.generate(&request(1, 0.0, 0)).await.unwrap();
    let b = from_folder.generate(&request(1, 0.0, 0)).await.unwrap();
    let c = llama_cpp.generate(&request(1, 0.0, 0)).await.unwrap();
    assert!(!a[0].text.is_empty());
    assert_eq!(a[0].text, b[0].text, "GGUF vs safetensors");
    assert_eq!(a[0].text, c[0].text, "candle vs llama.cpp");
}

#[tokio::test]
async fn seeded_answers_reproduce_on_qwen2() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), Arch::Qwen2, 5);
    let s = CandleStudent::load(dir.path().to_str().unwrap(), &Default::default()).unwrap();
    let a = s.generate(&request(3, 1.0, 9)).await.unwrap();
    assert_eq!(texts(&a), texts(&s.generate(&request(3, 1.0, 9)).await.unwrap()));
    let distinct: std::collections::HashSet<_> = texts(&a).into_iter().collect();
    assert!(distinct.len() > 1, "{a:?}");
    // Answer 1 of a seed-9 request is the answer of a one-answer request with seed 10.
    assert_eq!(a[1].text, s.generate(&request(1, 1.0, 10)).await.unwrap()[0].text);
    assert_eq!(s.usage().answers, 7);
}

#[test]
fn unsupported_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = CandleStudent::load(dir.path().join("x.gguf").to_str().unwrap(), &Default::default()).unwrap_err().to_string();
    assert!(err.contains("x.gguf"), "{err}");
    std::fs::write(dir.path().join("config.json"), r#"{"model_type": "mamba"}"#).unwrap();
    std::fs::write(dir.path().join("model.safetensors"), b"").unwrap();
    let err = CandleStudent::load(dir.path().to_str().unwrap(), &Default::default()).unwrap_err().to_string();
    assert!(err.contains("config.json") || err.contains("model.safetensors"), "{err}");
}
