//! Dynamic batching of the Teacher: requests that arrive together share one sampling batch.
//! The first request waits at most `wait` for others (up to `max_batch`); requests that arrive
//! while a batch is sampling form the next one. A row's instruction does not depend on its
//! batch (each row samples from a stream keyed by its own key), so batching changes no answer.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use wst_sdk::Pipeline;
use wst_sdk::teacher::TeacherSample;

use crate::error::ApiError;
use crate::metrics::Metrics;

struct Job {
    turn: String,
    key: String,
    reply: oneshot::Sender<Result<TeacherSample, ApiError>>,
}

/// The handle of one served Teacher's batching task; the task ends when the handle is dropped.
#[derive(Clone)]
pub struct TeacherBatcher {
    tx: mpsc::UnboundedSender<Job>,
}

impl TeacherBatcher {
    /// Starts the batching task of `pipeline`'s Teacher (on the current tokio runtime).
    pub fn spawn(pipeline: Arc<Pipeline>, wait: Duration, max_batch: usize, metrics: Arc<Metrics>, model: String) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        let max_batch = max_batch.max(1);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                let deadline = tokio::time::Instant::now() + wait;
                while batch.len() < max_batch {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(job)) => batch.push(job),
                        _ => break,
                    }
                }
                // Requests whose clients went away are not sampled.
                batch.retain(|j| !j.reply.is_closed());
                if batch.is_empty() {
                    continue;
                }
                metrics.teacher_batch(&model, batch.len());
                let turns: Vec<(String, String)> = batch.iter().map(|j| (j.turn.clone(), j.key.clone())).collect();
                match pipeline.instruct_turns(&turns, pipeline.teacher_seed()).await {
                    Ok(samples) if samples.len() == batch.len() => {
                        for (job, sample) in batch.into_iter().zip(samples) {
                            let _ = job.reply.send(Ok(sample));
                        }
                    }
                    Ok(samples) => {
                        let e = ApiError::from_sdk(&wst_sdk::Error::Teacher(format!("{} instructions for {} requests", samples.len(), batch.len())));
                        batch.into_iter().for_each(|j| drop(j.reply.send(Err(e.clone()))));
                    }
                    Err(e) => {
                        tracing::warn!(model, error = %e, "the Teacher failed");
                        let e = ApiError::from_sdk(&e);
                        batch.into_iter().for_each(|j| drop(j.reply.send(Err(e.clone()))));
                    }
                }
            }
        });
        TeacherBatcher { tx }
    }

    /// The Teacher's instruction for `turn`, its random stream keyed by `key`.
    pub async fn instruct(&self, turn: String, key: String) -> Result<TeacherSample, ApiError> {
        let (reply, rx) = oneshot::channel();
        let gone = || ApiError::from_sdk(&wst_sdk::Error::Teacher("the Teacher's batching task has stopped".into()));
        self.tx.send(Job { turn, key, reply }).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }
}
