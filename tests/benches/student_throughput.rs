//! Student benchmarks (run by `bench/students.sh`, which also runs llama-cpp-python in the same
//! run): llama.cpp backend decode tokens/s for 1, 4 and 16 concurrent answers (16 = four
//! requests of four answers, as a training step sends them), with continuous batching
//! (`max_sequences` 16) and as before it (`max_sequences` 4: one request's answers at a time);
//! optionally the HTTP backend's overhead per request over a raw POST.
//!
//! Usage: cargo bench --profile dev -p wst-tests --bench student_throughput -- GGUF [BASE_URL]
//! Env: WST_BENCH_THREADS (default 2), WST_BENCH_TOKENS (default 128), WST_BENCH_WIDE (also
//! 32 and 64 concurrent answers with `max_sequences` 64), WST_BENCH_LONG (also few-shot-sized
//! prompts of ~700 tokens: 16 answers three waves in a row, and 12 distinct prompts of four
//! answers of unequal lengths queued at once, as the evaluation's CoT few-shot row sends them;
//! per-answer KV streams against one unified cache, with and without flash attention),
//! WST_BENCH_FILTER (only the rows whose label contains it).

use std::sync::Arc;
use std::time::Instant;

use wst_llamacpp::LlamaCppConfig;
use wst_llamacpp::LlamaCppStudent;
use wst_openai::OpenAiConfig;
use wst_openai::OpenAiStudent;
use wst_sdk::{ChatMessage, SamplingParams, Student, StudentRequest};

const PROMPTS: [&str; 4] = [
    "Write a long story about a robot who learns to paint.",
    "Explain, step by step, how a bicycle stays upright.",
    "Describe a day in the life of a lighthouse keeper.",
    "Write a letter from a cat to its owner about breakfast.",
];

/// A few-shot-sized preamble (~700 tokens) put before each prompt by the long-prompt rows.
fn preamble() -> String {
    let example = "Problem: A baker sells 12 loaves a day at 3 dollars each and spends 10 dollars a day on flour. \
                   How much does she earn in a week?\nSolution: She sells 12 * 3 = 36 dollars a day. She keeps \
                   36 - 10 = 26 dollars a day. In a week she earns 26 * 7 = 182 dollars. The answer is 182.\n\n";
    example.repeat(8)
}

fn request(prompt: &str, n: usize, max_tokens: usize, seed: u64) -> StudentRequest {
    StudentRequest { messages: vec![ChatMessage::user(prompt)], n, params: SamplingParams { temperature: 0.8, max_tokens, seed: Some(seed), ..Default::default() } }
}

/// How a row loads the Student.
enum Load {
    /// Runs of this many concurrent answers, one after another.
    Answers(Vec<usize>),
    /// This many distinct four-answer requests sent at once.
    Queued(usize),
}

/// Sends `requests` together; returns their completion tokens and the seconds until the last
/// answer.
async fn decode_all(s: &Arc<LlamaCppStudent>, requests: Vec<StudentRequest>) -> (u64, f64) {
    let t0 = Instant::now();
    let jobs: Vec<_> = requests
        .into_iter()
        .map(|r| {
            let s = s.clone();
            tokio::spawn(async move { s.generate(&r).await.unwrap() })
        })
        .collect();
    let mut tokens = 0;
    for j in jobs {
        tokens += j.await.unwrap().iter().map(|a| a.usage.completion_tokens).sum::<u64>();
    }
    (tokens, t0.elapsed().as_secs_f64())
}

/// `requests` distinct prompts of four answers sent together, request i writing up to between
/// half and all of `max_tokens`, so they end at different times.
async fn queued(s: &Arc<LlamaCppStudent>, requests: usize, max_tokens: usize, prefix: &str) -> (u64, f64) {
    let reqs = (0..requests)
        .map(|i| {
            let limit = max_tokens / 2 + (i * 29) % (max_tokens / 2 + 1);
            request(&format!("{prefix}Task {i}: {}", PROMPTS[i % PROMPTS.len()]), 4, limit, 10 + i as u64)
        })
        .collect();
    decode_all(s, reqs).await
}

