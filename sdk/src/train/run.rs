//! One training run from start to end, in the order `Pipeline::train` calls them: the checks
//! made before anything is loaded or written, starting or resuming (the checkpoint, the
//! experiment it belongs to, the output folder), the steps (sequential, or pipelined with
//! `wst.async_generation`), and the end (export, final evaluation, summary).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use serde_json::{Value, json};

use super::log::{JsonlLog, Keep};
use super::schedule::Schedule;
use super::{Control, Phase, TrainOptions, TrainSummary, TrainerState, checkpoint, experiment, queries_per_step, rollout, step, tensorboard};
use crate::error::{Error, Result};
use crate::eval::{EvalSettings, InstructionSource, score_queries};
use crate::pipeline::Pipeline;
use crate::query::Query;
use crate::student::StudentUsage;
use crate::teacher::TeacherSampling;
use crate::types::{hash_str, mix};

/// Where a run writes: its logs (JSONL, TensorBoard) and its checkpoints.
pub(super) struct RunLogs {
    out: PathBuf,
    checkpoints: PathBuf,
    metrics: JsonlLog,
    completions: JsonlLog,
    tensorboard: Option<tensorboard::EventWriter>,
}

impl RunLogs {
    /// Opens the logs of a run in `options.output.output_dir`; a resumed run (`resumed`, from
    /// `state`'s checkpoint) keeps exactly the lines written up to its checkpoint.
    fn open(options: &TrainOptions, resumed: bool, state: &TrainerState) -> Result<Self> {
        let out = options.output.output_dir.clone();
        let (keep_metrics, keep_completions) = match (resumed, state.log_lines) {
            (false, _) => (Keep::Nothing, Keep::Nothing),
            (true, Some((m, c))) => (Keep::Lines(m), Keep::Lines(c)),
            (true, None) => (Keep::UpToStep(state.step), Keep::UpToStep(state.step)),
        };
        Ok(RunLogs {
            checkpoints: out.join("checkpoints"),
            metrics: JsonlLog::open(&out.join("metrics.jsonl"), keep_metrics)?,
            completions: JsonlLog::open(&out.join("completions.jsonl"), keep_completions)?,
            tensorboard: options.output.tensorboard_dir().map(|d| tensorboard::EventWriter::create(&d)).transpose()?,
            out,
        })
    }

    /// A metrics record, to `metrics.jsonl` and TensorBoard.
    fn report(&mut self, record: &Value, step: usize) -> Result<()> {
        self.metrics.write(record)?;
        if let Some(tb) = self.tensorboard.as_mut() {
            tb.write_metrics(record, step as u64)?;
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        self.metrics.sync()?;
        self.completions.sync()?;
        if let Some(tb) = self.tensorboard.as_mut() {
            tb.sync()?;
        }
        Ok(())
    }
}

impl Pipeline {
    /// Trains the Teacher on `queries` (see the [`train`](crate::train) module for the loop).
    pub async fn train(&self, queries: &[Query], options: TrainOptions) -> Result<TrainSummary> {
        self.check_training(queries, &options)?;
        let g = &options.grpo;
        let schedule = Schedule::new(queries.len(), queries_per_step(g), g.max_steps, g.num_train_epochs, g.seed);
        let (mut state, resumed) = self.start_or_resume(queries, &options, &schedule).await?;
        let mut logs = RunLogs::open(&options, resumed, &state)?;
        let mut summary = TrainSummary { total_steps: schedule.total_steps, resumed_from: state.step, ..Default::default() };
        let usage_start = self.student.usage();
        self.run_steps(queries, &schedule, &mut state, &options, &mut logs, &mut summary).await?;
        self.finish(&state, &options, &mut logs, &mut summary, usage_start).await?;
        Ok(summary)
    }

    /// What training refuses before anything is loaded or written.
    fn check_training(&self, queries: &[Query], options: &TrainOptions) -> Result<()> {
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
        Ok(())
    }

