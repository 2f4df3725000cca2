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

/// The weighted sum over the values an answer has. A weighted value the reward declared but left
/// out is "no score" (a TRL reward function's `None`) and adds nothing, as TRL's `nansum` does;
/// an answer with no weighted value at all is an error, never a silent zero.
fn combine_scored(values: &Score, weights: &Weights) -> Result<f64> {
    let scored = Weights(weights.0.iter().filter(|(k, _)| values.get(k).is_some()).map(|(k, w)| (k.clone(), *w)).collect());
    if scored.is_empty() {
        let wanted: Vec<_> = weights.0.keys().cloned().collect();
        return Err(Error::Reward {
            reward: wanted.join(", "),
            message: format!("no weighted value was scored for this answer (each returned None); weighted: [{}]", wanted.join(", ")),
        });
    }
    values.combine(&scored)
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
    /// weight 1 on each reward's primary (first) value, so a plugin's side values (the length
    /// plugin's word count) are logged but not rewarded. A weight naming no value, and two
    /// rewards with one name (their values would overwrite each other), are errors.
    pub fn new(rewards: Vec<Arc<dyn Reward>>, weights: Weights) -> Result<Self> {
        if rewards.is_empty() {
            return Err(Error::invalid("rewards", "at least one reward is needed"));
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(r) = rewards.iter().find(|r| !seen.insert(r.name().to_string())) {
            return Err(Error::Config {
                location: "rewards".into(),
                message: format!("two rewards are named `{}`: their values would overwrite each other; give each a distinct `name`", r.name()),
            });
        }
        let mut names = Vec::new();
        let mut primary = Vec::new();
        let prefixed = rewards.len() > 1;
        for r in &rewards {
            for (i, v) in r.value_names().into_iter().enumerate() {
                let name = if prefixed { format!("{}/{v}", r.name()) } else { v };
                if i == 0 {
                    primary.push(name.clone());
                }
                names.push(name);
            }
        }
        let weights = if weights.is_empty() {
            Weights::new(primary.iter().map(|n| (n.clone(), 1.0)))
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

    /// The combined rewards' names, in order.
    pub fn reward_names(&self) -> Vec<String> {
        self.rewards.iter().map(|r| r.name().to_string()).collect()
    }

    /// Scores every input with every reward and combines the values.
    pub fn score(&self, inputs: &[RewardInput]) -> Result<Vec<WeightedScore>> {
        let prefixed = self.rewards.len() > 1;
        let mut merged = vec![Score::default(); inputs.len()];
        for r in &self.rewards {
            let scores = r.score(inputs)?;
            if scores.len() != inputs.len() {
                return Err(Error::Reward { reward: r.name().to_string(), message: format!("returned {} scores for {} inputs", scores.len(), inputs.len()) });
            }
            for (m, s) in merged.iter_mut().zip(&scores) {
                m.extend_prefixed(prefixed.then_some(r.name()), s);
            }
        }
        merged.into_iter().map(|values| Ok(WeightedScore { total: combine_scored(&values, &self.weights)?, values })).collect()
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
        let w =
            WeightedReward::new(vec![Arc::new(Constant("helpful", 2.0)), Arc::new(Constant("harmless", -1.0))], Weights::new([("helpful/score", 0.25), ("harmless/score", 0.75)]))
                .unwrap();
        let s = w.score(&[RewardInput::default()]).unwrap();
        assert!((s[0].total - (0.5 - 0.75)).abs() < 1e-12);
        assert_eq!(s[0].values.get("helpful/score"), Some(2.0));
        assert_eq!(s[0].values.get("harmless/score"), Some(-1.0));
    }

    #[test]
    fn a_weight_for_an_unknown_value_is_an_error() {
        let err = WeightedReward::new(vec![Arc::new(Constant("a", 1.0))], Weights::new([("acc", 1.0)])).unwrap_err().to_string();
        assert!(err.contains("acc") && err.contains("score"), "{err}");
    }

    #[test]
    fn empty_weights_mean_one_on_each_primary_value() {
        let w = WeightedReward::new(vec![Arc::new(Constant("a", 3.0))], Weights::default()).unwrap();
        assert_eq!(w.score(&[RewardInput::default()]).unwrap()[0].total, 3.0);
        // A length-like reward: its word count is logged, only `within_limit` is rewarded.
        struct Length;
        impl Reward for Length {
            fn name(&self) -> &str {
                "length"
            }
            fn value_names(&self) -> Vec<String> {
                vec!["within_limit".into(), "words".into()]
            }
            fn score(&self, inputs: &[RewardInput]) -> Result<Vec<Score>> {
                Ok(inputs.iter().map(|_| Score { values: [("within_limit".to_string(), 1.0), ("words".to_string(), 120.0)].into() }).collect())
            }
        }
        let w = WeightedReward::new(vec![Arc::new(Length)], Weights::default()).unwrap();
        let s = w.score(&[RewardInput::default()]).unwrap();
        assert_eq!(s[0].total, 1.0, "not 121: verbosity is not rewarded");
        assert_eq!(s[0].values.get("words"), Some(120.0));
        let two = WeightedReward::new(vec![Arc::new(Constant("h", 2.0)), Arc::new(Length)], Weights::default()).unwrap();
        assert_eq!(two.score(&[RewardInput::default()]).unwrap()[0].total, 3.0);
    }

    #[test]
    fn two_rewards_with_one_name_are_an_error() {
        let err = WeightedReward::new(vec![Arc::new(Constant("rm", 1.0)), Arc::new(Constant("rm", 2.0))], Weights::default()).unwrap_err().to_string();
        assert!(err.contains("`rm`") && err.contains("distinct `name`"), "{err}");
    }

    #[test]
    fn a_value_without_score_adds_nothing_and_no_score_at_all_is_an_error() {
        let w = Weights::new([("accuracy", 1.0), ("cost", -0.5)]);
        let partial = Score::single("cost", 0.4);
        assert!((combine_scored(&partial, &w).unwrap() - -0.2).abs() < 1e-12, "TRL's nansum: accuracy's None adds nothing");
        let none = Score::single("words", 12.0);
        let err = combine_scored(&none, &w).unwrap_err().to_string();
        assert!(err.contains("no weighted value was scored") && err.contains("accuracy"), "{err}");
    }
}
