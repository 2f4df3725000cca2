//! The Teacher's language model: configuration, checkpoint loading, the differentiable
//! Llama-family decoder and its linear layers.
//!
//! Public: what an embedder or another backend needs to load and run a checkpoint (the
//! configuration, the GGUF and safetensors readers, the decoder). The numerical internals
//! (x·Wᵀ with its own backward, the fused softmax and log-prob ops, the shared-prefix batch, the recompute
//! checkpoints, LoRA linears) are crate-private and may change without notice.

pub(crate) mod checkpoint;
pub mod config;
pub(crate) mod cpu_slice;
pub(crate) mod few_rows;
pub mod gguf;
pub(crate) mod linear;
pub(crate) mod matmul_wt;
pub(crate) mod rms_norm;
pub(crate) mod rope;
pub(crate) mod shared;
pub(crate) mod softmax;
pub(crate) mod swiglu;
#[cfg(test)]
mod testing;
pub(crate) mod token_logprob;
pub mod transformer;
pub mod weights;

pub use config::ModelConfig;
pub(crate) use shared::SharedBatch;
pub use transformer::{Decoder, KvCache, LeftPadded, WeightSource, attention_mask};
