//! Builds a [`Pipeline`]; only the Student is required.

use std::sync::{Arc, Mutex};

use super::Pipeline;
use crate::error::{Error, Result};
use crate::reward::{Reward, WeightedReward};
use crate::score::Weights;
use crate::student::{SamplingParams, Student, StudentPrompt};
use crate::teacher::{Teacher, TeacherSampling};

/// Collects the parts of a [`Pipeline`].
#[derive(Default)]
pub struct PipelineBuilder {
    teacher: Option<Box<dyn Teacher>>,
    student: Option<Arc<dyn Student>>,
    rewards: Vec<Arc<dyn Reward>>,
    weights: Weights,
    student_prompt: StudentPrompt,
    student_sampling: SamplingParams,
    teacher_sampling: TeacherSampling,
}

impl PipelineBuilder {
    /// The Teacher that writes instructions.
    pub fn teacher(mut self, teacher: impl Teacher + 'static) -> Self {
        self.teacher = Some(Box::new(teacher));
        self
    }

    /// The Student that answers.
    pub fn student(mut self, student: impl Student + 'static) -> Self {
        self.student = Some(Arc::new(student));
        self
    }

    /// A shared Student.
    pub fn student_arc(mut self, student: Arc<dyn Student>) -> Self {
        self.student = Some(student);
        self
    }

    /// Adds a reward; call several times to combine rewards by [`PipelineBuilder::weights`].
    pub fn reward(mut self, reward: impl Reward + 'static) -> Self {
        self.rewards.push(Arc::new(reward));
        self
    }

    /// Adds a shared reward.
    pub fn reward_arc(mut self, reward: Arc<dyn Reward>) -> Self {
        self.rewards.push(reward);
        self
    }

    /// Weights over reward values (default: 1 on every value).
    pub fn weights(mut self, weights: Weights) -> Self {
        self.weights = weights;
        self
    }

    /// How (query, instruction) becomes the Student's messages.
    pub fn student_prompt(mut self, prompt: StudentPrompt) -> Self {
        self.student_prompt = prompt;
        self
    }

    /// Student sampling settings.
    pub fn student_sampling(mut self, params: SamplingParams) -> Self {
        self.student_sampling = params;
        self
    }

    /// Teacher sampling settings used by [`Pipeline::instruct`].
    pub fn teacher_sampling(mut self, sampling: TeacherSampling) -> Self {
        self.teacher_sampling = sampling;
        self
    }

    /// The pipeline; an error when no Student was given or the weights name unknown values.
    pub fn build(self) -> Result<Pipeline> {
        let student = self.student.ok_or_else(|| Error::invalid("student", "a Pipeline needs a Student"))?;
        let reward = if self.rewards.is_empty() {
            if !self.weights.is_empty() {
                return Err(Error::invalid("weights", "weights were given but no reward"));
            }
            None
        } else {
            Some(WeightedReward::new(self.rewards, self.weights)?)
        };
        Ok(Pipeline {
            teacher: self.teacher.map(|t| Arc::new(Mutex::new(t))),
            student,
            reward,
            student_prompt: self.student_prompt,
            student_sampling: self.student_sampling,
            teacher_sampling: self.teacher_sampling,
        })
    }
}
