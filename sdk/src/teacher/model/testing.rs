//! Test helpers: a tiny random decoder whose every tensor is a `Var`, and the comparisons the
//! fused ops' tests make against candle's composed ops.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Result, Tensor, Var};

use super::ModelConfig;
use super::transformer::{Decoder, WeightSource};

struct Random {
    vars: BTreeMap<String, Var>,
    cfg: ModelConfig,
}

impl WeightSource for Random {
    fn get(&mut self, name: &str) -> Result<Tensor> {
        let c = &self.cfg;
        let (h, kv, inter) = (c.hidden_size, c.num_kv_heads() * c.head_dim(), c.intermediate_size);
        let shape: Vec<usize> = match name.rsplit_once('.').map(|(p, _)| p.rsplit('.').next().unwrap_or(p)).unwrap_or(name) {
            "embed_tokens" | "lm_head" => vec![c.vocab_size, h],
            "q_proj" | "o_proj" => vec![h, h],
            "k_proj" | "v_proj" => vec![kv, h],
            "gate_proj" | "up_proj" => vec![inter, h],
            "down_proj" => vec![h, inter],
            _ => vec![h],
        };
        let t = if shape.len() == 1 { (Tensor::randn(0f32, 0.1, h, &Device::Cpu)? + 1.0)? } else { Tensor::randn(0f32, 0.3, shape, &Device::Cpu)? };
        let v = Var::from_tensor(&t)?;
        self.vars.insert(name.to_string(), v.clone());
        Ok(v.as_tensor().clone())
    }
    fn contains(&self, _name: &str) -> bool {
        false
    }
}

/// A random Llama decoder (vocabulary 40, hidden 16, GQA 4/2 heads, tied embeddings) with
/// `layers` layers, and its weights by name.
pub fn random_decoder(layers: usize) -> (Decoder, BTreeMap<String, Var>) {
    let cfg: ModelConfig = serde_json::from_value(serde_json::json!({
        "model_type": "llama", "vocab_size": 40, "hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": layers,
        "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
        "max_position_embeddings": 64, "tie_word_embeddings": true,
    }))
    .expect("valid config");
    let mut src = Random { vars: BTreeMap::new(), cfg: cfg.clone() };
    let d = Decoder::new(&cfg, &mut src, DType::F32, &Device::Cpu).expect("random decoder");
    (d, src.vars)
}

/// The largest absolute difference between two f32 tensors of the same shape.
pub fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).and_then(|d| d.abs()).and_then(|d| d.max_all()).and_then(|d| d.to_scalar::<f32>()).expect("comparable f32 tensors")
}

/// Checks that `fused` and `composed` (the same function of `vars`) agree within `value_tol`, and
/// their gradients of Σ r ⊙ output for a random r within `grad_tol`, none of them vanishing.
/// Returns the fused op's gradients, one per var, for checks of the caller's own.
pub fn assert_same_values_and_gradients(fused: &Tensor, composed: &Tensor, vars: &[&Var], value_tol: f32, grad_tol: f32) -> Vec<Tensor> {
    assert!(max_diff(fused, composed) < value_tol, "values differ by {}", max_diff(fused, composed));
    let r = Tensor::randn(0f32, 1.0, fused.shape(), fused.device()).expect("random weights");
    let grads = |y: &Tensor| (y * &r).and_then(|t| t.sum_all()).and_then(|t| t.backward()).expect("backward");
    let (gf, gc) = (grads(fused), grads(composed));
    let mut fused_grads = Vec::with_capacity(vars.len());
    for (i, v) in vars.iter().enumerate() {
        let (a, b) = (gf.get(v.as_tensor()).expect("fused gradient"), gc.get(v.as_tensor()).expect("composed gradient"));
        assert_eq!(a.dims(), b.dims(), "argument {i}");
        assert!(max_diff(a, b) < grad_tol, "argument {i}: gradients differ by {}", max_diff(a, b));
        assert!(max_abs(a) > 1e-3, "argument {i}: a gradient that is not zero ({})", max_abs(a));
        fused_grads.push(a.clone());
    }
    fused_grads
}

/// The largest absolute value of an f32 tensor.
pub fn max_abs(t: &Tensor) -> f32 {
    t.abs().and_then(|t| t.max_all()).and_then(|t| t.to_scalar::<f32>()).expect("an f32 tensor")
}
