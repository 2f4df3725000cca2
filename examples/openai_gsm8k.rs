//! GPT-4o-mini as the Student on GSM8K: the baseline, one Teacher-free instruction writer
//! (GPT-4o-mini itself) and the cost of it all. The key comes from OPENAI_API_KEY; any
//! OpenAI-compatible server works with OPENAI_BASE_URL (vLLM, llama.cpp server, Ollama...).
//!
//! cargo build --release -p wst-reward-math
//! OPENAI_API_KEY=sk-... cargo run --release -p wst-examples --example openai_gsm8k -- target/release/libwst_reward_math.so
use std::sync::Arc;

use wst_openai::OpenAiConfig;
use wst_sdk::dataset::{DataTask, DatasetConfig, FieldMap, load_queries};
use wst_sdk::eval::{EvalMethod, EvalSettings, InstructionSource, evaluate};
use wst_sdk::reward::PluginReward;
use wst_sdk::student::{CachedStudent, ResponseCache};
use wst_sdk::{Pipeline, SamplingParams, Student};

#[tokio::main]
async fn main() -> wst_sdk::Result<()> {
    let math = std::env::args().nth(1).unwrap_or_else(|| "target/release/libwst_reward_math.so".into());
    let mut cfg = OpenAiConfig { max_concurrency: 8, ..Default::default() };
    if let Ok(url) = std::env::var("OPENAI_BASE_URL") {
        cfg.base_urls = vec![url];
    }
    let gpt: Arc<dyn Student> = Arc::new(CachedStudent::new(Arc::new(wst_openai::OpenAiStudent::new("gpt-4o-mini", &cfg)?), ResponseCache::open("wst-cache")?));
    let data = DatasetConfig {
        path: "examples/data/gsm8k_test_100.jsonl".into(),
        fields: FieldMap { id: Some("id".into()), ..Default::default() },
        task: DataTask::Gsm8k,
        limit: Some(20),
        ..Default::default()
    };
    let queries = load_queries(&data)?;
    let pipeline = Pipeline::builder()
        .student_arc(gpt.clone())
        .student_sampling(SamplingParams { temperature: 0.7, max_tokens: 400, ..Default::default() })
        .reward(PluginReward::load(&math, &serde_json::json!({}))?)
        .build()?;
    let settings = EvalSettings { student_samples: 10, ..Default::default() };
    let direct = EvalMethod { name: "direct".into(), source: InstructionSource::None, prompt: None };
    let writer = EvalMethod {
        name: "writer:gpt-4o-mini".into(),
        source: InstructionSource::Writer {
            model: gpt.clone(),
            system: wst_sdk::config::DEFAULT_TEACHER_SYSTEM.into(),
            template: "Problem: {{ query }}\n\nWrite instructions for the student.".into(),
            params: SamplingParams { temperature: 0.7, max_tokens: 200, seed: Some(0), ..Default::default() },
            prefix: String::new(),
        },
        prompt: None,
    };
    for m in [direct, writer] {
        let (r, _) = evaluate(&pipeline, &queries, &m, &settings).await?;
        println!("{:<22} {} = {:.3}  95% CI [{:.3}, {:.3}]  ({} queries)", r.name, r.metric, r.value, r.ci_low, r.ci_high, r.n_queries);
    }
    let u = gpt.usage();
    println!(
        "spent: {} requests, {} prompt + {} completion tokens, ${:.4} ({} answers from the cache)",
        u.requests, u.prompt_tokens, u.completion_tokens, u.cost_usd, u.cache_hits
    );
    Ok(())
}
