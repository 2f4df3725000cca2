//! Training knobs with TRL's `GRPOConfig` names and defaults, plus WST's own.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::grpo::{Centring, LossType, ScaleRewards};

/// GRPO settings. Names and defaults follow TRL's `GRPOConfig` so TRL users feel at home.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GrpoConfig {
    /// Instructions sampled per query, the paper's G (TRL default 8).
    pub num_generations: usize,
    /// Completions per forward/backward micro-batch (a memory knob: the loss is normalised over
    /// the whole batch, so it does not change the objective); a step covers
    /// per_device_train_batch_size × gradient_accumulation_steps / num_generations queries.
    pub per_device_train_batch_size: usize,
    /// Micro-batches accumulated before each optimiser step.
    pub gradient_accumulation_steps: usize,
    /// Optimisation steps on each generated batch (TRL's μ); after the first, the ratio is
    /// clipped against the first step's log-probs. The learning-rate schedule counts them all.
    pub num_iterations: usize,
    /// Peak learning rate of AdamW (TRL default 1e-6).
    pub learning_rate: f64,
    /// Learning-rate schedule: `linear` (decay to 0), `cosine` or `constant`.
    pub lr_scheduler_type: LrScheduler,
    /// Fraction of steps spent warming the learning rate up from 0.
    pub warmup_ratio: f64,
    /// AdamW β1.
    pub adam_beta1: f64,
    /// AdamW β2.
    pub adam_beta2: f64,
    /// AdamW ε.
    pub adam_epsilon: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Clip the global gradient norm to this value (0 disables clipping).
    pub max_grad_norm: f64,
    /// KL coefficient β against the frozen reference Teacher; 0 keeps no reference (TRL default 0).
    pub beta: f64,
    /// Lower clip range ε of the ratio.
    pub epsilon: f64,
    /// Upper clip range (DAPO's clip-higher); unset means equal to `epsilon`.
    pub epsilon_high: Option<f64>,
    /// How per-token losses are averaged: grpo | bnpo | dr_grpo | dapo (TRL default dapo).
    /// Every type is normalised over the whole generation batch, so `bnpo` equals `dapo` here;
    /// TRL's `bnpo` normalises per micro-batch instead, and differs when micro-batches hold
    /// different numbers of tokens.
    pub loss_type: LossType,
    /// How rewards are scaled after centring: group | batch | none. With group-mean centring
    /// (`wst.centring`, the default) WST's baseline s cancels whatever the scaling.
    pub scale_rewards: ScaleRewards,
    /// Maximum tokens in one instruction (512, as TRL 1.16's GRPOConfig and wst's Teacher
    /// sampling defaults).
    pub max_completion_length: usize,
    /// Leave instructions cut at `max_completion_length` out of the loss (TRL's
    /// `mask_truncated_completions`): their reward judges a text the Teacher did not finish.
    pub mask_truncated_completions: bool,
    /// Maximum prompt tokens given to the Teacher (longer prompts are truncated from the left).
    pub max_prompt_length: usize,
    /// Teacher sampling temperature.
    pub temperature: f64,
    /// Teacher nucleus sampling mass.
    pub top_p: f64,
    /// Teacher top-k (unset disables it).
    pub top_k: Option<usize>,
    /// Total optimisation steps; unset means `num_train_epochs` passes over the training data.
    pub max_steps: Option<usize>,
    /// Passes over the training data when `max_steps` is unset.
    pub num_train_epochs: f64,
    /// Seed for data order, sampling and initialisation.
    pub seed: u64,
}

impl Default for GrpoConfig {
    fn default() -> Self {
        GrpoConfig {
            num_generations: 8,
            per_device_train_batch_size: 8,
            gradient_accumulation_steps: 1,
            num_iterations: 1,
            learning_rate: 1e-6,
            lr_scheduler_type: LrScheduler::Linear,
            warmup_ratio: 0.0,
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            adam_epsilon: 1e-8,
            weight_decay: 0.0,
            max_grad_norm: 1.0,
            beta: 0.0,
            epsilon: 0.2,
            epsilon_high: None,
            loss_type: LossType::Dapo,
            scale_rewards: ScaleRewards::Group,
            max_completion_length: 512,
            mask_truncated_completions: false,
            max_prompt_length: 512,
            temperature: 1.0,
            top_p: 1.0,
            top_k: None,
            max_steps: None,
            num_train_epochs: 1.0,
            seed: 42,
        }
    }
}

