//! One WST training step: baselines, instructions, Student answers, rewards, GRPO update.

use futures::StreamExt;
use serde_json::{Value, json};

use super::TrainOptions;
use super::checkpoint::TrainerState;
use crate::config::ZeroStdGroups;
use crate::error::{Error, Result};
use crate::grpo::{CompletionMetrics, RewardMetrics, advantages, wst_reward};
use crate::pipeline::Pipeline;
use crate::query::Query;
use crate::score::mean_by_name;
use crate::student::SamplingParams;
use crate::teacher::{StepSettings, TeacherSample, TeacherSampling, TrainItem};
use crate::types::{hash_str, mix};

/// What a step produced for the logs.
pub struct StepOutcome {
    /// The metrics record (without step/usage fields, which the loop adds).
    pub metrics: Value,
    /// One completions-table row per (query, instruction).
    pub completions: Vec<Value>,
}

/// The Student's scores for one instruction: the weighted total and named values per answer.
struct Scored {
    answers: Vec<String>,
    totals: Vec<f64>,
    values: Vec<crate::score::Score>,
}

impl Scored {
    fn mean(&self) -> f64 {
        self.totals.iter().sum::<f64>() / self.totals.len().max(1) as f64
    }
}

/// The Student's baseline s(q): mean reward of `baseline_samples` answers without instructions.
/// Its seed depends only on the run seed and the query id, so the response cache serves it
/// across runs.
async fn baseline(p: &Pipeline, q: &Query, options: &TrainOptions) -> Result<f64> {
    let n = options.wst.baseline_samples.max(1);
    let answers = p.answer_with(q, None, n, &baseline_params(p, q, options)).await?;
    baseline_of(p, q, &answers).await
}

fn baseline_params(p: &Pipeline, q: &Query, options: &TrainOptions) -> SamplingParams {
    SamplingParams { seed: Some(mix(&[options.grpo.seed, hash_str(&q.id), 0xBA5E])), ..p.student_sampling().clone() }
}

async fn baseline_of(p: &Pipeline, q: &Query, answers: &[crate::student::StudentSample]) -> Result<f64> {
    let scores = p.score(q, None, answers).await?;
    Ok(scores.iter().map(|s| s.total).sum::<f64>() / scores.len().max(1) as f64)
}

/// Every missing baseline at once, for Students that prefer bulk work (the OpenAI Batch API):
/// the same requests the steps would make, so the steps then find them done. A query whose
/// answers fail here is left to its step, which asks again.
pub async fn bulk_baselines(p: &Pipeline, queries: &[Query], state: &mut TrainerState, options: &TrainOptions) -> Result<()> {
    let n = options.wst.baseline_samples.max(1);
    let mut seen = std::collections::BTreeSet::new();
    let todo: Vec<&Query> = queries.iter().filter(|q| !state.baselines.contains_key(&q.id) && seen.insert(q.id.clone())).collect();
    if todo.is_empty() {
        return Ok(());
    }
    let requests = todo
        .iter()
        .map(|q| Ok(crate::student::StudentRequest { messages: p.student_prompt().render(q, None)?, n, params: baseline_params(p, q, options) }))
        .collect::<Result<Vec<_>>>()?;
    tracing::info!(queries = todo.len(), "baselines in one bulk request");
    // A bulk request can take hours (the Batch API): Ctrl-C must stop the wait. What was
    // submitted is recorded by the Student, so a resumed run polls it rather than paying again.
    let wait = p.student().generate_many(&requests);
    let answers = match &options.cancel {
        Some(cancel) => tokio::select! {
            a = wait => a,
            _ = cancel.cancelled() => return Err(Error::Interrupted),
        },
        None => wait.await,
    };
    let mut failed = 0;
    for (q, a) in todo.iter().zip(answers) {
        match a {
            Ok(a) if a.len() == n => {
                state.baselines.insert(q.id.clone(), baseline_of(p, q, &a).await?);
            }
            Ok(_) | Err(_) => failed += 1,
        }
    }
    if failed > 0 {
        tracing::warn!(failed, "baselines that failed in bulk are asked again in their steps");
    }
    Ok(())
}

/// How many of the most recent queries `wst.max_failed_fraction` is a share of.
fn failure_window(queries_per_step: usize) -> usize {
    queries_per_step.max(10)
}

