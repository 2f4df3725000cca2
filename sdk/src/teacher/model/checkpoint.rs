//! Gradient checkpointing for the decoder: a forward pass that records no graph and keeps only
//! each layer's input, and a backward pass that recomputes one layer at a time with its graph
//! and pushes the gradient through it. Peak memory holds one layer's activations instead of all
//! of them, for the price of one more forward pass (TRL's GRPO default does the same).

use std::collections::BTreeMap;

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

use super::transformer::Decoder;

/// What [`Decoder::forward_checkpointed`] keeps for the backward pass.
#[derive(Debug)]
pub struct Checkpoints {
    ids: Tensor,
    cos: Tensor,
    sin: Tensor,
    mask: Tensor,
    /// Input [B, T, H] of every layer, first layer first.
    inputs: Vec<Tensor>,
}

impl Decoder {
    /// The last layer's output [B, T, H] (before the final norm) for `ids` [B, T] at `positions`
    /// with additive `mask`, computed without a graph, and the checkpoints that
    /// [`Decoder::backward_checkpointed`] needs.
    pub fn forward_checkpointed(&self, ids: &Tensor, positions: &Tensor, mask: &Tensor) -> Result<(Tensor, Checkpoints)> {
        self.check_positions(positions)?;
        let frozen = self.detached()?;
        let (cos, sin) = self.rope_tables(positions)?;
        let mut x = frozen.embed(ids)?;
        let mut inputs = Vec::with_capacity(self.num_layers());
        for i in 0..self.num_layers() {
            let next = frozen.layer_forward(i, &x, &cos, &sin, mask, None)?;
            inputs.push(x);
            x = next;
        }
        Ok((x, Checkpoints { ids: ids.clone(), cos, sin, mask: mask.clone(), inputs }))
    }

    /// Backpropagates `grad` = ∂loss/∂(last layer's output) through the layers and the embedding,
    /// recomputing each layer from its checkpoint; `absorb` receives each layer's gradients
    /// (keyed by the trainable tensors, as from [`Tensor::backward`]).
    pub fn backward_checkpointed(&self, mut ck: Checkpoints, mut grad: Tensor, absorb: &mut dyn FnMut(&GradStore) -> Result<()>) -> Result<()> {
        for i in (0..self.num_layers()).rev() {
            let input = ck.inputs.pop().ok_or_else(|| candle_core::Error::Msg(format!("no checkpoint for layer {i}")))?;
            let x = Var::from_tensor(&input)?;
            drop(input);
            let y = self.layer_forward(i, x.as_tensor(), &ck.cos, &ck.sin, &ck.mask, None)?;
            // ∂/∂θ of Σ y·g is g·∂y/∂θ: the chain rule through this layer, with g held constant.
            let store = (y * &grad)?.sum_all()?.backward()?;
            absorb(&store)?;
            grad = match store.get(x.as_tensor()) {
                Some(g) => g.clone(),
                None => return Ok(()),
            };
        }
        let x0 = self.embed(&ck.ids)?;
        if x0.track_op() {
            absorb(&(x0 * grad)?.sum_all()?.backward()?)?;
        }
        Ok(())
    }
}

/// Adds the gradients `store` holds for `params` (by name) into `sums`: how gradients add up
/// over micro-batches and over the per-layer passes of a checkpointed backward.
pub fn accumulate_grads(sums: &mut BTreeMap<String, Tensor>, params: &BTreeMap<String, Var>, store: &GradStore) -> Result<()> {
    for (name, var) in params {
        if let Some(g) = store.get(var.as_tensor()) {
            let sum = match sums.remove(name) {
                Some(acc) => (acc + g)?,
                None => g.clone(),
            };
            sums.insert(name.clone(), sum);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::transformer::{WeightSource, attention_mask};
    use super::super::ModelConfig;
    use super::*;
    use candle_core::{DType, Device};

    /// A tiny random decoder whose every tensor is a `Var`.
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

    #[test]
    fn checkpointed_gradients_equal_plain_backprop() {
        let cfg: ModelConfig = serde_json::from_value(serde_json::json!({
            "model_type": "llama", "vocab_size": 40, "hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": 3,
            "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
            "max_position_embeddings": 64, "tie_word_embeddings": true,
        }))
        .unwrap();
        let mut src = Random { vars: BTreeMap::new(), cfg: cfg.clone() };
        let d = Decoder::new(&cfg, &mut src, DType::F32, &Device::Cpu).unwrap();
        // Two rows, the second left-padded by two.
        let ids = Tensor::new(&[[1u32, 5, 9, 3, 7], [0, 0, 4, 8, 2]], &Device::Cpu).unwrap();
        let pos = vec![vec![0i64, 1, 2, 3, 4], vec![0, 0, 0, 1, 2]];
        let real = vec![vec![true; 5], vec![false, false, true, true, true]];
        let positions = Tensor::new(&[[0u32, 1, 2, 3, 4], [0, 0, 0, 1, 2]], &Device::Cpu).unwrap();
        let mask = attention_mask(&pos, &pos, &real, &real, DType::F32, &Device::Cpu).unwrap();
        let weights = Tensor::randn(0f32, 1.0, (2, 5, 40), &Device::Cpu).unwrap();
        let loss = |h: &Tensor, dec: &Decoder| -> Result<Tensor> { (dec.logits(&dec.final_norm(h)?)? * &weights)?.sum_all() };

        // Plain: one graph through everything.
        let mut x = d.embed(&ids).unwrap();
        let (cos, sin) = d.rope_tables(&positions).unwrap();
        for i in 0..d.num_layers() {
            x = d.layer_forward(i, &x, &cos, &sin, &mask, None).unwrap();
        }
        let plain = loss(&x, &d).unwrap().backward().unwrap();

        // Checkpointed: the head on a leaf, then layer by layer.
        let (last, ck) = d.forward_checkpointed(&ids, &positions, &mask).unwrap();
        let leaf = Var::from_tensor(&last).unwrap();
        let head = loss(leaf.as_tensor(), &d).unwrap().backward().unwrap();
        let mut sums: BTreeMap<String, Tensor> = BTreeMap::new();
        let mut absorb = |st: &GradStore| accumulate_grads(&mut sums, &src.vars, st);
        absorb(&head).unwrap();
        d.backward_checkpointed(ck, head.get(leaf.as_tensor()).unwrap().clone(), &mut absorb).unwrap();
        assert_eq!(sums.len(), src.vars.len(), "every weight gets a gradient");
        for (name, v) in &src.vars {
            let want = plain.get(v.as_tensor()).unwrap();
            let diff = (want - &sums[name]).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            let scale = want.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap().max(1e-3);
            assert!(diff / scale < 1e-4, "{name}: {diff} of {scale}");
        }
    }
}