impl GrpoConfig {
    /// Optimisation steps a run of `generation_steps` takes: `num_iterations` per generation
    /// batch (TRL's μ), each counted by the learning-rate schedule.
    pub fn optimizer_steps(&self, generation_steps: usize) -> usize {
        generation_steps.max(1) * self.num_iterations.max(1)
    }

    /// The learning rates of the `num_iterations` optimisation steps of generation step `step`
    /// (0-based) in a run of `generation_steps`: the schedule and its warm-up count optimiser
    /// steps, as transformers' do, so μ > 1 neither halves the warm-up nor ends the decay early.
    pub fn learning_rates(&self, step: usize, generation_steps: usize) -> Vec<f64> {
        let mu = self.num_iterations.max(1);
        let total = self.optimizer_steps(generation_steps);
        let warmup = (self.warmup_ratio * total as f64).ceil() as usize;
        (0..mu).map(|pass| self.lr_scheduler_type.lr(self.learning_rate, step * mu + pass, total, warmup)).collect()
    }
}

/// Learning-rate schedules, as in transformers' `lr_scheduler_type`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LrScheduler {
    /// Linear decay from the peak to 0 after warm-up.
    #[default]
    Linear,
    /// Half-cosine decay from the peak to 0 after warm-up.
    Cosine,
    /// Constant after warm-up.
    Constant,
}

impl LrScheduler {
    /// The learning rate at `step` (0-based) of `total` steps, with `warmup` warm-up steps.
    pub fn lr(self, peak: f64, step: usize, total: usize, warmup: usize) -> f64 {
        if step < warmup {
            return peak * (step + 1) as f64 / warmup as f64;
        }
        let span = total.saturating_sub(warmup).max(1) as f64;
        let progress = ((step - warmup) as f64 / span).min(1.0);
        match self {
            LrScheduler::Constant => peak,
            LrScheduler::Linear => peak * (1.0 - progress),
            LrScheduler::Cosine => peak * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
        }
    }
}

/// What to do with groups whose rewards are all equal (they carry no GRPO signal).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ZeroStdGroups {
    /// Train on them anyway (their advantages are 0; TRL's behaviour).
    #[default]
    Keep,
    /// Leave them out of the step.
    Skip,
    /// Sample new instructions for them once more before giving up.
    Resample,
}

/// WST's own knobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct WstSettings {
    /// Student answers per (query, instruction), the paper's K (10 for math, 1 for HH-RLHF).
    pub student_samples: usize,
    /// Student answers without instructions used for the baseline s (computed once, cached).
    pub baseline_samples: usize,
    /// Groups whose rewards are all equal: keep | skip | resample. Their fraction is always logged.
    pub zero_std_groups: ZeroStdGroups,
    /// Student requests in flight at once.
    pub max_concurrency: usize,
    /// What advantages are measured from: `group_mean` (GRPO, TRL; the Student's baseline s is
    /// the same for every instruction of a query and cancels, so it is only logged) or `none`
    /// (the paper's r = mean − s itself, scaled by `grpo.scale_rewards`: an instruction is
    /// reinforced only when it beats the Student alone).
    pub centring: Centring,
    /// Share of the recent queries that may fail (Student or reward errors left after the
    /// backend's retries): a failed query is left out of its step, counted in
    /// `wst/failed_queries`. The share is taken over the last `max(10, queries per step)`
    /// queries (the run's first ones count as healthy until that many were asked), so one
    /// transient failure never stops a run of one query per step; beyond it the run writes a
    /// checkpoint and stops with the first error.
    pub max_failed_fraction: f64,
    /// Pipelined training (the idea of TRL's async GRPO and verl's one-step-off): the
    /// instructions of the next steps are sampled and answered by the Student while this step's
    /// update runs, so neither side waits for the other. Samples are then up to
    /// `max_staleness` policy steps old and are weighted by their truncated importance ratio.
    /// Off by default, so that runs stay exactly as the sequential loop makes them; a pipelined
    /// run is itself reproducible and resumes exactly.
    pub async_generation: bool,
    /// With `async_generation`: how many steps ahead instructions are sampled, i.e. how many
    /// policy updates older than the trained policy a step's samples may be (at least 1).
    pub max_staleness: usize,
    /// With `async_generation`: the cap of the per-token importance weight
    /// min(π_θ/π_sampler, cap) (TRL's `vllm_importance_sampling_cap`).
    pub importance_sampling_cap: f64,
}

