//! Advantages. Group-relative, as TRL computes them: A_i = (r_i − mean_group) / (std + 1e-4),
//! where std is the unbiased standard deviation of the group (`group`), of the whole batch
//! (`batch`), or 1 with no scaling (`none`). Centring on the group mean removes any constant
//! shared by a group, so WST's baseline s (the same for every instruction of a query) cancels.
//! [`Centring::None`] keeps r itself (the paper's r = mean − s), scaled the same way, so an
//! instruction is pushed up only when it beats the Student alone.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How rewards are scaled after subtracting the group mean (TRL `scale_rewards`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScaleRewards {
    /// Divide by each group's standard deviation (the original GRPO).
    #[default]
    Group,
    /// Divide by the standard deviation of the whole batch (more robust, per Dr. GRPO).
    Batch,
    /// Do not scale (Dr. GRPO).
    None,
}

/// What is subtracted from each reward before scaling.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Centring {
    /// The group's mean reward (GRPO, TRL): the WST baseline s cancels.
    #[default]
    GroupMean,
    /// Nothing: the reward r = mean − s is the advantage (the Student's own score is the
    /// baseline), scaled by `scale_rewards`.
    None,
}

/// Advantages for a batch of groups, plus the per-group statistics TRL logs.
#[derive(Debug, Clone, PartialEq)]
pub struct Advantages {
    /// One advantage per completion, in input order.
    pub advantages: Vec<f64>,
    /// The standard deviation used for each completion (per group or batch-wide).
    pub std: Vec<f64>,
    /// Whether each group's rewards were all (numerically) equal, so it carries no signal.
    pub group_std_is_zero: Vec<bool>,
}

/// Unbiased standard deviation (n − 1 denominator), as `torch.std`; 0 for a single value.
fn std_unbiased(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return if xs.len() == 1 { f64::NAN } else { 0.0 };
    }
    let m = xs.iter().sum::<f64>() / xs.len() as f64;
    (xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
}

/// Why `centring` and `scale` cannot go together, if they cannot: uncentred rewards divided by
/// each group's spread turn a group whose instructions scored alike (spread 0) into advantages
/// of about 10⁴·r that swamp the batch.
pub fn centring_conflict(centring: Centring, scale: ScaleRewards) -> Option<String> {
    (centring == Centring::None && scale == ScaleRewards::Group).then(|| {
        "centring = \"none\" keeps r = mean − s itself, and grpo.scale_rewards = \"group\" would divide it by each group's spread: a group whose instructions all scored alike (spread 0) would get advantages of about 10⁴·r and swamp the batch. Use grpo.scale_rewards = \"batch\" (r divided by the batch's spread) or \"none\"".to_string()
    })
}