    /// The trainer's state: a fresh one, or the newest checkpoint's when resuming (refused if
    /// it belongs to another experiment, unless changes are allowed); then the output folder
    /// is claimed and the config recorded. Returns whether a checkpoint was resumed.
    async fn start_or_resume(&self, queries: &[Query], options: &TrainOptions, schedule: &Schedule) -> Result<(TrainerState, bool)> {
        let g = &options.grpo;
        let queries_per_step = queries_per_step(g);
        let out = options.output.output_dir.clone();
        let ckpt_root = out.join("checkpoints");
        let fingerprint = queries.iter().fold(0u64, |h, q| mix(&[h, hash_str(&q.id)]));
        let teacher_identity = self.with_teacher(|t| Ok(t.identity())).await?;
        let experiment = experiment::describe(self, teacher_identity, queries, options)?;

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
        if latest.is_none() {
            self.claim_output_dir(&out, options.resume, options.overwrite_output_dir)?;
        }
        // Only once the folder is ours: a refused run must not overwrite the earlier run's config.
        if let Some(text) = &options.config_toml {
            std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
            let p = out.join("config.toml");
            std::fs::write(&p, text).map_err(|e| Error::io(&p, e))?;
        }
        Ok((state, latest.is_some()))
    }

    /// The steps from `state.step` to the end of the schedule (or a stop request), with
    /// checkpoints as `output.save_steps` says and one where the run ends.
    async fn run_steps(
        &self,
        queries: &[Query],
        schedule: &Schedule,
        state: &mut TrainerState,
        options: &TrainOptions,
        logs: &mut RunLogs,
        summary: &mut TrainSummary,
    ) -> Result<()> {
        if self.student.prefers_bulk() && state.step < schedule.total_steps {
            options.hooks.callbacks.iter().for_each(|c| c.on_phase(state.step, Phase::Baselines));
            // Only the queries the remaining steps will train on.
            let planned: Vec<Query> = (state.step..schedule.total_steps).flat_map(|st| schedule.batch(st)).map(|i| queries[i].clone()).collect();
            match step::bulk_baselines(self, &planned, state, options).await {
                // Stopped during the wait: the loop below sees the cancellation and stops.
                Ok(()) | Err(Error::Interrupted) => {}
                Err(e) => return Err(e),
            }
        }
        let mut requested = Control::default();
        options.hooks.callbacks.iter().for_each(|c| c.on_train_begin(state.step, schedule.total_steps));
        let batch_of = |step: usize| -> Vec<Query> { schedule.batch(step).into_iter().map(|i| queries[i].clone()).collect() };
        let asking = rollout::Asking::new(options);
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
            let cancelled = options.hooks.cancel.as_ref().is_some_and(|c| c.is_cancelled());
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
                options.hooks.callbacks.iter().for_each(|c| c.on_phase(state.step, Phase::Instructions));
                let t = Instant::now();
                let batch_next = batch_of(next);
                let groups = match self.sample_instructions(&batch_next, &step::teacher_sampling(options, next, 0)).await {
                    Ok(g) => g,
                    Err(e) => {
                        state.pending = rollout::batches(&in_flight);
                        self.checkpoint_unless_saved(state, options, logs).await?;
                        return Err(e);
                    }
                };
                sampling_secs += t.elapsed().as_secs_f64();
                let sampled = rollout::SampledBatch { step: next, version: state.step, groups };
                in_flight.push_back(rollout::InFlight::start(self, batch_next, sampled, &state.baselines, &asking));
            }
            let mut current = in_flight.pop_front().ok_or_else(|| Error::Teacher(format!("no sampled batch for step {}", state.step + 1)))?;
            if current.has_baselines {
                options.hooks.callbacks.iter().for_each(|c| c.on_phase(state.step, Phase::Baselines));
            }
            options.hooks.callbacks.iter().for_each(|c| c.on_phase(state.step, Phase::Answers));
            let t = Instant::now();
            let work = current.finish().await?;
            let waited_secs = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let outcome = match step::learn(self, &batch, current.batch.clone(), work, state, options).await {
                Ok(o) => o,
                Err(step::StepError::BeforeUpdate(e)) => {
                    // The Teacher still holds the last completed step: keep it, with the batches
                    // sampled for this step and the next, before stopping.
                    in_flight.push_front(current);
                    state.pending = rollout::batches(&in_flight);
                    self.checkpoint_unless_saved(state, options, logs).await?;
                    return Err(e);
                }
                Err(step::StepError::DuringUpdate(e)) => return Err(e),
            };
            let learn_secs = t.elapsed().as_secs_f64();
            state.step += 1;
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
                logs.report(&record, state.step)?;
            }
            let every = options.output.log_completions_steps;
            if every > 0 && state.step.is_multiple_of(every) {
                for mut row in outcome.completions {
                    row["step"] = json!(state.step);
                    logs.completions.write(&row)?;
                }
            }
            requested = options.hooks.callbacks.iter().fold(Control::default(), |c, cb| c.merge(cb.on_step_end(state.step, &record)));
            summary.last_metrics = Some(record);

