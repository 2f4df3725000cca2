//! Teacher throughput on SmolLM2-135M-Instruct (f32, CPU): sampling tokens/s for G = 8
//! completions of up to 128 tokens for 4 prompts, and one GRPO step (β = 0.04, so the reference
//! model runs too) over those 32 completions, with the process's peak memory.
//! Usage: cargo bench -p wst-tests --bench teacher_grpo -- full|lora
//! (`WST_BENCH_MODEL=DIR` loads a Hugging Face folder instead of the GGUF, e.g. the one
//! `bench/trl_compare.sh` gives TRL, so both sides start from the same weights. For quick
//! profiling only: `WST_BENCH_PROMPTS` (1–4), `WST_BENCH_TOKENS` and `WST_BENCH_SAMPLE_ONLY=1`.)
//! The scaling sweep (`bench/scaling.sh`) also sets `WST_BENCH_G` (completions per prompt),
//! `WST_BENCH_BETA` and `WST_BENCH_EXACT=1`: every completion is then made exactly
//! `WST_BENCH_TOKENS` long before the step (cut, or extended with its own tokens; EOS dropped),
//! as TRL's side is with `min_new_tokens`, so the step's cost is measured at a known length.

use std::time::Instant;

/// The allocator the `wst` binary uses, tuned as it tunes it (`main` calls
/// `wst_sdk::alloc::keep_freed_memory`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use wst_sdk::config::{GrpoConfig, LoraConfig, TeacherConfig};
use wst_sdk::grpo::{Centring, ScaleRewards, advantages};
use wst_sdk::teacher::{LmTeacher, TeacherOptions, TrainItem};
use wst_sdk::{Query, Teacher, TeacherSampling};
use wst_tests::f32_teacher;

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|kb| kb.parse::<f64>().ok()).map(|kb| kb / 1024.0).unwrap_or(f64::NAN)
}

/// Makes a sample exactly `len` completion tokens long: the step's cost depends on the number of
/// tokens, not on which they are. The EOS a finished sample ends with is dropped first, so no
/// row stops early.
fn exact_length(s: &mut wst_sdk::teacher::TeacherSample, len: usize) {
    if !s.truncated {
        s.completion_ids.pop();
    }
    let own = if s.completion_ids.is_empty() { s.prompt_ids.clone() } else { s.completion_ids.clone() };
    s.completion_ids = own.iter().copied().cycle().take(len).collect();
    s.logprobs = vec![0.0; len];
    s.truncated = true;
}

fn main() {
    let kept = wst_sdk::alloc::keep_freed_memory();
    // RUST_LOG=wst_sdk=debug prints the step's phases.
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).with_writer(std::io::stderr).init();
    let mode = std::env::args().skip(1).find(|a| a == "full" || a == "lora").unwrap_or_else(|| "full".into());
    let model = match std::env::var("WST_BENCH_MODEL") {
        Ok(m) => m,
        Err(_) => {
            let Some(gguf) = wst_tests::smollm2_gguf() else { return };
            gguf.display().to_string()
        }
    };
    let lora = (mode == "lora").then(|| LoraConfig { r: 16, lora_alpha: 32.0, ..Default::default() });
    let (g, tokens_max) = (wst_tests::env_or::<usize>("WST_BENCH_G", 8), wst_tests::env_or::<usize>("WST_BENCH_TOKENS", 128));
    let grpo =
        GrpoConfig { learning_rate: 1e-6, beta: wst_tests::env_or::<f64>("WST_BENCH_BETA", 0.04), max_completion_length: tokens_max, num_generations: g, ..Default::default() };
    let grpo = GrpoConfig { per_device_train_batch_size: 4, ..grpo };
    let opts = TeacherOptions { teacher: TeacherConfig { lora, ..f32_teacher() }, ..Default::default() };
    let mut t = LmTeacher::load(&model, opts).unwrap();
    let queries: Vec<Query> =
        wst_tests::GSM8K_PROBLEMS.iter().take(wst_tests::env_or::<usize>("WST_BENCH_PROMPTS", 4)).enumerate().map(|(i, q)| Query::new(i.to_string(), *q)).collect();
    let sampling = TeacherSampling { num_generations: g, temperature: 1.0, top_p: 1.0, top_k: None, max_completion_length: tokens_max, seed: 1, ..Default::default() };
    let start = Instant::now();
    let mut groups = t.sample(&queries, &sampling).unwrap();
    let sample_s = start.elapsed().as_secs_f64();
    let sampled_tokens: usize = groups.iter().flatten().map(|s| s.completion_ids.len()).sum();
    let exact = std::env::var("WST_BENCH_EXACT").is_ok_and(|v| v == "1");
    if exact {
        groups.iter_mut().flatten().for_each(|s| exact_length(s, tokens_max));
    }
    let tokens: usize = groups.iter().flatten().map(|s| s.completion_ids.len()).sum();
    // Rewards: the sum of the token ids modulo 7 (TRL's side computes the same), just to get
    // non-zero advantages even when every completion has the same length.
    let rewards: Vec<f64> = groups.iter().flatten().map(|s| (s.completion_ids.iter().map(|&t| u64::from(t)).sum::<u64>() % 7) as f64).collect();
    let adv = advantages(&rewards, g, ScaleRewards::Group, Centring::GroupMean).unwrap();
    let flat: Vec<_> = groups.iter().flatten().collect();
    if std::env::var("WST_BENCH_SAMPLE_ONLY").is_ok() {
        println!("sampling: {sampled_tokens} tokens in {sample_s:.2} s ({:.1} tok/s), peak {:.0} MB", sampled_tokens as f64 / sample_s, peak_rss_mb());
        return;
    }
    let items: Vec<TrainItem<'_>> = flat.iter().zip(&adv.advantages).map(|(s, a)| TrainItem { sample: s, advantage: *a as f32 }).collect();
    let start = Instant::now();
    let m = wst_tests::grpo_step(&mut t, &items, &grpo).remove(0);
    let step_s = start.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "model": model, "mode": mode,
            "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "prompts": queries.len(), "num_generations": g, "beta": grpo.beta, "exact_length": exact.then_some(tokens_max),
            "completions": flat.len(), "completion_tokens": tokens, "sampled_tokens": sampled_tokens,
            "sampling_seconds": (sample_s * 100.0).round() / 100.0, "sampling_tokens_per_s": (sampled_tokens as f64 / sample_s * 10.0).round() / 10.0,
            "grpo_step_seconds": (step_s * 100.0).round() / 100.0, "grad_norm": m.grad_norm, "kl": m.kl,
            "peak_rss_mb": peak_rss_mb().round(), "mimalloc_keeps_freed_memory": kept,
        })
    );
}
