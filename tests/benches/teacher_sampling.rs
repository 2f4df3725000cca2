//! Teacher sampling against llama.cpp on the same weights (issue 27, goal 4): SmolLM2-135M-
//! Instruct in f32, G = 8 rows of up to 128 tokens at temperature 1, the same threads, in one
//! process. wst's Teacher samples from the catalog's Q4_1 GGUF dequantized to f32; llama.cpp
//! (through the llama.cpp Student, continuous batching, the same engine llama-cpp-python wraps)
//! gets that f32 model written as a GGUF, so both sides multiply the very same numbers.
//!
//! Usage: cargo bench -p wst-tests --bench teacher_sampling
//! Env: WST_BENCH_THREADS (default 2: the machine's cores), WST_BENCH_TOKENS (default 128),
//! WST_BENCH_ROUNDS (default 3: each side alternately, after one warm-up each), WST_BENCH_PROMPTS
//! (default 1, at most 4: distinct problems, each with G rows, as a training step of several
//! prompts samples them), WST_BENCH_G (default 8: rows per problem).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use candle_core::Device;
use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
use wst_llamacpp::{LlamaCppConfig, LlamaCppStudent};
use wst_sdk::teacher::{LmTeacher, TeacherOptions};
use wst_sdk::{ChatMessage, Query, SamplingParams, Student, StudentRequest, Teacher, TeacherSampling};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Writes `src` with every tensor dequantized to f32 (`general.file_type` 0: all f32).
fn write_f32_gguf(src: &Path, dst: &Path) {
    let mut file = std::fs::File::open(src).unwrap();
    let content = gguf_file::Content::read(&mut file).unwrap();
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    for name in content.tensor_infos.keys() {
        let q = content.tensor(&mut file, name, &Device::Cpu).unwrap();
        let f = QTensor::quantize(&q.dequantize(&Device::Cpu).unwrap(), GgmlDType::F32).unwrap();
        tensors.push((name.clone(), f));
    }
    let mut metadata = content.metadata.clone();
    metadata.insert("general.file_type".into(), gguf_file::Value::U32(0));
    let metadata: Vec<(&str, &gguf_file::Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut out = std::fs::File::create(dst).unwrap();
    gguf_file::write(&mut out, &metadata, &tensors).unwrap();
}

fn main() {
    wst_sdk::alloc::keep_freed_memory();
    let Some(gguf) = wst_tests::smollm2_gguf() else { return };
    let threads = wst_tests::env_or::<usize>("WST_BENCH_THREADS", 2);
    let max_tokens = wst_tests::env_or::<usize>("WST_BENCH_TOKENS", 128);
    let rounds = wst_tests::env_or::<usize>("WST_BENCH_ROUNDS", 3);
    let g = wst_tests::env_or::<usize>("WST_BENCH_G", 8).max(1);
    let prompts = wst_tests::env_or::<usize>("WST_BENCH_PROMPTS", 1).clamp(1, wst_tests::GSM8K_PROBLEMS.len());
    let dir = tempfile::tempdir().unwrap();
    let f32_gguf = dir.path().join("smollm2-135m-instruct-f32.gguf");
    write_f32_gguf(&gguf, &f32_gguf);

    let opts = TeacherOptions { teacher: wst_tests::f32_teacher(), ..Default::default() };
    let mut teacher = LmTeacher::load(&gguf.display().to_string(), opts).unwrap();
    let query: Vec<Query> = wst_tests::GSM8K_PROBLEMS[..prompts].iter().enumerate().map(|(i, p)| Query::new(i.to_string(), *p)).collect();
    let sampling = |seed| TeacherSampling { num_generations: g, temperature: 1.0, top_p: 1.0, top_k: None, max_completion_length: max_tokens, seed, ..Default::default() };
    let mut teacher_round = |seed| {
        let start = Instant::now();
        let groups = teacher.sample(&query, &sampling(seed)).unwrap();
        let tokens: usize = groups.iter().flatten().map(|s| s.completion_ids.len()).sum();
        (tokens as u64, start.elapsed().as_secs_f64())
    };

    let cfg = LlamaCppConfig { n_threads: threads, n_ctx: (512 * g * prompts) as u32, max_sequences: g * prompts, ..Default::default() };
    let student = Arc::new(LlamaCppStudent::load(&f32_gguf, &cfg).unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // The Teacher's own prompt would do as well; what matters is G rows decoding together.
    let request = |problem: &str, seed| StudentRequest {
        messages: vec![ChatMessage::user(format!("Write short, numbered hints for solving this problem, without solving it:\n{problem}"))],
        n: g,
        params: SamplingParams { temperature: 1.0, top_p: 1.0, max_tokens, seed: Some(seed), ..Default::default() },
    };
    let llama_round = |seed| {
        runtime.block_on(async {
            let start = Instant::now();
            // One request per prompt, all at once: the Student batches their rows together.
            let requests: Vec<StudentRequest> = wst_tests::GSM8K_PROBLEMS[..prompts].iter().map(|p| request(p, seed)).collect();
            let answers = futures::future::join_all(requests.iter().map(|r| student.generate(r))).await;
            (answers.into_iter().flat_map(Result::unwrap).map(|a| a.usage.completion_tokens).sum::<u64>(), start.elapsed().as_secs_f64())
        })
    };

    teacher_round(100);
    llama_round(100);
    let (mut wst, mut llama) = ((0u64, 0.0f64), (0u64, 0.0f64));
    for round in 0..rounds as u64 {
        let (t, s) = teacher_round(round);
        println!("round {round}: wst Teacher {t} tokens in {s:.2} s = {:.1} tok/s", t as f64 / s);
        wst = (wst.0 + t, wst.1 + s);
        let (t, s) = llama_round(round);
        println!("round {round}: llama.cpp   {t} tokens in {s:.2} s = {:.1} tok/s", t as f64 / s);
        llama = (llama.0 + t, llama.1 + s);
    }
    let (rate_wst, rate_llama) = (wst.0 as f64 / wst.1, llama.0 as f64 / llama.1);
    println!(
        "{}",
        serde_json::json!({
            "model": "SmolLM2-135M-Instruct f32", "prompts": prompts, "rows": g * prompts, "max_tokens": max_tokens, "threads": threads, "rounds": rounds,
            "wst_teacher_tokens_per_s": (rate_wst * 10.0).round() / 10.0,
            "llamacpp_tokens_per_s": (rate_llama * 10.0).round() / 10.0,
            "wst_over_llamacpp": (rate_wst / rate_llama * 100.0).round() / 100.0,
        })
    );
}
