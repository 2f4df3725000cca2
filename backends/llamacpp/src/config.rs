//! The `[student.llamacpp]` settings section: threads, context and batching of the in-process
//! llama.cpp engine.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Settings for the in-process llama.cpp backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LlamaCppConfig {
    /// CPU threads for decoding; 1 avoids OpenMP spin collapse on busy small machines.
    pub n_threads: usize,
    /// KV cells shared by every answer in flight (a request's prompt is stored once for its
    /// answers); answers wait for room when prompts plus `max_tokens` per answer do not fit.
    pub n_ctx: u32,
    /// Layers offloaded to a GPU (needs a CUDA build of llama.cpp).
    pub n_gpu_layers: u32,
    /// Min-p sampling cut-off (0 disables it).
    pub min_p: f64,
    /// Repetition penalty (1 disables it).
    pub repeat_penalty: f64,
    /// Answers decoded together in one batch, over all requests in flight (continuous
    /// batching, as llama.cpp's server slots).
    pub max_sequences: usize,
    /// Most tokens fed to llama.cpp in one decode call (one per running answer plus chunks of
    /// newly admitted prompts).
    pub n_batch: u32,
    /// llama.cpp's flash attention. Off by default: its f16 accumulation over the shared KV
    /// cache makes an answer depend on which other answers were decoded beside it, so the same
    /// seed could give another answer under load. On is faster for long contexts.
    pub flash_attention: bool,
}

impl Default for LlamaCppConfig {
    fn default() -> Self {
        LlamaCppConfig { n_threads: 1, n_ctx: 8192, n_gpu_layers: 0, min_p: 0.0, repeat_penalty: 1.0, max_sequences: 16, n_batch: 2048, flash_attention: false }
    }
}
