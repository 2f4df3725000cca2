//! Rewards g: score Student answers into named values.
//!
//! Execution model: a [`Reward`] scores a batch of [`RewardInput`]s at once (so model-based
//! rewards can batch) and returns one [`Score`] per input, in order. Rewards are synchronous
//! CPU/GPU work; the Pipeline calls them on blocking threads. Plugins loaded from `.so` files
//! ([`PluginReward`]) and several rewards combined by user weights ([`WeightedReward`]) are
//! rewards too.

mod plugin;
mod weighted;

use std::sync::Arc;

use crate::error::Result;
use crate::score::Score;

pub use plugin::{PLUGIN_PATH_ENV, PluginReward, PluginSearchPath};
pub use weighted::{WeightedReward, WeightedScore};

/// One answer to score, with everything a reward may need (the plugin ABI's JSON shape).
pub use wst_plugin_abi::RewardInput;

/// A reward function g over Student answers.
pub trait Reward: Send + Sync {
    /// The reward's name, used as the prefix of its values in logs.
    fn name(&self) -> &str;

    /// The names of the values every [`Score`] from this reward carries; the first is its
    /// primary value, the one weighted when no weights are given (`accuracy`, not a word count).
    fn value_names(&self) -> Vec<String>;

    /// One score per input, in order. A declared value left out of a score means "no score for
    /// this answer" (a TRL reward function's `None`): it adds nothing to the weighted sum.
    fn score(&self, inputs: &[RewardInput]) -> Result<Vec<Score>>;
}

/// `Arc<R>` and `Box<R>` are rewards too.
macro_rules! forward_reward {
    ($($wrapper:ident),*) => {$(
        impl<T: Reward + ?Sized> Reward for $wrapper<T> {
            fn name(&self) -> &str {
                (**self).name()
            }
            fn value_names(&self) -> Vec<String> {
                (**self).value_names()
            }
            fn score(&self, inputs: &[RewardInput]) -> Result<Vec<Score>> {
                (**self).score(inputs)
            }
        }
    )*};
}

forward_reward!(Arc, Box);
