//! One WST training step, once its batch's instructions are sampled and the Student's work for
//! them is done ([`super::rollout`]): failures, rewards, advantages, the GRPO update, metrics.

use serde_json::{Value, json};

use super::TrainOptions;
use super::checkpoint::TrainerState;
use super::rollout::{Asking, SampledBatch, Scored, StudentWork, answer_groups, baseline_of, baseline_params};
use crate::config::ZeroStdGroups;
use crate::error::{Error, Result};
use crate::grpo::{CompletionMetrics, RewardMetrics, advantages, wst_reward};
use crate::pipeline::Pipeline;
use crate::query::Query;
use crate::score::mean_by_name;
use crate::teacher::{StepMetrics, StepSettings, TeacherSample, TeacherSampling, TrainItem};
use crate::types::mix;

/// What a step produced for the logs.
pub struct StepOutcome {
    /// The metrics record (without step/usage fields, which the loop adds).
    pub metrics: Value,
    /// One completions-table row per (query, instruction).
    pub completions: Vec<Value>,
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
    let requests = todo.iter().map(|q| p.request(q, None, n, &baseline_params(p, q, options.grpo.seed))).collect::<Result<Vec<_>>>()?;
    tracing::info!(queries = todo.len(), "baselines in one bulk request");
    // A bulk request can take hours (the Batch API): Ctrl-C must stop the wait. What was
    // submitted is recorded by the Student, so a resumed run polls it rather than paying again.
    let wait = p.student().generate_many(&requests);
    let answers = match &options.hooks.cancel {
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

pub(super) fn teacher_sampling(options: &TrainOptions, step: usize, attempt: u64) -> TeacherSampling {
    let g = &options.grpo;
    TeacherSampling::from_grpo(g, mix(&[g.seed, step as u64, attempt, 0x7EAC]))
}

fn all_equal(xs: &[f64]) -> bool {
    xs.iter().all(|x| (x - xs[0]).abs() <= 1e-12)
}

/// The queries of a batch that came through the Student's work, and those that did not.
struct Survivors {
    batch: Vec<Query>,
    groups: Vec<Vec<TeacherSample>>,
    scored: Vec<Vec<Scored>>,
    failed: usize,
}

/// Records new baselines and sorts the batch's queries into those whose baseline and every
/// instruction's answers came through and those left out (warned, counted, and checked against
/// `wst.max_failed_fraction` over the recent queries).
fn survivors(batch: &[Query], mut groups: Vec<Vec<TeacherSample>>, work: StudentWork, state: &mut TrainerState, options: &TrainOptions) -> Result<Survivors, StepError> {
    let step = state.step;
    let mut failures: Vec<(usize, Error)> = Vec::new();
    for (i, r) in work.baselines {
        match r {
            Ok(s) => {
                state.baselines.insert(batch[i].id.clone(), s);
            }
            Err(e) => failures.push((i, e)),
        }
    }
    let mut scored: Vec<Vec<Scored>> = Vec::with_capacity(batch.len());
    for (qi, group) in work.answered.into_iter().enumerate() {
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
    let keep: Vec<usize> = (0..batch.len()).filter(|&i| !failed[i]).collect();
    Ok(Survivors {
        batch: keep.iter().map(|&i| batch[i].clone()).collect(),
        groups: keep.iter().map(|&i| std::mem::take(&mut groups[i])).collect(),
        scored: keep.iter().map(|&i| std::mem::take(&mut scored[i])).collect(),
        failed: failures.len(),
    })
}

/// `wst.zero_std_groups = "resample"`: new instructions (from the current policy) for the groups
/// whose instructions all scored the same, once; a resample that fails keeps the first group.
/// Returns which groups had zero spread before, and how many were replaced.
async fn resample_zero_std(p: &Pipeline, s: &mut Survivors, step: usize, options: &TrainOptions) -> Result<(Vec<bool>, usize)> {
    let zero_std_before: Vec<bool> = s.scored.iter().map(|grp| all_equal(&grp.iter().map(Scored::mean).collect::<Vec<_>>())).collect();
    let mut resampled = 0;
    if options.grpo.num_generations > 1 && options.wst.zero_std_groups == ZeroStdGroups::Resample {
        let redo: Vec<usize> = (0..s.batch.len()).filter(|&i| zero_std_before[i]).collect();
        if !redo.is_empty() {
            let qs: Vec<Query> = redo.iter().map(|&i| s.batch[i].clone()).collect();
            let new_groups = p.sample_instructions(&qs, &teacher_sampling(options, step, 1)).await?;
            let asking = Asking::new(options);
            let new_scored = answer_groups(p, &qs, &new_groups, step, 1, &asking).await;
            for ((&i, grp), sc) in redo.iter().zip(new_groups).zip(new_scored) {
                if let Ok(sc) = whole(sc) {
                    s.groups[i] = grp;
                    s.scored[i] = sc;
                    resampled += 1;
                }
            }
        }
    }
    Ok((zero_std_before, resampled))
}

/// The GRPO update on the samples of the groups not skipped (none: no update, `None`).
/// Pipelined samples are weighted by their truncated importance ratio.
async fn update(
    p: &Pipeline,
    groups: &[Vec<TeacherSample>],
    advantages: &[f64],
    skip: &[bool],
    state: &TrainerState,
    options: &TrainOptions,
) -> Result<Option<StepMetrics>, StepError> {
    let g = &options.grpo;
    let gsize = g.num_generations;
    let mut items_owned: Vec<(TeacherSample, f32)> = Vec::new();
    for (qi, grp) in groups.iter().enumerate() {
        if skip[qi] {
            continue;
        }
        for (gi, s) in grp.iter().enumerate() {
            items_owned.push((s.clone(), advantages[qi * gsize + gi] as f32));
        }
    }
    if items_owned.is_empty() {
        return Ok(None);
    }
    options.hooks.callbacks.iter().for_each(|c| c.on_phase(state.step, super::Phase::Update));
    // One learning rate per optimisation step, from the schedule over the whole run.
    let learning_rates = g.learning_rates(state.step, state.total_steps);
    let importance_sampling_cap = options.wst.async_generation.then_some(options.wst.importance_sampling_cap);
    let grpo = g.clone();
    let mut passes = p
        .with_teacher(move |t| {
            let items: Vec<TrainItem<'_>> = items_owned.iter().map(|(s, a)| TrainItem { sample: s, advantage: *a }).collect();
            t.step(&items, &StepSettings { grpo: &grpo, learning_rates: &learning_rates, importance_sampling_cap })
        })
        .await
        .map_err(StepError::DuringUpdate)?;
    // The last optimisation step is logged (with μ > 1 the first is on-policy: no clipping).
    Ok(Some(passes.pop().ok_or_else(|| StepError::DuringUpdate(Error::Teacher("the Teacher took no optimisation step".into())))?))
}

/// Trains step `state.step` on `sampled` (its batch's instructions) and the Student's `work`
/// for them, updating baselines in `state`. A query whose Student calls or rewards failed
/// (after the backend's own retries) is left out of the step and counted in
/// `wst/failed_queries`; more than `wst.max_failed_fraction` of the recent queries failing
/// fails the step.
pub(super) async fn learn(
    p: &Pipeline,
    batch: &[Query],
    sampled: SampledBatch,
    work: StudentWork,
    state: &mut TrainerState,
    options: &TrainOptions,
) -> Result<StepOutcome, StepError> {
    let g = &options.grpo;
    let step = state.step;
    let staleness = step.saturating_sub(sampled.version);
    let mut s = survivors(batch, sampled.groups, work, state, options)?;
    let (zero_std_before, resampled) = resample_zero_std(p, &mut s, step, options).await?;
    let (batch, groups, scored) = (&s.batch[..], &s.groups, &s.scored);
    let mut rewards: Vec<f64> = Vec::new();
    for (qi, grp) in scored.iter().enumerate() {
        for x in grp {
            rewards.push(wst_reward(&x.totals, state.baselines[&batch[qi].id])?);
        }
    }
    if batch.is_empty() {
        // Every query failed and `max_failed_fraction` allows it: nothing to learn from.
        return Ok(StepOutcome { metrics: json!({"wst/failed_queries": s.failed, "wst/step_skipped": true}), completions: Vec::new() });
    }
    let adv = advantages(&rewards, g.num_generations, g.scale_rewards, options.wst.centring)?;
    let reward_metrics = RewardMetrics::new(&rewards, &adv);
    let skip: Vec<bool> = adv.group_std_is_zero.iter().map(|z| *z && options.wst.zero_std_groups == ZeroStdGroups::Skip).collect();
    let step_metrics = update(p, groups, &adv.advantages, &skip, state, options).await?;

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
        "wst/failed_queries": s.failed,
    });
    if options.wst.async_generation {
        m["wst/staleness"] = json!(staleness);
    }
    let values: Vec<&crate::score::Score> = scored.iter().flatten().flat_map(|s| s.values.iter()).collect();
    for (name, mean) in mean_by_name(values.iter().map(|v| &v.values)) {
        m[format!("rewards/{name}/mean")] = json!(mean);
        // Std over answers (unbiased, as torch.std in TRL's `rewards/<name>/std`).
        let xs: Vec<f64> = values.iter().filter_map(|v| v.get(&name)).collect();
        let var = if xs.len() > 1 { xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (xs.len() - 1) as f64 } else { 0.0 };
        m[format!("rewards/{name}/std")] = json!(var.sqrt());
    }
    if let Some(sm) = &step_metrics {
        log_update(&mut m, sm);
    }
    let gsize = g.num_generations;
    let mut rows = Vec::new();
    for (qi, (grp, sc)) in groups.iter().zip(scored).enumerate() {
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

/// The update's metrics under TRL's names.
fn log_update(m: &mut Value, sm: &StepMetrics) {
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
    if let Some(is) = &sm.importance_sampling {
        m["sampling/importance_sampling_ratio/min"] = json!(is.ratio_min);
        m["sampling/importance_sampling_ratio/mean"] = json!(is.ratio_mean);
        m["sampling/importance_sampling_ratio/max"] = json!(is.ratio_max);
        m["sampling/sampling_logp_difference/mean"] = json!(is.logp_difference_mean);
        m["sampling/sampling_logp_difference/max"] = json!(is.logp_difference_max);
    }
}