/// K answers to each (query, instruction) pair, scored; requests run concurrently. Each
/// pair's outcome stands alone, so one failed request does not discard the others.
async fn answer_groups(p: &Pipeline, batch: &[Query], groups: &[Vec<TeacherSample>], step: usize, attempt: u64, options: &TrainOptions) -> Vec<Vec<Result<Scored>>> {
    let k = options.wst.student_samples.max(1);
    let jobs = batch.iter().zip(groups).flat_map(|(q, group)| {
        group.iter().enumerate().map(move |(gi, s)| async move {
            let params = SamplingParams { seed: Some(mix(&[options.grpo.seed, step as u64, hash_str(&q.id), gi as u64, attempt])), ..p.student_sampling().clone() };
            let answers = p.answer_with(q, Some(&s.instruction), k, &params).await?;
            let scores = p.score(q, Some(&s.instruction), &answers).await?;
            Ok::<_, Error>(Scored {
                answers: answers.into_iter().map(|a| a.text).collect(),
                totals: scores.iter().map(|s| s.total).collect(),
                values: scores.into_iter().map(|s| s.values).collect(),
            })
        })
    });
    let flat: Vec<Result<Scored>> = futures::stream::iter(jobs).buffered(options.wst.max_concurrency.max(1)).collect().await;
    let mut flat = flat.into_iter();
    groups.iter().map(|group| flat.by_ref().take(group.len()).collect()).collect()
}

/// A query's whole group, or the first error among its instructions.
fn whole(group: Vec<Result<Scored>>) -> Result<Vec<Scored>> {
    group.into_iter().collect()
}

/// Why a step failed, and whether the Teacher had been touched by then.
pub enum StepError {
    /// Before the Teacher's update (baselines, sampling, Student, rewards): the Teacher still
    /// holds the last completed step's weights, so a checkpoint of it is safe.
    BeforeUpdate(Error),
    /// During the Teacher's update: its weights may be half-way through the step.
    DuringUpdate(Error),
}

impl From<Error> for StepError {
    fn from(e: Error) -> Self {
        StepError::BeforeUpdate(e)
    }
}

fn teacher_sampling(options: &TrainOptions, step: usize, attempt: u64) -> TeacherSampling {
    let g = &options.grpo;
    TeacherSampling::from_grpo(g, mix(&[g.seed, step as u64, attempt, 0x7EAC]))
}

fn all_equal(xs: &[f64]) -> bool {
    xs.iter().all(|x| (x - xs[0]).abs() <= 1e-12)
}

