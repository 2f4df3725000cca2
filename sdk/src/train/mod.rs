//! WST training: for each batch of queries, the Student's baseline s (computed once, cached),
//! G instructions per query from the Teacher, K Student answers per instruction (requested
//! concurrently), rewards, r = mean − s, and a GRPO step on the Teacher. Metrics go to
//! `metrics.jsonl` (TRL's names plus WST's), completions tables to `completions.jsonl`,
//! checkpoints to `checkpoints/checkpoint-N/` (atomic), the trained Teacher to `final/`.

pub mod callback;
pub mod checkpoint;
mod experiment;
pub mod log;
mod rollout;
mod run;
mod schedule;
mod step;
mod tensorboard;

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{GrpoConfig, OutputConfig, WstSettings};
use crate::error::{Error, Result};
use crate::pipeline::Pipeline;
use crate::query::Query;
pub use callback::{Control, Phase, TrainerCallback};
pub use checkpoint::TrainerState;
pub use rollout::SampledBatch;
use schedule::Schedule;
pub use tokio_util::sync::CancellationToken;

/// Everything `Pipeline::train` needs besides the pipeline.
#[derive(Clone, Default)]
pub struct TrainOptions {
    /// GRPO knobs.
    pub grpo: GrpoConfig,
    /// WST knobs (K, baseline samples, zero-std groups, concurrency).
    pub wst: WstSettings,
    /// Output folder and cadences.
    pub output: OutputConfig,
    /// Held-out queries evaluated every `output.eval_steps` and at the end.
    pub eval_queries: Vec<Query>,
    /// Continue from the newest checkpoint in the output folder.
    pub resume: bool,
    /// Start over in an output folder that holds an earlier run (its logs, checkpoints and
    /// final model are removed first); without it, and without `resume`, such a folder is an
    /// error (HF's `overwrite_output_dir`).
    pub overwrite_output_dir: bool,
    /// The run's configuration as TOML, written to `OUTPUT_DIR/config.toml` once the output
    /// folder is known to be this run's (never over an earlier run's refused folder).
    pub config_toml: Option<String>,
    /// Resume even when the data or a setting that changes the experiment differs from the
    /// checkpoint's (each change is logged); without it such a resume is refused, naming them.
    pub allow_changes: bool,
    /// What the application hooks into the run: handles that live while it runs, not settings.
    pub hooks: TrainHooks,
}

/// Runtime handles an application passes to a training run (the settings are the rest of
/// [`TrainOptions`]).
#[derive(Clone, Default)]
pub struct TrainHooks {
    /// Told about phases, metrics, evaluations and checkpoints (the app draws progress);
    /// each can ask to stop or save.
    pub callbacks: Vec<Arc<dyn TrainerCallback>>,
    /// Cancel it (e.g. on Ctrl-C) to stop after the current step, with a checkpoint.
    pub cancel: Option<CancellationToken>,
}

impl TrainOptions {
    /// The options `cfg` describes (GRPO, WST and output settings, the config itself to record
    /// in the output folder), with no held-out queries, callbacks or cancellation: set those
    /// fields for the run at hand.
    pub fn from_config(cfg: &crate::config::WstConfig) -> Result<Self> {
        Ok(TrainOptions { grpo: cfg.grpo.clone(), wst: cfg.wst.clone(), output: cfg.output.clone(), config_toml: Some(cfg.to_toml()?), ..Default::default() })
    }
}

/// What a training run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainSummary {
    /// Steps completed (over all runs, resumed ones included).
    pub steps_done: usize,
    /// Steps planned.
    pub total_steps: usize,
    /// The step this run started from (0 unless resumed).
    pub resumed_from: usize,
    /// Whether the run stopped early (Ctrl-C or a callback's `Control::stop`).
    pub interrupted: bool,
    /// The last metrics record.
    pub last_metrics: Option<Value>,
    /// Where the trained Teacher was saved (when the run finished and the Teacher can be saved).
    pub final_dir: Option<PathBuf>,
    /// The last evaluation record, if any.
    pub last_eval: Option<Value>,
}

/// Queries per optimisation step for these GRPO settings.
pub fn queries_per_step(g: &GrpoConfig) -> usize {
    (g.per_device_train_batch_size * g.gradient_accumulation_steps / g.num_generations.max(1)).max(1)
}

/// Optimisation steps a run over `n_queries` training queries will take (for learning-rate
/// schedules, which need the total before the Teacher is built).
pub fn planned_steps(n_queries: usize, g: &GrpoConfig) -> usize {
    Schedule::new(n_queries, queries_per_step(g), g.max_steps, g.num_train_epochs, g.seed).total_steps
}

impl Pipeline {
    /// Makes sure a fresh run does not mix with an earlier one in `out`: an earlier run's logs
    /// would be overwritten while its checkpoints stayed, to be pruned in place of the new
    /// run's or loaded by a later `--resume`.
    fn claim_output_dir(&self, out: &std::path::Path, resume: bool, overwrite: bool) -> Result<()> {
        let non_empty = |p: &std::path::Path| match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => std::fs::read_dir(p).map(|mut d| d.next().is_some()).unwrap_or(false),
            Ok(m) => m.len() > 0,
            Err(_) => false,
        };
        // Everything a run writes, so that a run started over leaves nothing of the earlier one
        // (TensorBoard events of two runs in one `runs/` would read as one).
        let earlier: Vec<std::path::PathBuf> = ["metrics.jsonl", "completions.jsonl", "checkpoints", "final", "train_summary.json", "runs", "plots", "eval", "config.toml"]
            .iter()
            .map(|f| out.join(f))
            .filter(|p| non_empty(p))
            .collect();
        let names = || earlier.iter().map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()).collect::<Vec<_>>().join(", ");
        if earlier.is_empty() || earlier.iter().all(|p| p.ends_with("config.toml")) {
            return Ok(());
        }
        let finished = earlier.iter().any(|p| p.ends_with("final") || p.ends_with("train_summary.json") || p.ends_with("eval"));
        if resume && !overwrite && finished {
            // Nothing can be resumed, and a trained Teacher or its results are not ours to
            // delete unasked.
            return Err(Error::Config {
                location: out.display().to_string(),
                message: format!(
                    "nothing to resume: the output folder holds an earlier run ({}) but no checkpoint; start over with --overwrite (which removes it) or choose another output_dir",
                    names()
                ),
            });
        }
        if resume && !overwrite {
            // Killed before its first checkpoint: its logs describe steps no checkpoint holds,
            // so the run starts over without them.
            tracing::warn!(folder = %out.display(), files = %names(), "no checkpoint to resume: the earlier run stopped before its first one; starting over without its logs");
        } else if !overwrite {
            return Err(Error::Config {
                location: out.display().to_string(),
                message: format!(
                    "the output folder holds an earlier run ({}); resume it (--resume), start over (--overwrite, which removes it) or choose another output_dir",
                    names()
                ),
            });
        }
        for p in earlier {
            let r = if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
            r.map_err(|e| Error::io(&p, e))?;
        }
        Ok(())
    }
}
