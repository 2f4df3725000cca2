//! The Teacher: the small model that writes instructions m1 and is trained with GRPO.
//!
//! Execution model: [`Teacher::sample`] writes G instructions per query and returns, for each,
//! its token ids and the per-token log-probs of the sampler. After the Student's answers are
//! scored, [`Teacher::step`] takes the samples with their advantages and the trainer's
//! [`StepSettings`] (the run's one [`GrpoConfig`] and the learning rate of each optimisation
//! step) and takes `num_iterations` optimisation steps on them. A Teacher holds no GRPO
//! settings of its own, so sampling, log-probs and the update cannot disagree. Compute is
//! synchronous; async callers run it on blocking threads.

mod card;
pub mod chat;
mod lm;
pub mod model;
pub mod optimizer;
pub mod sampler;

use serde::{Deserialize, Serialize};

pub use card::{CARD_FILE, CardSampling, TeacherCard};
pub use chat::ChatTokenizer;
pub use lm::{LmTeacher, TeacherOptions, parse_device};

use std::path::Path;

use crate::config::GrpoConfig;
use crate::error::Result;
use crate::instruction::Instruction;
use crate::query::Query;

/// Sampling settings for the Teacher; names follow TRL's `GRPOConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeacherSampling {
    /// Instructions per query (TRL `num_generations`, the paper's G).
    pub num_generations: usize,
    /// Softmax temperature (0 = greedy).
    pub temperature: f64,
    /// Nucleus sampling mass.
    pub top_p: f64,
    /// Top-k cut-off (None disables it).
    pub top_k: Option<usize>,
    /// Maximum tokens per instruction (TRL `max_completion_length`).
    pub max_completion_length: usize,
    /// Longest prompt in tokens (TRL `max_prompt_length`); longer prompts keep their end.
    pub max_prompt_length: usize,
    /// Seed; the same seed and weights give the same instructions.
    pub seed: u64,
}

impl TeacherSampling {
    /// The sampling settings of a GRPO configuration, with `seed`.
    pub fn from_grpo(g: &crate::config::GrpoConfig, seed: u64) -> Self {
        TeacherSampling {
            num_generations: g.num_generations,
            temperature: g.temperature,
            top_p: g.top_p,
            top_k: g.top_k,
            max_completion_length: g.max_completion_length,
            max_prompt_length: g.max_prompt_length,
            seed,
        }
    }
}

impl Default for TeacherSampling {
    fn default() -> Self {
        // The same defaults as `GrpoConfig`, so a Teacher samples alike in and out of training.
        TeacherSampling::from_grpo(&crate::config::GrpoConfig::default(), 42)
    }
}

/// One instruction the Teacher wrote, with what GRPO needs to train on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeacherSample {
    /// The decoded instruction.
    pub instruction: Instruction,
    /// The prompt's token ids (chat template applied).
    pub prompt_ids: Vec<u32>,
    /// The instruction's token ids, EOS included when generation stopped on it.
    pub completion_ids: Vec<u32>,
    /// Log-prob of each completion token under the policy that sampled it.
    pub logprobs: Vec<f32>,
    /// Whether generation hit `max_completion_length` instead of stopping.
    pub truncated: bool,
}

/// One sample with its advantage, for a GRPO step.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainItem<'a> {
    /// The sample (its `logprobs` are the old policy's).
    pub sample: &'a TeacherSample,
    /// Its group-normalised advantage.
    pub advantage: f32,
}

/// What a GRPO update needs from its trainer: the run's GRPO configuration (loss, clipping, β,
/// temperature, micro-batch size, optimiser) and the learning rate of each of its
/// `num_iterations` optimisation steps, from the trainer's schedule.
#[derive(Debug, Clone, Copy)]
pub struct StepSettings<'a> {
    /// The run's GRPO settings.
    pub grpo: &'a GrpoConfig,
    /// Learning rate of each optimisation step (as many as `grpo.num_iterations`).
    pub learning_rates: &'a [f64],
    /// When set, samples are weighted by their truncated importance ratio against the log-probs
    /// recorded when they were sampled, capped at this value (pipelined training, whose
    /// samples come from an older policy); `None` treats them as the current policy's.
    pub importance_sampling_cap: Option<f64>,
}

/// What one optimisation step measured; names follow TRL's logs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepMetrics {
    /// The GRPO loss.
    pub loss: f64,
    /// Mean k3 KL to the reference (0 when `beta` = 0 and no reference is kept).
    pub kl: f64,
    /// Fraction of tokens clipped below 1 − ε with negative advantage.
    pub clip_ratio_low_mean: f64,
    /// Fraction of tokens clipped above 1 + ε_high with positive advantage.
    pub clip_ratio_high_mean: f64,
    /// Fraction of tokens clipped either way.
    pub clip_ratio_region_mean: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Learning rate used for this step.
    pub learning_rate: f64,
    /// Mean per-token entropy of the policy over the completion tokens (TRL's `entropy`).
    pub entropy: f64,
    /// The importance weights' statistics, when the step weighted its samples.
    #[serde(default)]
    pub importance_sampling: Option<crate::grpo::ImportanceStats>,
}

