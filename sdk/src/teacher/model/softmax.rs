//! Attention's softmax(scale · scores + mask) as one CPU op with a hand-written backward.
//! Composed from candle ops it is seven passes over the [B, heads, T, T_k] scores (scale, mask,
//! max, subtract, exp, sum, divide) and about twice as many in the backward, each allocating a
//! zero gradient to add into; fused, it is one pass forward and one backward (dS = scale · P ⊙
//! (dP − Σ dP ⊙ P), from the saved probabilities P). CPU f32 only; elsewhere the composed ops.

use candle_core::{CpuStorage, CustomOp2, D, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu_slice::f32_slice;

/// softmax(scale · scores + mask) over the last dimension; `mask` [B, 1, T, T_k] is shared by
/// every head of `scores` [B, heads, T, T_k] and gets no gradient.
pub fn masked_softmax(scores: &Tensor, mask: &Tensor, scale: f64) -> Result<Tensor> {
    let cpu_f32 = scores.device().is_cpu() && scores.dtype() == DType::F32 && mask.dtype() == DType::F32;
    if cpu_f32 && !mask.track_op() {
        return scores.contiguous()?.apply_op2(&mask.contiguous()?, MaskedSoftmax { scale: scale as f32 });
    }
    let x = (scores * scale)?.broadcast_add(mask)?;
    // candle-nn's fused softmax has no backward: only when no gradient is wanted.
    if x.track_op() { candle_nn::ops::softmax(&x, D::Minus1) } else { candle_nn::ops::softmax_last_dim(&x) }
}

/// The forward op: arguments scores [B, H, T, T_k] and mask [B, 1, T, T_k].
struct MaskedSoftmax {
    scale: f32,
}

impl CustomOp2 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "masked-softmax"
    }

    fn cpu_fwd(&self, ss: &CpuStorage, sl: &Layout, ms: &CpuStorage, ml: &Layout) -> Result<(CpuStorage, Shape)> {
        let (scores, mask) = (f32_slice(ss, sl, self.name())?, f32_slice(ms, ml, self.name())?);
        let (b, h, t, tk) = sl.shape().dims4()?;
        if ml.shape().dims() != [b, 1, t, tk] {
            candle_core::bail!("masked-softmax: mask {:?} does not fit scores {:?}", ml.shape(), sl.shape());
        }
        let mut out = vec![0f32; scores.len()];
        out.par_chunks_mut(tk).zip(scores.par_chunks(tk)).enumerate().for_each(|(row, (o, s))| {
            // Row `row` is (batch, head, query) in row-major order; the mask skips the head.
            let m = &mask[((row / (h * t)) * t + row % t) * tk..][..tk];
            let mut max = f32::NEG_INFINITY;
            for ((o, &s), &m) in o.iter_mut().zip(s).zip(m) {
                *o = s * self.scale + m;
                max = max.max(*o);
            }
            let mut sum = 0f32;
            for o in o.iter_mut() {
                *o = (*o - max).exp();
                sum += *o;
            }
            let inv = 1.0 / sum;
            o.iter_mut().for_each(|o| *o *= inv);
        });
        Ok((CpuStorage::F32(out), sl.shape().clone()))
    }

    fn bwd(&self, _scores: &Tensor, _mask: &Tensor, probs: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = probs.apply_op2_no_bwd(&grad.contiguous()?, &MaskedSoftmaxGrad { scale: self.scale })?;
        Ok((Some(g), None))
    }
}

/// The backward op: arguments P and dP (same shape), result scale · P ⊙ (dP − Σ_row dP ⊙ P).
struct MaskedSoftmaxGrad {
    scale: f32,
}

impl CustomOp2 for MaskedSoftmaxGrad {
    fn name(&self) -> &'static str {
        "masked-softmax-grad"
    }

    fn cpu_fwd(&self, ps: &CpuStorage, pl: &Layout, gs: &CpuStorage, gl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (p, g) = (f32_slice(ps, pl, self.name())?, f32_slice(gs, gl, self.name())?);
        if pl.shape() != gl.shape() {
            candle_core::bail!("masked-softmax-grad: {:?} vs {:?}", pl.shape(), gl.shape());
        }
        let tk = pl.shape().dims().last().copied().unwrap_or(1).max(1);
        let mut out = vec![0f32; p.len()];
        out.par_chunks_mut(tk).zip(p.par_chunks(tk).zip(g.par_chunks(tk))).for_each(|(o, (p, g))| {
            let dot: f32 = p.iter().zip(g).map(|(p, g)| p * g).sum();
            for ((o, &p), &g) in o.iter_mut().zip(p).zip(g) {
                *o = self.scale * p * (g - dot);
            }
        });
        Ok((CpuStorage::F32(out), pl.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::teacher::model::testing::assert_same_values_and_gradients;
    use candle_core::{Device, Var};

    #[test]
    fn fused_equals_composed_values_and_gradient() {
        let d = Device::Cpu;
        let scores = Var::from_tensor(&Tensor::randn(0f32, 2.0, (2, 3, 4, 5), &d).unwrap()).unwrap();
        // Mask out the last key for every query of batch row 1, and key 0 for query 2 of row 0.
        let mut m = vec![0f32; 2 * 4 * 5];
        (0..4).for_each(|q| m[(4 + q) * 5 + 4] = -1e9);
        m[2 * 5] = -1e9;
        let mask = Tensor::from_vec(m, (2, 1, 4, 5), &d).unwrap();
        let fused = masked_softmax(scores.as_tensor(), &mask, 0.125).unwrap();
        let composed = candle_nn::ops::softmax(&(scores.as_tensor() * 0.125).unwrap().broadcast_add(&mask).unwrap(), D::Minus1).unwrap();
        // Masked keys get no probability.
        assert!(fused.get(1).unwrap().narrow(2, 4, 1).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap() < 1e-12);
        assert_same_values_and_gradients(&fused, &composed, &[&scores], 1e-6, 1e-6);
    }
}