/// Computes advantages for `rewards` (consecutive groups of `group_size`), centred as `centring`
/// says (`Centring::GroupMean` is TRL's) and scaled as `scale` says.
pub fn advantages(rewards: &[f64], group_size: usize, scale: ScaleRewards, centring: Centring) -> Result<Advantages> {
    if let Some(message) = centring_conflict(centring, scale) {
        return Err(Error::invalid("wst.centring", message));
    }
    if group_size < 2 {
        return Err(Error::invalid("num_generations", format!("GRPO needs at least 2 completions per group, got {group_size}")));
    }
    if !rewards.len().is_multiple_of(group_size) {
        return Err(Error::invalid("rewards", format!("{} rewards do not split into groups of {group_size}", rewards.len())));
    }
    if let Some(r) = rewards.iter().find(|r| !r.is_finite()) {
        return Err(Error::invalid("rewards", format!("non-finite reward {r}")));
    }
    let batch_std = std_unbiased(rewards);
    let mut out = Advantages { advantages: Vec::with_capacity(rewards.len()), std: Vec::new(), group_std_is_zero: Vec::new() };
    for group in rewards.chunks(group_size) {
        let mean = group.iter().sum::<f64>() / group.len() as f64;
        let group_std = std_unbiased(group);
        // torch.isclose(std, 0) with its default atol 1e-8.
        out.group_std_is_zero.push(group_std.abs() <= 1e-8);
        let std = match scale {
            ScaleRewards::Group => group_std,
            ScaleRewards::Batch => batch_std,
            ScaleRewards::None => 1.0,
        };
        let shift = if centring == Centring::GroupMean { mean } else { 0.0 };
        for r in group {
            let centred = r - shift;
            let a = if scale == ScaleRewards::None { centred } else { centred / (std + 1e-4) };
            out.advantages.push(a);
            out.std.push(if scale == ScaleRewards::None { group_std } else { std });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-9, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn group_scaling_by_hand() {
        // Group [1, 0, 0, 1]: mean 0.5, unbiased std = sqrt(4 * 0.25 / 3) = 0.577350269.
        let a = advantages(&[1.0, 0.0, 0.0, 1.0], 4, ScaleRewards::Group, Centring::GroupMean).unwrap();
        let s = (1.0f64 / 3.0).sqrt();
        let v = 0.5 / (s + 1e-4);
        close(&a.advantages, &[v, -v, -v, v]);
        assert_eq!(a.group_std_is_zero, vec![false]);
    }

    #[test]
    fn equal_rewards_give_zero_advantages_and_are_flagged() {
        let a = advantages(&[0.3, 0.3, 1.0, 0.0], 2, ScaleRewards::Group, Centring::GroupMean).unwrap();
        close(&a.advantages[..2], &[0.0, 0.0]);
        assert_eq!(a.group_std_is_zero, vec![true, false]);
        // Second group [1, 0]: mean 0.5, std sqrt(0.5) = 0.70710678.
        let v = 0.5 / (0.5f64.sqrt() + 1e-4);
        close(&a.advantages[2..], &[v, -v]);
    }

    #[test]
    fn batch_scaling_uses_group_mean_and_batch_std() {
        // Batch [0, 2, 4, 6]: std = sqrt(((9+1+1+9))/3) = sqrt(20/3). Group means 1 and 5.
        let a = advantages(&[0.0, 2.0, 4.0, 6.0], 2, ScaleRewards::Batch, Centring::GroupMean).unwrap();
        let s = (20.0f64 / 3.0).sqrt() + 1e-4;
        close(&a.advantages, &[-1.0 / s, 1.0 / s, -1.0 / s, 1.0 / s]);
    }

    #[test]
    fn no_scaling_only_centres() {
        let a = advantages(&[0.0, 2.0, 4.0, 6.0], 2, ScaleRewards::None, Centring::GroupMean).unwrap();
        close(&a.advantages, &[-1.0, 1.0, -1.0, 1.0]);
    }

    #[test]
    fn without_centring_the_baseline_matters() {
        // r = mean − s for two instructions of one query: [0.5, 0.1] with s = 0.2 gives
        // [0.3, −0.1]; the same scores with s = 0.4 give [0.1, −0.3]. Group centring maps both
        // to ±0.2 (s cancels); without centring they stay as they are.
        let a = advantages(&[0.3, -0.1], 2, ScaleRewards::None, Centring::None).unwrap();
        close(&a.advantages, &[0.3, -0.1]);
        let b = advantages(&[0.1, -0.3], 2, ScaleRewards::None, Centring::None).unwrap();
        close(&b.advantages, &[0.1, -0.3]);
        let g1 = advantages(&[0.3, -0.1], 2, ScaleRewards::None, Centring::GroupMean).unwrap();
        let g2 = advantages(&[0.1, -0.3], 2, ScaleRewards::None, Centring::GroupMean).unwrap();
        close(&g1.advantages, &g2.advantages);
        // Scaled by the batch's std: r = [0.3, −0.1, 0.2, 0.2] has mean 0.15 and unbiased
        // variance (0.0225 + 0.0625 + 0.0025 + 0.0025) / 3 = 0.03, so each r / (√0.03 + 1e-4).
        let s = advantages(&[0.3, -0.1, 0.2, 0.2], 2, ScaleRewards::Batch, Centring::None).unwrap();
        let d = 0.03f64.sqrt() + 1e-4;
        close(&s.advantages, &[0.3 / d, -0.1 / d, 0.2 / d, 0.2 / d]);
        // Uncentred rewards over a group's spread would blow a zero-spread group up to ~10⁴·r:
        // refused, with the settings that work named.
        let err = advantages(&[0.2, 0.2], 2, ScaleRewards::Group, Centring::None).unwrap_err().to_string();
        assert!(err.contains("scale_rewards = \"batch\"") && err.contains("10⁴"), "{err}");
        // A group where every instruction beat the Student alone still carries a signal.
        let up = advantages(&[0.2, 0.2], 2, ScaleRewards::None, Centring::None).unwrap();
        close(&up.advantages, &[0.2, 0.2]);
        assert_eq!(up.group_std_is_zero, vec![true]);
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(advantages(&[1.0, 2.0, 3.0], 2, ScaleRewards::Group, Centring::GroupMean).is_err());
        assert!(advantages(&[1.0], 1, ScaleRewards::Group, Centring::GroupMean).is_err());
        assert!(advantages(&[1.0, f64::NAN], 2, ScaleRewards::Group, Centring::GroupMean).is_err());
    }
}
