//! `wst train --config run.toml`: WST training of the Teacher against the configured Student.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use wst_sdk::config::WstConfig;
use wst_sdk::dataset::load_queries;
use wst_sdk::train::{CancellationToken, TrainHooks, planned_steps};
use wst_sdk::{Error, TrainOptions};

/// Arguments of `wst train`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run configuration (TOML; `wst config init` writes a documented one).
    #[arg(long, short)]
    pub config: PathBuf,
    /// Continue from the newest checkpoint in the output folder.
    #[arg(long, conflicts_with = "overwrite")]
    pub resume: bool,
    /// With --resume: continue even when the data or a setting that changes the experiment
    /// differs from the checkpoint's (each change is logged); without it such a resume is refused.
    #[arg(long, requires = "resume")]
    pub allow_changes: bool,
    /// Start over in an output folder that holds an earlier run, removing its logs,
    /// checkpoints and final model (HF's `overwrite_output_dir`).
    #[arg(long)]
    pub overwrite: bool,
    /// Override `output.output_dir`.
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
    /// Override `grpo.max_steps`.
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Override any config field: `--set grpo.learning_rate=1e-5` (TOML values; repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// Do not evaluate on `data.eval` (neither every `output.eval_steps` nor after the last
    /// step; TRL's `eval_strategy = "no"`): `wst eval` does the full comparison afterwards.
    #[arg(long)]
    pub no_eval: bool,
}

/// Stops the run cleanly (with a checkpoint) on the first Ctrl-C; a second one exits at once
/// with status 130.
pub fn ctrl_c_token(runtime: &tokio::runtime::Runtime) -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    runtime.spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if t.is_cancelled() {
                eprintln!("\nsecond Ctrl-C: exiting without a checkpoint");
                std::process::exit(130);
            }
            t.cancel();
            eprintln!("\nCtrl-C: finishing the current step and writing a checkpoint (Ctrl-C again to quit now)");
        }
    });
    token
}

/// How a run treats an output folder that holds an earlier run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Start {
    /// Continue from its newest checkpoint.
    pub resume: bool,
    /// Remove it and start over.
    pub overwrite: bool,
    /// Resume even when the experiment changed.
    pub allow_changes: bool,
}

/// Runs training as configured; returns the summary text. With `evaluate` (and a `data.eval`
/// split) the Teacher is scored there every `output.eval_steps` steps and after the last one;
/// without, never (`--no-eval`, and the demo, which runs its own fuller comparison).
pub fn train(cfg: &WstConfig, start: Start, progress: bool, evaluate: bool, runtime: &tokio::runtime::Runtime) -> anyhow::Result<wst_sdk::TrainSummary> {
    let train = load_queries(&cfg.data.train).context("loading data.train")?;
    let eval = match &cfg.data.eval {
        Some(e) if evaluate => load_queries(e).context("loading data.eval")?,
        _ => Vec::new(),
    };
    let total = planned_steps(train.len(), &cfg.grpo);
    let pipeline = wst_sdk::Pipeline::from_config(cfg, &crate::run::backends()).with_context(|| format!("building the pipeline (Teacher `{}`)", cfg.teacher.model))?;
    let options = TrainOptions {
        eval_queries: eval,
        resume: start.resume,
        overwrite_output_dir: start.overwrite,
        allow_changes: start.allow_changes,
        hooks: TrainHooks { callbacks: vec![Arc::new(crate::progress::TrainBar::new(progress))], cancel: Some(ctrl_c_token(runtime)) },
        ..TrainOptions::from_config(cfg)?
    };
    crate::progress::status!("training on {} queries for {total} steps → {}", train.len(), cfg.output.output_dir.display());
    let summary = runtime.block_on(pipeline.train(&train, options))?;
    // A plot that cannot be written (a full disk, say) must not fail a finished training run.
    if let Err(e) = crate::commands::plot::plot_metrics(&cfg.output.output_dir.join("metrics.jsonl"), &cfg.output.output_dir.join("plots")) {
        eprintln!("warning: no plots: {e:#}");
    }
    Ok(summary)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut cfg = crate::run::load_config(&args.config, &args.set)?;
    if let Some(d) = args.output_dir {
        cfg.output.output_dir = d;
    }
    if let Some(m) = args.max_steps {
        cfg.grpo.max_steps = Some(m);
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let start = Start { resume: args.resume, overwrite: args.overwrite, allow_changes: args.allow_changes };
    let summary = train(&cfg, start, !args.no_progress, !args.no_eval, &runtime)?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    if summary.interrupted {
        eprintln!("stopped at step {}/{}; continue with `wst train --config {} --resume`", summary.steps_done, summary.total_steps, args.config.display());
        return Err(Error::Interrupted.into());
    }
    Ok(ExitCode::SUCCESS)
}
