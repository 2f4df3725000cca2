//! The Pipeline: Teacher → Student → Reward, usable before any training.
//!
//! `instruct` asks the Teacher for instructions, `answer` asks the Student (with or without an
//! instruction), `score` runs the rewards. Tensor work (Teacher, rewards) runs on blocking
//! threads so the async runtime keeps serving Student requests.

mod builder;
mod from_config;
pub mod respond;

use std::sync::{Arc, Mutex};

pub use builder::PipelineBuilder;
pub use from_config::rewards_from_config;

use crate::error::{Error, Result};
use crate::instruction::Instruction;
use crate::query::Query;
use crate::reward::{RewardInput, WeightedReward, WeightedScore};
use crate::student::{SamplingParams, Student, StudentPrompt, StudentRequest, StudentSample};
use crate::teacher::{Teacher, TeacherSample, TeacherSampling};

/// A Teacher, a Student and rewards, wired together.
pub struct Pipeline {
    pub(crate) teacher: Option<Arc<Mutex<Box<dyn Teacher>>>>,
    pub(crate) student: Arc<dyn Student>,
    pub(crate) reward: Option<WeightedReward>,
    pub(crate) student_prompt: StudentPrompt,
    pub(crate) student_sampling: SamplingParams,
    pub(crate) teacher_sampling: TeacherSampling,
}

/// What a [`Pipeline`] was built from, handed back by [`Pipeline::into_parts`].
pub struct PipelineParts {
    /// The Teacher (after training: the trained one).
    pub teacher: Option<Box<dyn Teacher>>,
    /// The Student.
    pub student: Arc<dyn Student>,
    /// The weighted rewards.
    pub reward: Option<WeightedReward>,
    /// How (query, instruction) becomes the Student's messages.
    pub student_prompt: StudentPrompt,
    /// The Student's sampling settings.
    pub student_sampling: SamplingParams,
    /// The Teacher's sampling settings.
    pub teacher_sampling: TeacherSampling,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline").field("teacher", &self.teacher.is_some()).field("student", &self.student.name()).field("reward", &self.reward).finish()
    }
}

impl Pipeline {
    /// Starts a [`PipelineBuilder`].
    pub fn builder() -> PipelineBuilder {
        PipelineBuilder::default()
    }

    /// The Student.
    pub fn student(&self) -> &Arc<dyn Student> {
        &self.student
    }

    /// How (query, instruction) becomes the Student's messages.
    pub fn student_prompt(&self) -> &StudentPrompt {
        &self.student_prompt
    }

    /// The Student's sampling settings.
    pub fn student_sampling(&self) -> &SamplingParams {
        &self.student_sampling
    }

    /// Takes the pipeline apart, handing back the Teacher it owns (downcast it to its type with
    /// [`<dyn Teacher>::downcast`](crate::Teacher) to reach `LmTeacher::save_adapter` and the
    /// like). Fails while a clone of the Teacher's handle is still in use elsewhere.
    pub fn into_parts(self) -> Result<PipelineParts> {
        let teacher = match self.teacher {
            None => None,
            Some(t) => {
                let mutex = Arc::try_unwrap(t).map_err(|_| Error::invalid("teacher", "the Teacher is still in use by a running task"))?;
                Some(mutex.into_inner().map_err(|_| Error::Teacher("the Teacher's lock was poisoned by an earlier panic".into()))?)
            }
        };
        Ok(PipelineParts {
            teacher,
            student: self.student,
            reward: self.reward,
            student_prompt: self.student_prompt,
            student_sampling: self.student_sampling,
            teacher_sampling: self.teacher_sampling,
        })
    }

    /// The same Student, rewards and prompts without the Teacher: what a task that only asks
    /// the Student needs, owned, so it can run beside the Teacher's work (pipelined training).
    pub(crate) fn student_side(&self) -> Pipeline {
        Pipeline {
            teacher: None,
            student: self.student.clone(),
            reward: self.reward.clone(),
            student_prompt: self.student_prompt.clone(),
            student_sampling: self.student_sampling.clone(),
            teacher_sampling: self.teacher_sampling.clone(),
        }
    }

    /// Whether a Teacher is attached.
    pub fn has_teacher(&self) -> bool {
        self.teacher.is_some()
    }

