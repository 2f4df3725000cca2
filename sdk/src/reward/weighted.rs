//! Several rewards combined by user weights: the paper's w · [helpful, harmless]. Every value is
//! kept (prefixed by its reward's name when there are several rewards) so each can be logged.

use std::sync::Arc;

use super::{Reward, RewardInput};
use crate::error::{Error, Result};
use crate::score::{Score, Weights};

/// The combined scalar reward for one answer, with every named value it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightedScore {
    /// Σ w · value.
    pub total: f64,
    /// All values, named `reward/value` when several rewards are combined.
    pub values: Score,
}

/// Rewards plus weights over their values.
#[derive(Clone)]
pub struct WeightedReward {
    rewards: Vec<Arc<dyn Reward>>,
    weights: Weights,
}

impl std::fmt::Debug for WeightedReward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.rewards.iter().map(|r| r.name().to_string()).collect();
        f.debug_struct("WeightedReward").field("rewards", &names).field("weights", &self.weights).finish()
    }
}

impl WeightedReward {
    /// Combines `rewards` with `weights`. With one reward, value names are used as they are
    /// (`accuracy`); with several, as `reward/value` (`helpful/score`). Empty weights mean
    /// weight 1 on every value. A weight naming no value is an error.
    pub fn new(rewards: Vec<Arc<dyn Reward>>, weights: Weights) -> Result<Self> {
        if rewards.is_empty() {
            return Err(Error::invalid("rewards", "at least one reward is needed"));
        }
        let mut names = Vec::new();
        let prefixed = rewards.len() > 1;
        for r in &rewards {
            for v in r.value_names() {
                names.push(if prefixed { format!("{}/{v}", r.name()) } else { v });
            }
        }
        let weights = if weights.is_empty() {
            Weights::new(names.iter().map(|n| (n.clone(), 1.0)))
        } else {
            for k in weights.0.keys() {
                if !names.contains(k) {
                    return Err(Error::Config {
                        location: format!("reward weights.{k}"),
                        message: format!("no reward returns a value `{k}`; known values: [{}]", names.join(", ")),
                    });
                }
            }
            weights
        };
        Ok(WeightedReward { rewards, weights })
    }

    /// The weights in use.
    pub fn weights(&self) -> &Weights {
        &self.weights
    }

    /// Scores every input with every reward and combines the values.
    pub fn score(&self, inputs: &[RewardInput]) -> Result<Vec<WeightedScore>> {
        let prefixed = self.rewards.len() > 1;
        let mut merged = vec![Score::default(); inputs.len()];
        for r in &self.rewards {
            let scores = r.score(inputs)?;
            if scores.len() != inputs.len() {
                return Err(Error::Reward {
                    reward: r.name().to_string(),
                    message: format!("returned {} scores for {} inputs", scores.len(), inputs.len()),
                });
            }
            for (m, s) in merged.iter_mut().zip(&scores) {
                m.extend_prefixed(prefixed.then_some(r.name()), s);
            }
        }
        merged
            .into_iter()
            .map(|values| Ok(WeightedScore { total: values.combine(&self.weights)?, values }))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Constant(&'static str, f64);
    impl Reward for Constant {
        fn name(&self) -> &str {
            self.0
        }
        fn value_names(&self) -> Vec<String> {
            vec!["score".into()]
        }
        fn score(&self, inputs: &[RewardInput]) -> Result<Vec<Score>> {
            Ok(inputs.iter().map(|_| Score::single("score", self.1)).collect())
        }
    }

    #[test]
    fn two_rewards_combine_by_weight_and_keep_both_values() {
        let w = WeightedReward::new(
            vec![Arc::new(Constant("helpful", 2.0)), Arc::new(Constant("harmless", -1.0))],
            Weights::new([("helpful/score", 0.25), ("harmless/score", 0.75)]),
        )
        .unwrap();
        let s = w.score(&[RewardInput::default()]).unwrap();
        assert!((s[0].total - (0.5 - 0.75)).abs() < 1e-12);
        assert_eq!(s[0].values.get("helpful/score"), Some(2.0));
        assert_eq!(s[0].values.get("harmless/score"), Some(-1.0));
    }

    #[test]
    fn a_weight_for_an_unknown_value_is_an_error() {
        let err = WeightedReward::new(vec![Arc::new(Constant("a", 1.0))], Weights::new([("acc", 1.0)]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("acc") && err.contains("score"), "{err}");
    }

    #[test]
    fn empty_weights_mean_one_on_every_value() {
        let w = WeightedReward::new(vec![Arc::new(Constant("a", 3.0))], Weights::default()).unwrap();
        assert_eq!(w.score(&[RewardInput::default()]).unwrap()[0].total, 3.0);
    }
}
