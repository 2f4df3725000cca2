//! Student benchmarks (run by `bench/students.sh`, which also runs the Python peers in the
//! same run): llama.cpp backend decode tokens/s (one answer per request, and 4 parallel
//! answers in one batch), and the HTTP backend's overhead per request over a raw POST.
//!
//! Usage: cargo bench --profile dev -p wst-tests --bench student_throughput -- GGUF [BASE_URL]
//! (dependencies, llama.cpp included, are optimised in the dev profile).

use std::time::Instant;

use wst_llamacpp::LlamaCppStudent;
use wst_openai::OpenAiStudent;
use wst_sdk::config::{LlamaCppConfig, OpenAiConfig};
use wst_sdk::{ChatMessage, SamplingParams, Student, StudentRequest};

fn request(n: usize, max_tokens: usize, seed: u64) -> StudentRequest {
    StudentRequest {
        messages: vec![ChatMessage::user("Write a long story about a robot who learns to paint.")],
        n,
        params: SamplingParams { temperature: 0.8, max_tokens, seed: Some(seed), ..Default::default() },
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let gguf = args.first().expect("usage: student_throughput GGUF [BASE_URL]");
    let s = LlamaCppStudent::load(gguf, &LlamaCppConfig { n_threads: 1, n_ctx: 2048, ..Default::default() }).unwrap();
    // Warm-up.
    s.generate(&request(1, 8, 0)).await.unwrap();
    for (n, reps) in [(1usize, 3u64), (4, 2)] {
        let t0 = Instant::now();
        let mut tokens = 0;
        for r in 0..reps {
            for a in s.generate(&request(n, 128, 10 + r)).await.unwrap() {
                tokens += a.usage.completion_tokens;
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        println!("llamacpp-rs n={n}: {tokens} tokens in {secs:.2} s = {:.1} tok/s", tokens as f64 / secs);
    }
    let Some(url) = args.get(1) else { return };
    let cfg = OpenAiConfig { base_urls: vec![url.clone()], api_key_env: None, ..Default::default() };
    let http = OpenAiStudent::new("SmolLM2-135M-Instruct", &cfg).unwrap();
    let client = reqwest::Client::new();
    let body = serde_json::json!({"model": "SmolLM2-135M-Instruct", "messages": [{"role": "user", "content": "Say hi."}], "n": 1,
                                  "temperature": 0.0, "top_p": 1.0, "max_tokens": 1, "seed": 1});
    let reps = 20;
    let (mut raw, mut ours) = (0.0, 0.0);
    for i in 0..reps {
        // Interleaved so drift in the server hits both equally.
        let t = Instant::now();
        let r = client.post(format!("{url}/chat/completions")).json(&body).send().await.unwrap();
        let _: serde_json::Value = r.json().await.unwrap();
        let dt_raw = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let req = StudentRequest {
            messages: vec![ChatMessage::user("Say hi.")],
            n: 1,
            params: SamplingParams { temperature: 0.0, top_p: 1.0, max_tokens: 1, seed: Some(1), ..Default::default() },
        };
        http.generate(&req).await.unwrap();
        let dt_ours = t.elapsed().as_secs_f64();
        if i > 0 {
            raw += dt_raw;
            ours += dt_ours;
        }
    }
    let n = (reps - 1) as f64;
    println!("http raw POST: {:.2} ms/request; OpenAiStudent: {:.2} ms/request; overhead {:+.2} ms ({:+.1}%)",
        raw / n * 1e3, ours / n * 1e3, (ours - raw) / n * 1e3, (ours / raw - 1.0) * 100.0);
}
