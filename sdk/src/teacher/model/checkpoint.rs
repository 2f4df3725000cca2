//! Gradient checkpointing for the decoder: a forward pass that records no graph and keeps only
//! each layer's input, and a backward pass that recomputes one layer at a time with its graph
//! and pushes the gradient through it. Peak memory holds one layer's activations instead of all
//! of them, for the price of one more forward pass (TRL's GRPO default does the same).

use std::collections::BTreeMap;

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

use super::shared::{SharedBatch, SharedRope};
use super::transformer::Decoder;

/// What [`Decoder::forward_checkpointed`] keeps for the backward pass.
#[derive(Debug)]
pub struct Checkpoints {
    batch: SharedBatch,
    rope: SharedRope,
    /// Inputs of every layer (prompt block [U, T_p, H], completion block [B, T_c, H]), first
    /// layer first.
    inputs: Vec<(Tensor, Tensor)>,
}

impl Decoder {
    /// The last layer's outputs (prompt block, completion block; before the final norm) for
    /// `batch`, computed without a graph, and the checkpoints that
    /// [`Decoder::backward_checkpointed`] needs.
    pub fn forward_checkpointed(&self, batch: &SharedBatch) -> Result<((Tensor, Tensor), Checkpoints)> {
        let rope = self.shared_rope(batch)?;
        let frozen = self.detached()?;
        let mut x = (frozen.embed(&batch.prompt_ids)?, frozen.embed(&batch.ids)?);
        let mut inputs = Vec::with_capacity(self.num_layers());
        for i in 0..self.num_layers() {
            let next = frozen.layer_forward_shared(i, &x.0, &x.1, &rope, batch)?;
            inputs.push(x);
            x = next;
        }
        Ok((x, Checkpoints { batch: batch.clone(), rope, inputs }))
    }

    /// Backpropagates `grad` = ∂loss/∂(last layer's outputs, both blocks) through the layers and
    /// the embedding, recomputing each layer from its checkpoint; `absorb` receives each layer's
    /// gradients (keyed by the trainable tensors, as from [`Tensor::backward`]).
    pub fn backward_checkpointed(&self, mut ck: Checkpoints, grad: (Tensor, Tensor), absorb: &mut dyn FnMut(&GradStore) -> Result<()>) -> Result<()> {
        let (mut gp, mut gc) = grad;
        for i in (0..self.num_layers()).rev() {
            let (p, c) = ck.inputs.pop().ok_or_else(|| candle_core::Error::Msg(format!("no checkpoint for layer {i}")))?;
            let (xp, xc) = (Var::from_tensor(&p)?, Var::from_tensor(&c)?);
            drop((p, c));
            let (yp, yc) = self.layer_forward_shared(i, xp.as_tensor(), xc.as_tensor(), &ck.rope, &ck.batch)?;
            // ∂/∂θ of Σ y·g is g·∂y/∂θ: the chain rule through this layer, with g held constant.
            let store = ((yp * &gp)?.sum_all()? + (yc * &gc)?.sum_all()?)?.backward()?;
            absorb(&store)?;
            gp = grad_or_zeros(&store, &xp)?;
            gc = grad_or_zeros(&store, &xc)?;
        }
        let (x0p, x0c) = (self.embed(&ck.batch.prompt_ids)?, self.embed(&ck.batch.ids)?);
        if x0p.track_op() {
            absorb(&((x0p * gp)?.sum_all()? + (x0c * gc)?.sum_all()?)?.backward()?)?;
        }
        Ok(())
    }
}

/// The gradient `store` holds for `x`, or zeros of its shape when nothing reached it.
pub fn grad_or_zeros(store: &GradStore, x: &Var) -> Result<Tensor> {
    match store.get(x.as_tensor()) {
        Some(g) => Ok(g.clone()),
        None => x.as_tensor().zeros_like(),
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
    use super::super::testing::random_decoder;
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn checkpointed_gradients_equal_plain_backprop() {
        let (d, vars) = random_decoder(3);
        // Two completions of one prompt and one of a shorter prompt (left-padded); uneven lengths.
        let rows: [(&[u32], &[u32]); 3] = [(&[1, 5, 9], &[3, 7, 2]), (&[1, 5, 9], &[4]), (&[6, 8], &[9, 9])];
        let batch = SharedBatch::new(&rows, 0, DType::F32, &Device::Cpu).unwrap();
        let weights = Tensor::randn(0f32, 1.0, (3, 3, 40), &Device::Cpu).unwrap();
        let loss = |yp: &Tensor, yc: &Tensor, dec: &Decoder| -> Result<Tensor> { (dec.logits(&dec.final_norm(&batch.predictors(yp, yc)?)?)? * &weights)?.sum_all() };

        // Plain: one graph through everything.
        let (yp, yc) = d.forward_shared(&batch).unwrap();
        let plain = loss(&yp, &yc, &d).unwrap().backward().unwrap();

        // Checkpointed: the head on leaves, then layer by layer.
        let ((lp, lc), ck) = d.forward_checkpointed(&batch).unwrap();
        let (vp, vc) = (Var::from_tensor(&lp).unwrap(), Var::from_tensor(&lc).unwrap());
        let head = loss(vp.as_tensor(), vc.as_tensor(), &d).unwrap().backward().unwrap();
        let mut sums: BTreeMap<String, Tensor> = BTreeMap::new();
        let mut absorb = |st: &GradStore| accumulate_grads(&mut sums, &vars, st);
        absorb(&head).unwrap();
        let grad = (grad_or_zeros(&head, &vp).unwrap(), grad_or_zeros(&head, &vc).unwrap());
        d.backward_checkpointed(ck, grad, &mut absorb).unwrap();
        assert_eq!(sums.len(), vars.len(), "every weight gets a gradient");
        for (name, v) in &vars {
            let want = plain.get(v.as_tensor()).unwrap();
            let diff = (want - &sums[name]).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            let scale = want.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap().max(1e-3);
            assert!(diff / scale < 1e-4, "{name}: {diff} of {scale}");
        }
    }
}
