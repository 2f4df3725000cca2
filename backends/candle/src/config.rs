//! The `[student.candle]` settings section: device, dtype and GGUF handling of the candle Student.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Settings for the local candle Student.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CandleStudentConfig {
    /// `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// `f32`, `bf16` or `auto`.
    pub dtype: String,
    /// Expand GGUF weights to f32 on load, so answers are those of the f32 model (as the Teacher
    /// computes). False keeps them quantized with llama.cpp-style 8-bit activations: less memory,
    /// and greedy answers that follow llama-cpp-python's rather than the f32 model's.
    pub dequantize_gguf: bool,
}

impl Default for CandleStudentConfig {
    fn default() -> Self {
        CandleStudentConfig { device: "cpu".into(), dtype: "auto".into(), dequantize_gguf: true }
    }
}
