//! The Student's side of a step: the baselines of queries seen for the first time, then K
//! answers to each sampled instruction, scored. It runs as its own task, so that pipelined
//! training (`wst.async_generation`) can keep the Student busy with the next steps' instructions
//! while the Teacher's update runs; the sequential loop runs the same task and waits for it.

use std::collections::VecDeque;

use futures::StreamExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::config::WstSettings;
use crate::error::{Error, Result};
use crate::pipeline::Pipeline;
use crate::query::Query;
use crate::score::Score;
use crate::student::{SamplingParams, StudentSample};
use crate::teacher::TeacherSample;
use crate::types::{hash_str, mix};

/// A step's instructions, sampled and not yet trained on. Checkpoints keep those in flight, so
/// that a resumed pipelined run trains on what the uninterrupted run would have.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampledBatch {
    /// The step (counted from 0) that trains on it.
    pub step: usize,
    /// The policy that sampled it: how many steps had been trained by then.
    pub version: usize,
    /// G instructions per query of the step's batch, with their token ids and sampling log-probs.
    pub groups: Vec<Vec<TeacherSample>>,
}

/// The Student's scores for one instruction: the weighted total and named values per answer.
pub(super) struct Scored {
    pub(super) answers: Vec<String>,
    pub(super) totals: Vec<f64>,
    pub(super) values: Vec<Score>,
}

impl Scored {
    pub(super) fn mean(&self) -> f64 {
        self.totals.iter().sum::<f64>() / self.totals.len().max(1) as f64
    }
}

/// What the Student did for one batch: each new query's baseline (by index in the batch) and
/// every (query, instruction)'s scored answers; each outcome stands alone.
pub(super) struct StudentWork {
    pub(super) baselines: Vec<(usize, Result<f64>)>,
    pub(super) answered: Vec<Vec<Result<Scored>>>,
}

/// What the seeds of a run's Student requests derive from, and how many answers it asks for.
#[derive(Clone)]
pub(super) struct Asking {
    pub(super) seed: u64,
    pub(super) wst: WstSettings,
}

impl Asking {
    /// What a training run's options say.
    pub(super) fn new(options: &super::TrainOptions) -> Self {
        Asking { seed: options.grpo.seed, wst: options.wst.clone() }
    }
}

/// The Student's baseline s(q): mean reward of `baseline_samples` answers without instructions.
/// Its seed depends only on the run seed and the query id, so the response cache serves it
/// across runs.
async fn baseline(p: &Pipeline, q: &Query, asking: &Asking) -> Result<f64> {
    let n = asking.wst.baseline_samples.max(1);
    let answers = p.answer_with(q, None, n, &baseline_params(p, q, asking.seed)).await?;
    baseline_of(p, q, &answers).await
}

pub(super) fn baseline_params(p: &Pipeline, q: &Query, seed: u64) -> SamplingParams {
    SamplingParams { seed: Some(mix(&[seed, hash_str(&q.id), 0xBA5E])), ..p.student_sampling().clone() }
}

pub(super) async fn baseline_of(p: &Pipeline, q: &Query, answers: &[StudentSample]) -> Result<f64> {
    let scores = p.score(q, None, answers).await?;
    Ok(scores.iter().map(|s| s.total).sum::<f64>() / scores.len().max(1) as f64)
}

/// K answers to each (query, instruction) pair, scored; requests run concurrently. Each
/// pair's outcome stands alone, so one failed request does not discard the others.
pub(super) async fn answer_groups(p: &Pipeline, batch: &[Query], groups: &[Vec<TeacherSample>], step: usize, attempt: u64, asking: &Asking) -> Vec<Vec<Result<Scored>>> {
    let k = asking.wst.student_samples.max(1);
    // Boxed, so that the task running them is `Send` without higher-ranked lifetime trouble.
    let mut jobs: Vec<BoxFuture<'_, Result<Scored>>> = Vec::new();
    for (q, group) in batch.iter().zip(groups) {
        for (gi, s) in group.iter().enumerate() {
            jobs.push(Box::pin(async move {
                let params = SamplingParams { seed: Some(mix(&[asking.seed, step as u64, hash_str(&q.id), gi as u64, attempt])), ..p.student_sampling().clone() };
                let answers = p.answer_with(q, Some(&s.instruction), k, &params).await?;
                let scores = p.score(q, Some(&s.instruction), &answers).await?;
                Ok::<_, Error>(Scored {
                    answers: answers.into_iter().map(|a| a.text).collect(),
                    totals: scores.iter().map(|s| s.total).collect(),
                    values: scores.into_iter().map(|s| s.values).collect(),
                })
            }));
        }
    }
    let flat: Vec<Result<Scored>> = futures::stream::iter(jobs).buffered(asking.wst.max_concurrency.max(1)).collect().await;
    let mut flat = flat.into_iter();
    groups.iter().map(|group| flat.by_ref().take(group.len()).collect()).collect()
}

/// The baselines of the `missing` queries (concurrently), then the answers to `groups`.
async fn work(p: &Pipeline, batch: &[Query], groups: &[Vec<TeacherSample>], missing: &[usize], step: usize, asking: &Asking) -> StudentWork {
    let jobs: Vec<BoxFuture<'_, (usize, Result<f64>)>> =
        missing.iter().map(|&i| -> BoxFuture<'_, _> { Box::pin(async move { (i, baseline(p, &batch[i], asking).await) }) }).collect();
    let baselines: Vec<(usize, Result<f64>)> = futures::stream::iter(jobs).buffered(asking.wst.max_concurrency.max(1)).collect().await;
    let answered = answer_groups(p, batch, groups, step, 0, asking).await;
    StudentWork { baselines, answered }
}

/// A sampled batch whose Student work runs as its own task (aborted when this is dropped, so a
/// stopped or failed run leaves no requests running behind it).
pub(super) struct InFlight {
    pub(super) batch: SampledBatch,
    /// Whether the task computes baselines (for the progress report).
    pub(super) has_baselines: bool,
    task: tokio::task::JoinHandle<StudentWork>,
}

impl InFlight {
    /// Starts the Student work for `batch` (the queries of its step): the baselines of the
    /// queries `known` lacks, then the answers.
    pub(super) fn start(p: &Pipeline, queries: Vec<Query>, batch: SampledBatch, known: &std::collections::BTreeMap<String, f64>, asking: &Asking) -> Self {
        let missing: Vec<usize> = (0..queries.len()).filter(|&i| !known.contains_key(&queries[i].id)).collect();
        let (handle, groups, asking, step, has_baselines) = (p.student_side(), batch.groups.clone(), asking.clone(), batch.step, !missing.is_empty());
        let task = tokio::spawn(async move { work(&handle, &queries, &groups, &missing, step, &asking).await });
        InFlight { batch, has_baselines, task }
    }

    /// The finished work (waiting for it if needed).
    pub(super) async fn finish(&mut self) -> Result<StudentWork> {
        let step = self.batch.step + 1;
        (&mut self.task).await.map_err(|e| Error::Student { student: "training".into(), message: format!("the Student's task for step {step} failed: {e}") })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The batches in flight, oldest (the next step's) first.
pub(super) type Queue = VecDeque<InFlight>;

/// What a checkpoint keeps of the batches in flight (`TrainerState::pending`).
pub(super) fn batches(queue: &Queue) -> Vec<SampledBatch> {
    queue.iter().map(|f| f.batch.clone()).collect()
}
