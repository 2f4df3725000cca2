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
    /// KV cells in all. With per-answer streams (the default) each of the `max_sequences`
    /// answers gets `n_ctx / max_sequences` (rounded up to 256) for its prompt and answer; a
    /// request whose prompt plus `max_tokens` does not fit is refused, never truncated.
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
    /// llama.cpp's flash attention (f16 accumulation). Off by default; measured +12% (0.5B)
    /// and −6% (1.5B) at 16 concurrent answers on 2 CPU cores.
    pub flash_attention: bool,
    /// One KV cache shared by every answer (llama.cpp's `--kv-unified`) instead of a stream per
    /// answer. A prompt is then stored once for all its answers, but every token attends over
    /// the cache's whole used range: with few-shot prompts of many queued requests decoding
    /// was measured 2x slower (BENCHMARKS.md).
    ///
    /// In either layout a seed reproduces an answer exactly on f32 weights; with quantized
    /// weights llama.cpp's kernels sum in an order that depends on the batch's shape, so
    /// answers decoded beside others can drift from the same seed's answer decoded alone after
    /// some tokens (as in llama.cpp's server).
    pub kv_unified: bool,
}

impl Default for LlamaCppConfig {
    fn default() -> Self {
        LlamaCppConfig { n_threads: 1, n_ctx: 32768, n_gpu_layers: 0, min_p: 0.0, repeat_penalty: 1.0, max_sequences: 16, n_batch: 2048, flash_attention: false, kv_unified: false }
    }
}