/// TRL's default `vllm_importance_sampling_cap`.
pub const DEFAULT_IMPORTANCE_SAMPLING_CAP: f64 = 2.0;

impl Default for WstSettings {
    fn default() -> Self {
        WstSettings {
            student_samples: 10,
            baseline_samples: 10,
            zero_std_groups: ZeroStdGroups::Keep,
            max_concurrency: 16,
            centring: Centring::GroupMean,
            max_failed_fraction: 0.5,
            async_generation: false,
            max_staleness: 1,
            importance_sampling_cap: DEFAULT_IMPORTANCE_SAMPLING_CAP,
        }
    }
}

impl WstSettings {
    /// Checks the values that types alone cannot; the error names the field (`wst.…`). Both
    /// `WstConfig::validate` and training call it, so `wst config check` refuses what training would.
    pub fn validate(&self) -> crate::error::Result<()> {
        let bad = |field: &str, message: &str| Err(crate::error::Error::Config { location: format!("wst.{field}"), message: message.to_string() });
        if self.student_samples == 0 {
            return bad("student_samples", "the Student must answer at least once per instruction");
        }
        if self.baseline_samples == 0 {
            return bad("baseline_samples", "the baseline needs at least one Student answer");
        }
        if self.max_concurrency == 0 {
            return bad("max_concurrency", "must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.max_failed_fraction) {
            return bad("max_failed_fraction", "must be in [0, 1]");
        }
        if self.async_generation && self.max_staleness == 0 {
            return bad("max_staleness", "pipelined training samples at least one step ahead: use 1 or more, or turn async_generation off");
        }
        if !(self.importance_sampling_cap >= 1.0 && self.importance_sampling_cap.is_finite()) {
            return bad("importance_sampling_cap", "must be a finite value >= 1 (a smaller cap would shrink even on-policy tokens' weights)");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_by_hand() {
        assert_eq!(LrScheduler::Linear.lr(1.0, 0, 10, 0), 1.0);
        assert_eq!(LrScheduler::Linear.lr(1.0, 5, 10, 0), 0.5);
        assert_eq!(LrScheduler::Linear.lr(1.0, 0, 10, 2), 0.5);
        assert_eq!(LrScheduler::Linear.lr(1.0, 1, 10, 2), 1.0);
        assert!((LrScheduler::Cosine.lr(1.0, 5, 10, 0) - 0.5).abs() < 1e-12);
        assert_eq!(LrScheduler::Constant.lr(2.0, 9, 10, 0), 2.0);
    }

    #[test]
    fn the_schedule_counts_optimiser_steps_when_each_batch_is_reused() {
        // 4 generation steps × μ = 2 = 8 optimiser steps; warm-up 25% = 2 of them; linear decay
        // over the 6 after: 1, 5/6, 4/6, 3/6, 2/6, 1/6.
        let g = GrpoConfig { num_iterations: 2, warmup_ratio: 0.25, learning_rate: 1.0, ..Default::default() };
        let all: Vec<f64> = (0..4).flat_map(|s| g.learning_rates(s, 4)).collect();
        let want = [0.5, 1.0, 1.0, 5.0 / 6.0, 4.0 / 6.0, 3.0 / 6.0, 2.0 / 6.0, 1.0 / 6.0];
        assert_eq!(all.len(), 8);
        for (a, w) in all.iter().zip(want) {
            assert!((a - w).abs() < 1e-12, "{all:?}");
        }
        // μ = 1 keeps one rate per generation step.
        let one = GrpoConfig { learning_rate: 1.0, ..Default::default() };
        assert_eq!(one.learning_rates(5, 10), vec![0.5]);
    }
}
