//! The decoder's configuration, read from a Hugging Face `config.json` of the Llama family
//! (`llama`: SmolLM2, Llama 3; `qwen2`: Qwen2.5, Qwen2.5-Math; `mistral`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// RoPE frequency scaling: Llama 3's (`rope_type = "llama3"`) or linear position interpolation
/// (`linear`: every frequency divided by `factor`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RopeScaling {
    /// `llama3` or `linear` (others are rejected rather than silently ignored).
    #[serde(alias = "type")]
    pub rope_type: String,
    /// Overall scaling factor.
    #[serde(default = "one")]
    pub factor: f64,
    /// Wavelengths longer than original/low_freq_factor are scaled fully.
    #[serde(default = "one")]
    pub low_freq_factor: f64,
    /// Wavelengths shorter than original/high_freq_factor are kept.
    #[serde(default = "four")]
    pub high_freq_factor: f64,
    /// Context length the model was pre-trained with.
    #[serde(default)]
    pub original_max_position_embeddings: Option<usize>,
}

fn one() -> f64 {
    1.0
}
fn four() -> f64 {
    4.0
}

/// What the decoder needs to know, in the checkpoint's names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// `llama`, `qwen2` or `mistral`.
    pub model_type: String,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Hidden size.
    pub hidden_size: usize,
    /// MLP inner size.
    pub intermediate_size: usize,
    /// Decoder layers.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (GQA); defaults to the query heads.
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// Per-head size; defaults to hidden_size / num_attention_heads.
    #[serde(default)]
    pub head_dim: Option<usize>,
    /// RMSNorm ε.
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    /// RoPE base θ.
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
    /// RoPE scaling, if any.
    #[serde(default)]
    pub rope_scaling: Option<RopeScaling>,
    /// Per-frequency divisors of the RoPE frequencies (llama.cpp's `rope_freqs.weight`, which
    /// GGUF files of Llama 3.1/3.2 carry instead of `rope_scaling`). Not a transformers field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_freq_factors: Option<Vec<f64>>,
    /// Longest supported sequence.
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: usize,
    /// Whether the output projection reuses the token embeddings.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Whether q/k/v projections have biases (true for Qwen2; from `attention_bias` for Llama).
    #[serde(default)]
    pub attention_bias: Option<bool>,
    /// MLP activation; only `silu` is supported.
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// Beginning-of-sequence id.
    #[serde(default)]
    pub bos_token_id: Option<serde_json::Value>,
    /// End-of-sequence id(s).
    #[serde(default)]
    pub eos_token_id: Option<serde_json::Value>,
}

fn default_eps() -> f64 {
    1e-6
}
fn default_theta() -> f64 {
    10_000.0
}
fn default_max_pos() -> usize {
    4096
}
fn default_act() -> String {
    "silu".into()
}

impl ModelConfig {
    /// Reads and checks `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let cfg: ModelConfig = serde_json::from_str(&text).map_err(|e| Error::Model { path: path.to_path_buf(), message: format!("line {}: {e}", e.line()) })?;
        cfg.check().map_err(|message| Error::Model { path: path.to_path_buf(), message })?;
        Ok(cfg)
    }

    /// Rejects what the decoder does not implement, instead of computing something else.
    pub fn check(&self) -> std::result::Result<(), String> {
        if !matches!(self.model_type.as_str(), "llama" | "qwen2" | "mistral") {
            return Err(format!("model_type `{}` is not supported (llama, qwen2, mistral)", self.model_type));
        }
        if self.hidden_act != "silu" {
            return Err(format!("hidden_act `{}` is not supported (silu)", self.hidden_act));
        }
        if self.num_attention_heads == 0 || !self.num_attention_heads.is_multiple_of(self.num_kv_heads()) {
            return Err(format!("num_attention_heads ({}) must be a positive multiple of num_key_value_heads ({})", self.num_attention_heads, self.num_kv_heads()));
        }
        if let Some(s) = &self.rope_scaling
            && !matches!(s.rope_type.as_str(), "llama3" | "linear" | "default")
        {
            return Err(format!("rope_scaling type `{}` is not supported (llama3, linear)", s.rope_type));
        }
        if let Some(f) = &self.rope_freq_factors
            && f.len() != self.head_dim() / 2
        {
            return Err(format!("rope_freq_factors has {} values, the head needs {}", f.len(), self.head_dim() / 2));
        }
        Ok(())
    }

    /// Key/value heads.
    pub fn num_kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// Per-head size.
    pub fn head_dim(&self) -> usize {
        self.head_dim.unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// Whether q/k/v carry biases.
    pub fn qkv_bias(&self) -> bool {
        self.attention_bias.unwrap_or(self.model_type == "qwen2")
    }

    /// The end-of-sequence ids named in the config.
    pub fn eos_ids(&self) -> Vec<u32> {
        match &self.eos_token_id {
            Some(serde_json::Value::Number(n)) => n.as_u64().map(|n| vec![n as u32]).unwrap_or_default(),
            Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_u64()).map(|n| n as u32).collect(),
            _ => Vec::new(),
        }
    }

    /// RoPE inverse frequencies, with the configured scaling applied (Llama 3, linear, or
    /// llama.cpp's per-frequency factors).
    pub fn inv_freq(&self) -> Vec<f64> {
        let d = self.head_dim();
        let base: Vec<f64> = (0..d / 2).map(|i| 1.0 / self.rope_theta.powf(2.0 * i as f64 / d as f64)).collect();
        if let Some(f) = &self.rope_freq_factors {
            return base.iter().zip(f).map(|(b, f)| b / f).collect();
        }
        if let Some(s) = self.rope_scaling.as_ref().filter(|s| s.rope_type == "linear") {
            return base.iter().map(|b| b / s.factor).collect();
        }
        let Some(s) = self.rope_scaling.as_ref().filter(|s| s.rope_type == "llama3") else {
            return base;
        };
        let orig = s.original_max_position_embeddings.unwrap_or(8192) as f64;
        let (low_wl, high_wl) = (orig / s.low_freq_factor, orig / s.high_freq_factor);
        base.into_iter()
            .map(|f| {
                let wl = 2.0 * std::f64::consts::PI / f;
                if wl < high_wl {
                    f
                } else if wl > low_wl {
                    f / s.factor
                } else {
                    let smooth = (orig / wl - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
                    (1.0 - smooth) * f / s.factor + smooth * f
                }
            })
            .collect()
    }
}