            let eval_every = options.output.eval_steps;
            if !options.eval_queries.is_empty() && eval_every > 0 && state.step.is_multiple_of(eval_every) && state.step < schedule.total_steps {
                options.hooks.callbacks.iter().for_each(|c| c.on_phase(state.step, Phase::Eval));
                let e = self.eval_during_training(options, state.step).await?;
                logs.report(&e, state.step)?;
                requested = options.hooks.callbacks.iter().fold(requested, |c, cb| c.merge(cb.on_eval(state.step, &e)));
                summary.last_eval = Some(e);
            }
            let save_every = options.output.save_steps;
            if (save_every > 0 && state.step.is_multiple_of(save_every)) || requested.save {
                requested.save = false;
                state.pending = rollout::batches(&in_flight);
                self.checkpoint(state, options, logs).await?;
            }
        }
        summary.steps_done = state.step;
        // Always leave a checkpoint of where the run ended (a stopped pipelined run's batches in
        // flight go with it).
        state.pending = rollout::batches(&in_flight);
        self.checkpoint_unless_saved(state, options, logs).await?;
        drop(in_flight);
        Ok(())
    }

    /// The end of a run: the trained Teacher exported (unless stopped), the final evaluation,
    /// the logs synced, `train_summary.json`.
    async fn finish(&self, state: &TrainerState, options: &TrainOptions, logs: &mut RunLogs, summary: &mut TrainSummary, usage_start: StudentUsage) -> Result<()> {
        let out = logs.out.clone();
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
                options.hooks.callbacks.iter().for_each(|c| c.on_phase(state.step, Phase::Eval));
                let e = self.eval_during_training(options, state.step).await?;
                logs.report(&e, state.step)?;
                options.hooks.callbacks.iter().for_each(|cb| {
                    cb.on_eval(state.step, &e);
                });
                summary.last_eval = Some(e);
            }
        }
        logs.sync()?;
        let total = self.student.usage().since(&usage_start);
        let p = out.join("train_summary.json");
        let mut s = serde_json::to_value(&*summary).map_err(|e| Error::serialize("the training summary", e))?;
        s["student_usage_this_run"] = serde_json::to_value(&total).map_err(|e| Error::serialize("the Student's usage", e))?;
        let text = serde_json::to_string_pretty(&s).map_err(|e| Error::serialize(p.display().to_string(), e))?;
        std::fs::write(&p, text).map_err(|e| Error::io(&p, e))?;
        options.hooks.callbacks.iter().for_each(|c| c.on_train_end(summary));
        Ok(())
    }

    /// A checkpoint of `state`, unless the newest one already holds this step.
    async fn checkpoint_unless_saved(&self, state: &TrainerState, options: &TrainOptions, logs: &mut RunLogs) -> Result<()> {
        if checkpoint::list(&logs.checkpoints)?.last().map(|(s, _)| *s) != Some(state.step) {
            self.checkpoint(state, options, logs).await?;
        }
        Ok(())
    }

    async fn checkpoint(&self, state: &TrainerState, options: &TrainOptions, logs: &mut RunLogs) -> Result<()> {
        logs.metrics.sync()?;
        logs.completions.sync()?;
        self.student().flush()?;
        options.hooks.callbacks.iter().for_each(|c| c.on_phase(state.step, Phase::Checkpoint));
        let step = state.step;
        let state = TrainerState { log_lines: Some((logs.metrics.lines(), logs.completions.lines())), ..state.clone() };
        let (root, keep) = (logs.checkpoints.clone(), options.output.save_total_limit);
        let dir = self.with_teacher(move |t| checkpoint::save(&root, t, &state, keep)).await?;
        options.hooks.callbacks.iter().for_each(|c| c.on_checkpoint(step, &dir));
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