/// A model that writes instructions and learns from advantages. `Any`, so that a boxed Teacher
/// handed back by [`crate::Pipeline::into_parts`] can be turned back into its own type.
pub trait Teacher: Send + std::any::Any {
    /// `sampling.num_generations` instructions for each query, in query order. What a query
    /// gets should depend on the seed, its id and the weights, not on the other queries in
    /// the call, so that batching (a server's, an evaluation's) changes nothing.
    fn sample(&mut self, queries: &[Query], sampling: &TeacherSampling) -> Result<Vec<Vec<TeacherSample>>>;

    /// What makes this Teacher the one it is (its model, prompts, adapter settings), recorded in
    /// checkpoints so that `--resume` with another Teacher is refused. Empty: not recorded.
    fn identity(&self) -> String {
        String::new()
    }

    /// Gets ready to train with `grpo` before the first step (and before a checkpoint is
    /// restored): a model Teacher keeps a frozen reference of its initial weights when β > 0.
    fn prepare_training(&mut self, grpo: &GrpoConfig) -> Result<()> {
        let _ = grpo;
        Ok(())
    }

    /// `settings.learning_rates.len()` optimisation steps over `items` (one generation batch,
    /// which may span several queries): the first is on-policy (ratio 1), later ones clip
    /// against the log-probs the first computed. One metrics record per optimisation step.
    fn step(&mut self, items: &[TrainItem<'_>], settings: &StepSettings<'_>) -> Result<Vec<StepMetrics>>;

    /// Saves what resuming training needs (weights being trained, optimiser state) into `dir`.
    fn save_checkpoint(&self, dir: &Path) -> Result<()> {
        let _ = dir;
        Err(crate::error::Error::Teacher("this Teacher cannot save checkpoints".into()))
    }

    /// Restores what [`Teacher::save_checkpoint`] wrote.
    fn load_checkpoint(&mut self, dir: &Path) -> Result<()> {
        let _ = dir;
        Err(crate::error::Error::Teacher("this Teacher cannot load checkpoints".into()))
    }

    /// Saves the trained model for inference (a Hugging Face folder for model Teachers).
    fn save_pretrained(&self, dir: &Path) -> Result<()> {
        let _ = dir;
        Err(crate::error::Error::Teacher("this Teacher cannot be saved".into()))
    }
}

impl<T: Teacher + ?Sized> Teacher for Box<T> {
    fn sample(&mut self, queries: &[Query], sampling: &TeacherSampling) -> Result<Vec<Vec<TeacherSample>>> {
        (**self).sample(queries, sampling)
    }
    fn identity(&self) -> String {
        (**self).identity()
    }
    fn prepare_training(&mut self, grpo: &GrpoConfig) -> Result<()> {
        (**self).prepare_training(grpo)
    }
    fn step(&mut self, items: &[TrainItem<'_>], settings: &StepSettings<'_>) -> Result<Vec<StepMetrics>> {
        (**self).step(items, settings)
    }
    fn save_checkpoint(&self, dir: &Path) -> Result<()> {
        (**self).save_checkpoint(dir)
    }
    fn load_checkpoint(&mut self, dir: &Path) -> Result<()> {
        (**self).load_checkpoint(dir)
    }
    fn save_pretrained(&self, dir: &Path) -> Result<()> {
        (**self).save_pretrained(dir)
    }
}

impl dyn Teacher {
    /// The Teacher as its concrete type, when it is one (`LmTeacher`, a user's own).
    pub fn downcast_ref<T: Teacher>(&self) -> Option<&T> {
        (self as &dyn std::any::Any).downcast_ref::<T>()
    }

    /// Like [`downcast_ref`](Self::downcast_ref), mutably (to call `save_adapter` and friends).
    pub fn downcast_mut<T: Teacher>(&mut self) -> Option<&mut T> {
        (self as &mut dyn std::any::Any).downcast_mut::<T>()
    }

    /// The boxed Teacher as its concrete type, or the box back when it is another type.
    pub fn downcast<T: Teacher>(self: Box<Self>) -> std::result::Result<Box<T>, Box<dyn Teacher>> {
        if (&*self as &dyn std::any::Any).is::<T>() {
            let any: Box<dyn std::any::Any> = self;
            Ok(any.downcast::<T>().unwrap_or_else(|_| unreachable!("checked with is::<T>() above")))
        } else {
            Err(self)
        }
    }
}
