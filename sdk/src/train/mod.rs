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
mod schedule;
mod step;
mod tensorboard;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::{GrpoConfig, OutputConfig, WstSettings};
use crate::error::{Error, Result};
use crate::eval::{EvalSettings, InstructionSource, score_queries};
use crate::pipeline::Pipeline;
use crate::query::Query;
use crate::teacher::TeacherSampling;
use crate::types::{hash_str, mix};
pub use callback::{Control, Phase, TrainerCallback};
pub use checkpoint::TrainerState;
use log::{JsonlLog, Keep};
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
    /// Told about phases, metrics, evaluations and checkpoints (the app draws progress);
    /// each can ask to stop or save.
    pub callbacks: Vec<Arc<dyn TrainerCallback>>,
    /// Cancel it (e.g. on Ctrl-C) to stop after the current step, with a checkpoint.
    pub cancel: Option<CancellationToken>,
    /// The run's configuration as TOML, written to `OUTPUT_DIR/config.toml` once the output
    /// folder is known to be this run's (never over an earlier run's refused folder).
    pub config_toml: Option<String>,
    /// Resume even when the data or a setting that changes the experiment differs from the
    /// checkpoint's (each change is logged); without it such a resume is refused, naming them.
    pub allow_changes: bool,
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
    /// Trains the Teacher on `queries` (see the [`train`](crate::train) module for the loop).
    pub async fn train(&self, queries: &[Query], options: TrainOptions) -> Result<TrainSummary> {
        if queries.is_empty() {
            return Err(Error::invalid("queries", "no training queries"));
        }
        if !self.has_teacher() {
            return Err(Error::invalid("teacher", "training needs a Teacher"));
        }
        if self.reward.is_none() {
            return Err(Error::invalid("reward", "training needs a reward"));
        }
        let g = &options.grpo;
        options.wst.validate()?;
        if g.num_generations < 2 {
            return Err(Error::invalid("grpo.num_generations", "GRPO needs at least 2 instructions per query"));
        }
        if g.temperature <= 0.0 {
            return Err(Error::invalid(
                "grpo.temperature",
                "training needs sampling (temperature > 0): greedy decoding writes the same instruction G times, so every group has zero spread and nothing is learned",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(q) = queries.iter().find(|q| !seen.insert(q.id.as_str())) {
            return Err(Error::invalid("queries", format!("query id `{}` appears twice: ids key the Student's baseline and every seed, so they must be unique", q.id)));
        }
        let queries_per_step = queries_per_step(g);
        let can = self.student.capabilities().max_concurrency;
        let asked = options.wst.max_concurrency * options.wst.student_samples.max(1);
        if asked < can {
            tracing::warn!(
                student = self.student.name(),
                can,
                asked,
                "the Student can produce {can} answers at once but at most {asked} are in flight (wst.max_concurrency × K); raise wst.max_concurrency to keep it busy"
            );
        }
        let schedule = Schedule::new(queries.len(), queries_per_step, g.max_steps, g.num_train_epochs, g.seed);
        let out = options.output.output_dir.clone();
        let ckpt_root = out.join("checkpoints");
        let fingerprint = queries.iter().fold(0u64, |h, q| mix(&[h, hash_str(&q.id)]));
        let teacher_identity = self.with_teacher(|t| Ok(t.identity())).await?;
        let experiment = experiment::describe(self, teacher_identity, queries, &options)?;

        let mut state = TrainerState {
            step: 0,
            total_steps: schedule.total_steps,
            seed: g.seed,
            queries_per_step,
            data_fingerprint: fingerprint,
            baselines: BTreeMap::new(),
            num_tokens: 0,
            log_lines: None,
            recent_failures: Vec::new(),
            experiment: experiment.clone(),
            pending: Vec::new(),
        };
        // Before any checkpoint is restored, so a KL reference holds the initial weights.
        let grpo = g.clone();
        self.with_teacher(move |t| t.prepare_training(&grpo)).await?;
        let latest = if options.resume { checkpoint::list(&ckpt_root)?.pop() } else { None };
        if let Some((_, dir)) = &latest {
            let dir = dir.clone();
            let loaded = self.with_teacher(move |t| checkpoint::load(&dir, t)).await?;
            if loaded.experiment.is_empty() {
                // A checkpoint from before experiments were recorded: the ids, seed and batch size.
                if loaded.data_fingerprint != fingerprint || loaded.seed != g.seed || loaded.queries_per_step != queries_per_step {
                    return Err(Error::Config {
                        location: out.display().to_string(),
                        message: "the checkpoint was written for other data, seed or batch size; resume with the same configuration".into(),
                    });
                }
            } else {
                let changed = experiment::changes(&loaded.experiment, &experiment);
                if !changed.is_empty() {
                    if !options.allow_changes {
                        return Err(Error::Config {
                            location: out.display().to_string(),
                            message: format!(
                                "resuming would change the experiment the checkpoint belongs to ({}); resume with the same data and settings, or allow the changes (`wst train --resume --allow-changes`)",
                                changed.join("; ")
                            ),
                        });
                    }
                    for c in &changed {
                        tracing::warn!(change = %c, "resuming with a changed experiment (allowed)");
                    }
                }
            }
            state = TrainerState { total_steps: schedule.total_steps, experiment: experiment.clone(), ..loaded };
            tracing::info!(step = state.step, "resumed from checkpoint");
        }
        let resumed_from = state.step;
        if latest.is_none() {
            self.claim_output_dir(&out, options.resume, options.overwrite_output_dir)?;
        }
        // Only once the folder is ours: a refused run must not overwrite the earlier run's config.
        if let Some(text) = &options.config_toml {
            std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
            let p = out.join("config.toml");
            std::fs::write(&p, text).map_err(|e| Error::io(&p, e))?;
        }
        let (keep_metrics, keep_completions) = match (&latest, state.log_lines) {
            (None, _) => (Keep::Nothing, Keep::Nothing),
            (Some(_), Some((m, c))) => (Keep::Lines(m), Keep::Lines(c)),
            (Some(_), None) => (Keep::UpToStep(state.step), Keep::UpToStep(state.step)),
        };
        let mut metrics_log = JsonlLog::open(&out.join("metrics.jsonl"), keep_metrics)?;
        let mut completions_log = JsonlLog::open(&out.join("completions.jsonl"), keep_completions)?;
        let mut tensorboard = options.output.tensorboard_dir().map(|d| tensorboard::EventWriter::create(&d)).transpose()?;
        let mut report = |record: &Value, step: usize, log: &mut JsonlLog| -> Result<()> {
            log.write(record)?;
            if let Some(tb) = tensorboard.as_mut() {
                tb.write_metrics(record, step as u64)?;
            }
            Ok(())
        };

        let mut summary = TrainSummary { total_steps: schedule.total_steps, resumed_from, ..Default::default() };
        let usage_start = self.student.usage();
        if self.student.prefers_bulk() && state.step < schedule.total_steps {
            options.callbacks.iter().for_each(|c| c.on_phase(state.step, Phase::Baselines));
            // Only the queries the remaining steps will train on.
            let planned: Vec<Query> = (state.step..schedule.total_steps).flat_map(|st| schedule.batch(st)).map(|i| queries[i].clone()).collect();
            match step::bulk_baselines(self, &planned, &mut state, &options).await {
                // Stopped during the wait: the loop below sees the cancellation and stops.
                Ok(()) | Err(Error::Interrupted) => {}
                Err(e) => return Err(e),
            }
        }
        let mut requested = Control::default();
        options.callbacks.iter().for_each(|c| c.on_train_begin(state.step, schedule.total_steps));
        let batch_of = |step: usize| -> Vec<Query> { schedule.batch(step).into_iter().map(|i| queries[i].clone()).collect() };
        let asking = rollout::Asking { seed: g.seed, wst: options.wst.clone() };
        // Steps sampled ahead of the one trained: none in the sequential loop, so a step's
        // instructions come from the policy it trains; `max_staleness` when pipelined.
        let ahead = if options.wst.async_generation { options.wst.max_staleness } else { 0 };
        // A checkpoint's batches in flight are the uninterrupted run's: their Student work starts
        // again (the response cache serves what was answered).
        let mut in_flight = rollout::Queue::new();
        for (i, b) in std::mem::take(&mut state.pending).into_iter().enumerate() {
            if b.step != state.step + i {
                tracing::warn!(step = b.step + 1, expected = state.step + i + 1, "a checkpoint's sampled batch is not for the steps that follow it; sampling anew");
                break;
            }
            in_flight.push_back(rollout::InFlight::start(self, batch_of(b.step), b, &state.baselines, &asking));
        }
        while state.step < schedule.total_steps {
            let cancelled = options.cancel.as_ref().is_some_and(|c| c.is_cancelled());
            if cancelled || requested.stop {
                summary.interrupted = true;
                break;
            }
            let t0 = Instant::now();
            let usage_before = self.student.usage();
            let batch = batch_of(state.step);
            // Sample the steps up to `ahead` beyond this one that are not in flight yet, each
            // handed to the Student at once, with the policy as it is now.
            let mut sampling_secs = 0.0;
            loop {
                let next = state.step + in_flight.len();
                if next >= schedule.total_steps || next > state.step + ahead {
                    break;
                }
                options.callbacks.iter().for_each(|c| c.on_phase(state.step, Phase::Instructions));
                let t = Instant::now();
                let batch_next = batch_of(next);
                let groups = match self.sample_instructions(&batch_next, &step::teacher_sampling(&options, next, 0)).await {
                    Ok(g) => g,
                    Err(e) => {
                        state.pending = in_flight.iter().map(|f| f.batch.clone()).collect();
                        self.checkpoint_unless_saved(&ckpt_root, &state, &options, &mut metrics_log, &mut completions_log).await?;
                        return Err(e);
                    }
                };
                sampling_secs += t.elapsed().as_secs_f64();
                let sampled = rollout::SampledBatch { step: next, version: state.step, groups };
                in_flight.push_back(rollout::InFlight::start(self, batch_next, sampled, &state.baselines, &asking));
            }
            let mut current = in_flight.pop_front().ok_or_else(|| Error::Teacher(format!("no sampled batch for step {}", state.step + 1)))?;
            if current.has_baselines {
                options.callbacks.iter().for_each(|c| c.on_phase(state.step, Phase::Baselines));
            }
            options.callbacks.iter().for_each(|c| c.on_phase(state.step, Phase::Answers));
            let t = Instant::now();
            let work = current.finish().await?;
            let waited_secs = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let outcome = match step::learn(self, &batch, current.batch.clone(), work, &mut state, &options).await {
                Ok(o) => o,
                Err(step::StepError::BeforeUpdate(e)) => {
                    // The Teacher still holds the last completed step: keep it, with the batches
                    // sampled for this step and the next, before stopping.
                    state.pending = std::iter::once(current.batch.clone()).chain(in_flight.iter().map(|f| f.batch.clone())).collect();
                    self.checkpoint_unless_saved(&ckpt_root, &state, &options, &mut metrics_log, &mut completions_log).await?;
                    return Err(e);
                }
                Err(step::StepError::DuringUpdate(e)) => return Err(e),
            };
            let learn_secs = t.elapsed().as_secs_f64();
            state.step += 1;
            state.pending = in_flight.iter().map(|f| f.batch.clone()).collect();
            let spent = self.student.usage().since(&usage_before);
            let mut record = outcome.metrics;
            record["step"] = json!(state.step);
            record["epoch"] = json!(schedule.epoch(state.step));
            // Pipelined, these count what the Student did during the step, for any step's batch.
            record["student/requests"] = json!(spent.requests);
            record["student/prompt_tokens"] = json!(spent.prompt_tokens);
            record["student/completion_tokens"] = json!(spent.completion_tokens);
            record["student/cost_usd"] = json!(spent.cost_usd);
            record["student/cache_hits"] = json!(spent.cache_hits);
            record["time/step_secs"] = json!(t0.elapsed().as_secs_f64());
            // Where the step's time went: the Teacher's sampling and update, and waiting for the
            // Student (pipelined training overlaps the two).
            record["time/teacher_secs"] = json!(sampling_secs + learn_secs);
            record["time/student_wait_secs"] = json!(waited_secs);
            let log_every = options.output.logging_steps.max(1);
            if state.step.is_multiple_of(log_every) || state.step == schedule.total_steps {
                report(&record, state.step, &mut metrics_log)?;
            }
            let every = options.output.log_completions_steps;
            if every > 0 && state.step.is_multiple_of(every) {
                for mut row in outcome.completions {
                    row["step"] = json!(state.step);
                    completions_log.write(&row)?;
                }
            }
            requested = options.callbacks.iter().fold(Control::default(), |c, cb| c.merge(cb.on_step_end(state.step, &record)));
            summary.last_metrics = Some(record);

            let eval_every = options.output.eval_steps;
            if !options.eval_queries.is_empty() && eval_every > 0 && state.step.is_multiple_of(eval_every) && state.step < schedule.total_steps {
                options.callbacks.iter().for_each(|c| c.on_phase(state.step, Phase::Eval));
                let e = self.eval_during_training(&options, state.step).await?;
                report(&e, state.step, &mut metrics_log)?;
                requested = options.callbacks.iter().fold(requested, |c, cb| c.merge(cb.on_eval(state.step, &e)));
                summary.last_eval = Some(e);
            }
            let save_every = options.output.save_steps;
            if (save_every > 0 && state.step.is_multiple_of(save_every)) || requested.save {
                requested.save = false;
                self.checkpoint(&ckpt_root, &state, &options, &mut metrics_log, &mut completions_log).await?;
            }
        }
        summary.steps_done = state.step;
        // Always leave a checkpoint of where the run ended.
        self.checkpoint_unless_saved(&ckpt_root, &state, &options, &mut metrics_log, &mut completions_log).await?;
        // A stopped pipelined run leaves its batches in flight to the checkpoint.
        drop(in_flight);
        if !summary.interrupted {
            // Export first: the final evaluation can take long, and a run stopped or failing
            // there must still leave the trained Teacher in `final/`.
            let final_dir = out.join("final");
            let fd = final_dir.clone();
            match self.with_teacher(move |t| t.save_pretrained(&fd)).await {
                Ok(()) => {
                    // The cards the Teacher wrote (the model's, and its LoRA adapter's), completed
                    // with what only the run knows.
                    for dir in [final_dir.clone(), final_dir.join("adapter")] {
                        if let Some(mut card) = crate::teacher::TeacherCard::read(&dir)? {
                            card.sampling = Some((&options.grpo).into());
                            card.student_prompt = Some(self.student_prompt.clone());
                            card.write(&dir)?;
                        }
                    }
                    summary.final_dir = Some(final_dir)
                }
                Err(e) => tracing::warn!("the trained Teacher was not exported: {e}"),
            }
            if !options.eval_queries.is_empty() {
                options.callbacks.iter().for_each(|c| c.on_phase(state.step, Phase::Eval));
                let e = self.eval_during_training(&options, state.step).await?;
                report(&e, state.step, &mut metrics_log)?;
                options.callbacks.iter().for_each(|cb| {
                    cb.on_eval(state.step, &e);
                });
                summary.last_eval = Some(e);
            }
        }
        metrics_log.sync()?;
        if let Some(tb) = tensorboard.as_mut() {
            tb.sync()?;
        }
        let total = self.student.usage().since(&usage_start);
        let p = out.join("train_summary.json");
        let mut s = serde_json::to_value(&summary).map_err(|e| Error::serialize("the training summary", e))?;
        s["student_usage_this_run"] = serde_json::to_value(&total).map_err(|e| Error::serialize("the Student's usage", e))?;
        let text = serde_json::to_string_pretty(&s).map_err(|e| Error::serialize(p.display().to_string(), e))?;
        std::fs::write(&p, text).map_err(|e| Error::io(&p, e))?;
        options.callbacks.iter().for_each(|c| c.on_train_end(&summary));
        Ok(summary)
    }

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

    /// A checkpoint of `state`, unless the newest one already holds this step.
    async fn checkpoint_unless_saved(
        &self,
        root: &std::path::Path,
        state: &TrainerState,
        options: &TrainOptions,
        metrics: &mut JsonlLog,
        completions: &mut JsonlLog,
    ) -> Result<()> {
        if checkpoint::list(root)?.last().map(|(s, _)| *s) != Some(state.step) {
            self.checkpoint(root, state, options, metrics, completions).await?;
        }
        Ok(())
    }

    async fn checkpoint(&self, root: &std::path::Path, state: &TrainerState, options: &TrainOptions, metrics: &mut JsonlLog, completions: &mut JsonlLog) -> Result<()> {
        metrics.sync()?;
        completions.sync()?;
        self.student().flush()?;
        options.callbacks.iter().for_each(|c| c.on_phase(state.step, Phase::Checkpoint));
        let step = state.step;
        let state = TrainerState { log_lines: Some((metrics.lines(), completions.lines())), ..state.clone() };
        let (root, keep) = (root.to_path_buf(), options.output.save_total_limit);
        let dir = self.with_teacher(move |t| checkpoint::save(&root, t, &state, keep)).await?;
        options.callbacks.iter().for_each(|c| c.on_checkpoint(step, &dir));
        Ok(())
    }

    async fn eval_during_training(&self, options: &TrainOptions, step: usize) -> Result<Value> {
        let g = &options.grpo;
        let sampling = TeacherSampling { num_generations: 1, ..TeacherSampling::from_grpo(g, mix(&[g.seed, 0xE7A1])) };
        let settings = EvalSettings { student_samples: options.wst.student_samples, seed: g.seed, max_concurrency: options.wst.max_concurrency, ..Default::default() };
        let ins = crate::eval::instructions(self, &options.eval_queries, &InstructionSource::Teacher(sampling), settings.max_concurrency).await?;
        let with = score_queries(self, &options.eval_queries, &ins, None, &settings).await?.outcomes;
        let without = score_queries(self, &options.eval_queries, &vec![None; options.eval_queries.len()], None, &settings).await?.outcomes;
        let mean = |o: &[crate::eval::QueryOutcome]| o.iter().map(|x| x.mean).sum::<f64>() / o.len().max(1) as f64;
        Ok(json!({"step": step, "eval/student_score": mean(&with), "eval/student_baseline": mean(&without), "eval/queries": with.len()}))
    }
}
