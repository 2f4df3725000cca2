//! The reward and completion metrics TRL logs, computed from one generation batch.

use serde::{Deserialize, Serialize};

use super::advantages::Advantages;

/// Reward statistics of a batch: TRL's `reward`, `reward_std`, `frac_reward_zero_std`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RewardMetrics {
    /// Mean reward over all completions.
    pub reward: f64,
    /// Mean of the standard deviations used to scale advantages.
    pub reward_std: f64,
    /// Fraction of groups whose rewards were all equal (no learning signal).
    pub frac_reward_zero_std: f64,
}

impl RewardMetrics {
    /// Metrics for `rewards` and the advantages computed from them.
    pub fn new(rewards: &[f64], adv: &Advantages) -> Self {
        let n = rewards.len().max(1) as f64;
        let groups = adv.group_std_is_zero.len().max(1) as f64;
        let finite_std: Vec<f64> = adv.std.iter().copied().filter(|s| s.is_finite()).collect();
        RewardMetrics {
            reward: rewards.iter().sum::<f64>() / n,
            reward_std: finite_std.iter().sum::<f64>() / finite_std.len().max(1) as f64,
            frac_reward_zero_std: adv.group_std_is_zero.iter().filter(|z| **z).count() as f64 / groups,
        }
    }
}

/// Completion-length statistics: TRL's `completions/*`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CompletionMetrics {
    /// `completions/mean_length`.
    pub mean_length: f64,
    /// `completions/min_length`.
    pub min_length: f64,
    /// `completions/max_length`.
    pub max_length: f64,
    /// `completions/clipped_ratio`: fraction that hit `max_completion_length`.
    pub clipped_ratio: f64,
    /// `completions/mean_terminated_length`: mean length of those that ended on EOS (0 if none).
    pub mean_terminated_length: f64,
    /// `completions/min_terminated_length` (0 if none ended).
    pub min_terminated_length: f64,
    /// `completions/max_terminated_length` (0 if none ended).
    pub max_terminated_length: f64,
}

impl CompletionMetrics {
    /// Metrics over (length, truncated) pairs.
    pub fn new(completions: &[(usize, bool)]) -> Self {
        if completions.is_empty() {
            return Self::default();
        }
        let n = completions.len() as f64;
        let lens = completions.iter().map(|(l, _)| *l as f64);
        let terminated: Vec<f64> = completions.iter().filter(|(_, t)| !t).map(|(l, _)| *l as f64).collect();
        CompletionMetrics {
            mean_length: lens.clone().sum::<f64>() / n,
            min_length: lens.clone().fold(f64::INFINITY, f64::min),
            max_length: lens.fold(0.0, f64::max),
            clipped_ratio: completions.iter().filter(|(_, t)| *t).count() as f64 / n,
            mean_terminated_length: if terminated.is_empty() { 0.0 } else { terminated.iter().sum::<f64>() / terminated.len() as f64 },
            min_terminated_length: if terminated.is_empty() { 0.0 } else { terminated.iter().copied().fold(f64::INFINITY, f64::min) },
            max_terminated_length: terminated.iter().copied().fold(0.0, f64::max),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpo::{Centring, ScaleRewards, advantages};

    #[test]
    fn reward_metrics_by_hand() {
        let r = [1.0, 1.0, 0.0, 1.0];
        let a = advantages(&r, 2, ScaleRewards::Group, Centring::GroupMean).unwrap();
        let m = RewardMetrics::new(&r, &a);
        assert_eq!(m.reward, 0.75);
        assert_eq!(m.frac_reward_zero_std, 0.5);
        // Group stds 0 and sqrt(0.5), each repeated twice: mean sqrt(0.5)/2.
        assert!((m.reward_std - 0.5f64.sqrt() / 2.0).abs() < 1e-12);
    }

    #[test]
    fn completion_metrics_by_hand() {
        let m = CompletionMetrics::new(&[(10, false), (20, true), (30, false)]);
        assert_eq!((m.mean_length, m.min_length, m.max_length), (20.0, 10.0, 30.0));
        assert!((m.clipped_ratio - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(m.mean_terminated_length, 20.0);
        assert_eq!((m.min_terminated_length, m.max_terminated_length), (10.0, 30.0));
        let none = CompletionMetrics::new(&[(8, true)]);
        assert_eq!((none.min_terminated_length, none.max_terminated_length), (0.0, 0.0));
    }
}