/// Runs step `state.step` on `batch`, updating baselines in `state`. A query whose Student
/// calls or rewards fail (after the backend's own retries) is left out of the step and counted
/// in `wst/failed_queries`; more than `wst.max_failed_fraction` of the batch failing fails the step.
pub async fn run(p: &Pipeline, batch: &[Query], state: &mut TrainerState, options: &TrainOptions) -> Result<StepOutcome, StepError> {
    let g = &options.grpo;
    let step = state.step;
    let mut failures: Vec<(usize, Error)> = Vec::new();

    let phase = |ph: super::Phase| options.callbacks.iter().for_each(|c| c.on_phase(step, ph));
    // 1. Baselines of queries seen for the first time (concurrently).
    let missing: Vec<usize> = (0..batch.len()).filter(|&i| !state.baselines.contains_key(&batch[i].id)).collect();
    if !missing.is_empty() {
        phase(super::Phase::Baselines);
    }
    let computed: Vec<(usize, Result<f64>)> =
        futures::stream::iter(missing.into_iter().map(|i| async move { (i, baseline(p, &batch[i], options).await) })).buffered(options.wst.max_concurrency.max(1)).collect().await;
    for (i, r) in computed {
        match r {
            Ok(s) => {
                state.baselines.insert(batch[i].id.clone(), s);
            }
            Err(e) => failures.push((i, e)),
        }
    }

    // 2–4. Instructions, answers, rewards.
    phase(super::Phase::Instructions);
    let mut groups = p.sample_instructions(batch, &teacher_sampling(options, step, 0)).await?;
    phase(super::Phase::Answers);
    let answered = answer_groups(p, batch, &groups, step, 0, options).await;
    let mut scored: Vec<Vec<Scored>> = Vec::with_capacity(batch.len());
    for (qi, group) in answered.into_iter().enumerate() {
        match whole(group) {
            Ok(sc) => scored.push(sc),
            Err(e) => {
                if !failures.iter().any(|(i, _)| *i == qi) {
                    failures.push((qi, e));
                }
                scored.push(Vec::new());
            }
        }
    }
    failures.sort_by_key(|(i, _)| *i);
    let failed: Vec<bool> = (0..batch.len()).map(|i| failures.iter().any(|(f, _)| *f == i)).collect();
    for (i, e) in &failures {
        tracing::warn!(step = step + 1, query = %batch[*i].id, "query left out of the step: {e}");
    }
    let limit = options.wst.max_failed_fraction;
    let window = failure_window(batch.len());
    let mut recent = state.recent_failures.clone();
    recent.extend(failed.iter().copied());
    let recent = recent.split_off(recent.len().saturating_sub(window));
    let failed_recently = recent.iter().filter(|f| **f).count();
    // Queries not yet asked count as healthy: the share is over a full window.
    if !failures.is_empty() && failed_recently as f64 > limit * window as f64 {
        return Err(StepError::BeforeUpdate(Error::StepFailed { step: step + 1, failed: failed_recently, total: window, limit, first: failures[0].1.to_string() }));
    }
    state.recent_failures = recent;
    // From here on only the queries that came through take part.
    let keep: Vec<usize> = (0..batch.len()).filter(|&i| !failed[i]).collect();
    let batch_all = batch;
    let batch: Vec<Query> = keep.iter().map(|&i| batch_all[i].clone()).collect();
    let mut groups: Vec<Vec<TeacherSample>> = keep.iter().map(|&i| std::mem::take(&mut groups[i])).collect();
    let mut scored: Vec<Vec<Scored>> = keep.iter().map(|&i| std::mem::take(&mut scored[i])).collect();
    let batch = &batch[..];
    let reward_of = |qi: usize, s: &Scored| wst_reward(&s.totals, state.baselines[&batch[qi].id]);
    let zero_std_before: Vec<bool> = scored.iter().map(|grp| all_equal(&grp.iter().map(Scored::mean).collect::<Vec<_>>())).collect();
    let mut resampled = 0;
    if g.num_generations > 1 && options.wst.zero_std_groups == ZeroStdGroups::Resample {
        let redo: Vec<usize> = (0..batch.len()).filter(|&i| zero_std_before[i]).collect();
        if !redo.is_empty() {
            let qs: Vec<Query> = redo.iter().map(|&i| batch[i].clone()).collect();
            let new_groups = p.sample_instructions(&qs, &teacher_sampling(options, step, 1)).await?;
            let new_scored = answer_groups(p, &qs, &new_groups, step, 1, options).await;
            for ((&i, grp), sc) in redo.iter().zip(new_groups).zip(new_scored) {
                // A resample that fails keeps the first group (a failure here loses nothing).
                if let Ok(sc) = whole(sc) {
                    groups[i] = grp;
                    scored[i] = sc;
                    resampled += 1;
                }
            }
        }
    }
    let mut rewards: Vec<f64> = Vec::new();
    for (qi, grp) in scored.iter().enumerate() {
        for s in grp {
            rewards.push(reward_of(qi, s)?);
        }
    }
    if batch.is_empty() {
        // Every query failed and `max_failed_fraction` allows it: nothing to learn from.
        return Ok(StepOutcome { metrics: json!({"wst/failed_queries": failures.len(), "wst/step_skipped": true}), completions: Vec::new() });
    }
    let adv = advantages(&rewards, g.num_generations, g.scale_rewards, options.wst.centring)?;
    let reward_metrics = RewardMetrics::new(&rewards, &adv);
    let skip: Vec<bool> = adv.group_std_is_zero.iter().map(|z| *z && options.wst.zero_std_groups == ZeroStdGroups::Skip).collect();

    // 5. GRPO update (num_iterations passes over the same samples).
    let gsize = g.num_generations;
    let mut items_owned: Vec<(TeacherSample, f32)> = Vec::new();
    for (qi, grp) in groups.iter().enumerate() {
        if skip[qi] {
            continue;
        }
        for (gi, s) in grp.iter().enumerate() {
            items_owned.push((s.clone(), adv.advantages[qi * gsize + gi] as f32));
        }
    }
    // One learning rate per optimisation step, from the schedule over the whole run.
    let learning_rates = g.learning_rates(step, state.total_steps);
    let step_metrics = if items_owned.is_empty() {
        None
    } else {
        phase(super::Phase::Update);
        let grpo = g.clone();
        let mut passes = p
            .with_teacher(move |t| {
                let items: Vec<TrainItem<'_>> = items_owned.iter().map(|(s, a)| TrainItem { sample: s, advantage: *a }).collect();
                t.step(&items, &StepSettings { grpo: &grpo, learning_rates: &learning_rates })
            })
            .await
            .map_err(StepError::DuringUpdate)?;
        // The last optimisation step is logged (with μ > 1 the first is on-policy: no clipping).
        Some(passes.pop().ok_or_else(|| StepError::DuringUpdate(Error::Teacher("the Teacher took no optimisation step".into())))?)
    };

    // 6. Metrics and completions table.
    state.num_tokens += groups.iter().flatten().map(|s| (s.prompt_ids.len() + s.completion_ids.len()) as u64).sum::<u64>();
    let completions: Vec<(usize, bool)> = groups.iter().flatten().map(|s| (s.completion_ids.len(), s.truncated)).collect();
    let cm = CompletionMetrics::new(&completions);
    let all_scores: Vec<f64> = scored.iter().flatten().flat_map(|s| s.totals.iter().copied()).collect();
    let mean_baseline = batch.iter().map(|q| state.baselines[&q.id]).sum::<f64>() / batch.len() as f64;
    let mut m = json!({
        "reward": reward_metrics.reward,
        "reward_std": reward_metrics.reward_std,
        "frac_reward_zero_std": reward_metrics.frac_reward_zero_std,
        "completions/mean_length": cm.mean_length,
        "completions/min_length": cm.min_length,
        "completions/max_length": cm.max_length,
        "completions/clipped_ratio": cm.clipped_ratio,
        "completions/mean_terminated_length": cm.mean_terminated_length,
        "completions/min_terminated_length": cm.min_terminated_length,
        "completions/max_terminated_length": cm.max_terminated_length,
        "num_tokens": state.num_tokens,
        "wst/student_score": all_scores.iter().sum::<f64>() / all_scores.len().max(1) as f64,
        "wst/student_baseline": mean_baseline,
        "wst/frac_zero_std_before_resample": zero_std_before.iter().filter(|z| **z).count() as f64 / batch.len() as f64,
        "wst/resampled_groups": resampled,
        "wst/skipped_groups": skip.iter().filter(|s| **s).count(),
        "wst/step_skipped": step_metrics.is_none(),
        "wst/failed_queries": failures.len(),
    });
    let values: Vec<&crate::score::Score> = scored.iter().flatten().flat_map(|s| s.values.iter()).collect();
    for (name, mean) in mean_by_name(values.iter().map(|v| &v.values)) {
        m[format!("rewards/{name}/mean")] = json!(mean);
        // Std over answers (unbiased, as torch.std in TRL's `rewards/<name>/std`).
        let xs: Vec<f64> = values.iter().filter_map(|v| v.get(&name)).collect();
        let var = if xs.len() > 1 { xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (xs.len() - 1) as f64 } else { 0.0 };
        m[format!("rewards/{name}/std")] = json!(var.sqrt());
    }
    if let Some(sm) = &step_metrics {
        m["loss"] = json!(sm.loss);
        m["kl"] = json!(sm.kl);
        m["grad_norm"] = json!(sm.grad_norm);
        m["learning_rate"] = json!(sm.learning_rate);
        m["clip_ratio/low_mean"] = json!(sm.clip_ratio_low_mean);
        m["clip_ratio/high_mean"] = json!(sm.clip_ratio_high_mean);
        m["clip_ratio/region_mean"] = json!(sm.clip_ratio_region_mean);
        // One process: the min and max over processes TRL reports are the process's own mean.
        m["clip_ratio/low_min"] = json!(sm.clip_ratio_low_mean);
        m["clip_ratio/high_max"] = json!(sm.clip_ratio_high_mean);
        m["entropy"] = json!(sm.entropy);
    }
    let mut rows = Vec::new();
    for (qi, (grp, sc)) in groups.iter().zip(&scored).enumerate() {
        for (gi, (s, x)) in grp.iter().zip(sc).enumerate() {
            rows.push(json!({
                "query_id": batch[qi].id, "query": batch[qi].text, "instruction": s.instruction.text,
                "answers": x.answers, "scores": x.totals, "baseline": state.baselines[&batch[qi].id],
                "reward": rewards[qi * gsize + gi], "advantage": adv.advantages[qi * gsize + gi],
            }));
        }
    }
    Ok(StepOutcome { metrics: m, completions: rows })
}
