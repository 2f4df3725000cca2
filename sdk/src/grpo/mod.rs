//! GRPO maths, independent of any model: WST rewards, group-normalised advantages, the clipped
//! surrogate loss with TRL's `loss_type`s, the k3 KL estimate, and the metrics TRL logs.

mod advantages;
mod loss;
mod metrics;
mod wst_reward;

pub use advantages::{Advantages, Centring, ScaleRewards, advantages, centring_conflict};
pub use loss::{BatchSize, GrpoLoss, ImportanceStats, LossOutput, LossType, importance_weights};
pub use metrics::{CompletionMetrics, RewardMetrics};
pub use wst_reward::{mean, wst_reward};
