//! Sampling settings of one generation request, named as the OpenAI API names them.

use serde::{Deserialize, Serialize};

/// Sampling settings for one request; names follow the OpenAI API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SamplingParams {
    /// Softmax temperature; 0 means greedy.
    pub temperature: f64,
    /// Nucleus sampling mass (1.0 disables it).
    pub top_p: f64,
    /// Keep only the k most likely tokens (None disables it).
    pub top_k: Option<usize>,
    /// Maximum tokens generated per answer.
    pub max_tokens: usize,
    /// Seed for reproducible sampling; answer i of a request uses `seed + i` where a backend
    /// samples answers one by one.
    pub seed: Option<u64>,
    /// Strings that end an answer (not included in it).
    pub stop: Vec<String>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams { temperature: 0.7, top_p: 1.0, top_k: None, max_tokens: 512, seed: None, stop: Vec::new() }
    }
}