/// `answers` concurrent answers: one request of `answers` answers when there are at most
/// four, else four-answer requests sent together.
async fn rate(s: &Arc<LlamaCppStudent>, answers: usize, max_tokens: usize, prefix: &str) -> (u64, f64) {
    let per = answers.min(4);
    let reqs = (0..answers / per).map(|i| request(&format!("{prefix}{}", PROMPTS[i % PROMPTS.len()]), per, max_tokens, 10 + i as u64)).collect();
    decode_all(s, reqs).await
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let gguf = args.first().expect("usage: student_throughput GGUF [BASE_URL]");
    let threads = wst_tests::env_or::<usize>("WST_BENCH_THREADS", 2);
    let max_tokens = wst_tests::env_or::<usize>("WST_BENCH_TOKENS", 128);
    let long = preamble();
    // (label, max_sequences, flash attention, unified KV, concurrent answers per run or
    // queued requests, preamble)
    let mut setups = vec![
        ("one request at a time (max_sequences 4)", 4, false, false, Load::Answers(vec![16]), ""),
        ("continuous batching (max_sequences 16)", 16, false, false, Load::Answers(vec![1, 4, 16]), ""),
        ("continuous batching, unified KV (max_sequences 16)", 16, false, true, Load::Answers(vec![1, 4, 16]), ""),
        ("continuous batching + flash attention (max_sequences 16)", 16, true, false, Load::Answers(vec![1, 4, 16]), ""),
    ];
    if std::env::var("WST_BENCH_WIDE").is_ok() {
        setups.push(("continuous batching (max_sequences 64)", 64, false, false, Load::Answers(vec![16, 32, 64]), ""));
    }
    if std::env::var("WST_BENCH_LONG").is_ok() {
        for (kv, unified) in [("per-answer KV", false), ("unified KV", true)] {
            for (fa, flash) in [("", false), (" + flash attention", true)] {
                let waves = format!("long prompts, continuous batching{fa}, {kv} (max_sequences 16)");
                let queue = format!("12 queued few-shot requests, continuous batching{fa}, {kv} (max_sequences 16)");
                setups.push((waves.leak(), 16, flash, unified, Load::Answers(vec![16, 16, 16]), long.as_str()));
                setups.push((queue.leak(), 16, flash, unified, Load::Queued(12), long.as_str()));
            }
        }
    }
    let filter = std::env::var("WST_BENCH_FILTER").unwrap_or_default();
    for (label, max_sequences, flash_attention, kv_unified, load, prefix) in setups {
        if !label.contains(&filter) {
            continue;
        }
        let cfg = LlamaCppConfig { n_threads: threads, n_ctx: 16384, max_sequences, flash_attention, kv_unified, ..Default::default() };
        let s = Arc::new(LlamaCppStudent::load(gguf, &cfg).unwrap());
        s.generate(&request(PROMPTS[0], 1, 8, 0)).await.unwrap();
        match load {
            Load::Answers(counts) => {
                for answers in counts {
                    let (tokens, secs) = rate(&s, answers, max_tokens, prefix).await;
                    println!("llamacpp-rs {label}, {answers} concurrent answers: {tokens} tokens in {secs:.2} s = {:.1} tok/s", tokens as f64 / secs);
                }
            }
            Load::Queued(requests) => {
                let (tokens, secs) = queued(&s, requests, max_tokens, prefix).await;
                println!("llamacpp-rs {label}, {requests} requests x 4 answers: {tokens} tokens in {secs:.2} s = {:.1} tok/s", tokens as f64 / secs);
            }
        }
    }
    let Some(url) = args.get(1) else { return };
    let cfg = OpenAiConfig { base_urls: vec![url.clone()], api_key_env: None, ..Default::default() };
    let http = OpenAiStudent::new("bench-model", &cfg).unwrap();
    let client = wst_tests::http();
    let body = serde_json::json!({"model": "bench-model", "messages": [{"role": "user", "content": "Say hi."}], "n": 1,
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
    println!(
        "http raw POST: {:.2} ms/request; OpenAiStudent: {:.2} ms/request; overhead {:+.2} ms ({:+.1}%)",
        raw / n * 1e3,
        ours / n * 1e3,
        (ours - raw) / n * 1e3,
        (ours / raw - 1.0) * 100.0
    );
}