    /// Runs `f` on the Teacher on a blocking thread (tensor work must not stall the runtime).
    pub async fn with_teacher<R: Send + 'static>(&self, f: impl FnOnce(&mut dyn Teacher) -> Result<R> + Send + 'static) -> Result<R> {
        let teacher = self.teacher.clone().ok_or_else(|| Error::invalid("teacher", "this pipeline was built without a Teacher"))?;
        tokio::task::spawn_blocking(move || {
            let mut t = teacher.lock().map_err(|_| Error::Teacher("the Teacher's lock was poisoned by an earlier panic".into()))?;
            f(&mut **t)
        })
        .await
        .map_err(|e| Error::Teacher(format!("teacher task failed: {e}")))?
    }

    /// The Teacher's samples (instructions with token ids and log-probs) for each query. A
    /// Teacher that returns other than one group of `num_generations` per query is an error
    /// here, before its samples could be paired with the wrong queries.
    pub async fn sample_instructions(&self, queries: &[Query], sampling: &TeacherSampling) -> Result<Vec<Vec<TeacherSample>>> {
        let teacher = self.teacher.clone().ok_or_else(|| Error::invalid("teacher", "this pipeline was built without a Teacher"))?;
        let (n, g) = (queries.len(), sampling.num_generations);
        let queries = queries.to_vec();
        let sampling = sampling.clone();
        let groups = tokio::task::spawn_blocking(move || {
            let mut t = teacher.lock().map_err(|_| Error::Teacher("the Teacher's lock was poisoned by an earlier panic".into()))?;
            t.sample(&queries, &sampling)
        })
        .await
        .map_err(|e| Error::Teacher(format!("sampling task failed: {e}")))??;
        if groups.len() != n {
            return Err(Error::Teacher(format!("Teacher::sample returned {} groups for {n} queries", groups.len())));
        }
        if let Some((i, grp)) = groups.iter().enumerate().find(|(_, grp)| grp.len() != g) {
            return Err(Error::Teacher(format!("Teacher::sample returned {} instructions for query {i}, expected num_generations = {g}", grp.len())));
        }
        Ok(groups)
    }

    /// `n` instructions from the Teacher for `query`, with the pipeline's Teacher sampling settings.
    pub async fn instruct(&self, query: &Query, n: usize) -> Result<Vec<Instruction>> {
        if n == 0 {
            return Err(Error::invalid("n", "ask for at least one instruction"));
        }
        let sampling = TeacherSampling { num_generations: n, ..self.teacher_sampling.clone() };
        let mut groups = self.sample_instructions(std::slice::from_ref(query), &sampling).await?;
        Ok(groups.pop().unwrap_or_default().into_iter().map(|s| s.instruction).collect())
    }

    /// `n` Student answers to `query`, guided by `instruction` when given.
    pub async fn answer(&self, query: &Query, instruction: Option<&Instruction>, n: usize) -> Result<Vec<StudentSample>> {
        self.answer_with(query, instruction, n, &self.student_sampling).await
    }

    /// The Student request for `n` answers to `query` (with `instruction`, if any): the Student
    /// prompt rendered, `params` as given. Every Student call of the pipeline, one at a time or
    /// in bulk, is built here.
    pub fn request(&self, query: &Query, instruction: Option<&Instruction>, n: usize, params: &SamplingParams) -> Result<StudentRequest> {
        if n == 0 {
            return Err(Error::invalid("n", "ask for at least one answer"));
        }
        Ok(StudentRequest { messages: self.student_prompt.render(query, instruction)?, n, params: params.clone() })
    }

    /// Like [`Pipeline::answer`] with explicit sampling settings.
    pub async fn answer_with(&self, query: &Query, instruction: Option<&Instruction>, n: usize, params: &SamplingParams) -> Result<Vec<StudentSample>> {
        let request = self.request(query, instruction, n, params)?;
        let answers = self.student.generate(&request).await?;
        if answers.len() != n {
            return Err(Error::Student { student: self.student.name().to_string(), message: format!("asked for {n} answers, got {}", answers.len()) });
        }
        Ok(answers)
    }

    /// Scores `answers` to `query` (given `instruction`) with the pipeline's rewards.
    pub async fn score(&self, query: &Query, instruction: Option<&Instruction>, answers: &[StudentSample]) -> Result<Vec<WeightedScore>> {
        let reward = self.reward.clone().ok_or_else(|| Error::invalid("reward", "this pipeline was built without a reward"))?;
        let inputs: Vec<RewardInput> = answers
            .iter()
            .map(|a| RewardInput {
                query: query.text.clone(),
                instruction: instruction.map(|i| i.text.clone()),
                answer: a.text.clone(),
                gold: query.gold.clone(),
                metadata: query.metadata.clone(),
                completion_tokens: Some(a.usage.completion_tokens),
                finish_reason: Some(a.finish_reason.as_str().to_string()),
            })
            .collect();
        tokio::task::spawn_blocking(move || reward.score(&inputs)).await.map_err(|e| Error::Reward { reward: "<pipeline>".into(), message: format!("scoring task failed: {e}") })?
    }
}
