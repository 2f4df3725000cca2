//! The Teacher's language model: configuration, checkpoint loading, the differentiable
//! Llama-family decoder and its linear layers.

pub mod checkpoint;
pub mod config;
pub mod frozen;
pub mod gguf;
pub mod linear;
pub mod shared;
pub mod softmax;
pub mod transformer;
#[cfg(test)]
mod testing;
pub mod weights;

pub use config::ModelConfig;
pub use checkpoint::Checkpoints;
pub use shared::SharedBatch;
pub use transformer::{Decoder, KvCache, LeftPadded, WeightSource, attention_mask};
