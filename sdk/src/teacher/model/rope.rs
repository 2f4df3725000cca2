//! Rotate-half RoPE, y = x · cos + rot(x) · sin with rot(x) = (−x₂, x₁) for the halves x₁, x₂
//! of each head's vector, as one CPU op with a hand-written backward. Composed it is six ops
//! forward (two products, two halves, a negation, a concatenation, a sum) and about twice as
//! many backward; fused, one pass each way. The map is a rotation, so its backward is the
//! rotation back: ∂L/∂x = g · cos + rotᵀ(g · sin), rotᵀ(z) = (z₂, −z₁).
//! CPU f32 only; elsewhere the composed ops.

use candle_core::{CpuStorage, CustomOp3, D, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu_slice::f32_slice;

/// RoPE of `x` [B, heads, T, head_dim] with the tables `cos`, `sin` [B, 1, T, head_dim] (both
/// halves equal, as `Rope::tables` gives them); differentiable in `x`, not in the tables.
pub(crate) fn apply_rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let cpu_f32 = x.device().is_cpu() && [x.dtype(), cos.dtype(), sin.dtype()].iter().all(|d| *d == DType::F32);
    if !x.track_op() && x.is_contiguous() {
        // No gradient wanted: candle-nn's fused kernel (same rotate-half convention), fed the
        // first halves of the tables as [B, T, head_dim / 2].
        let half = |t: &Tensor| -> Result<Tensor> { t.narrow(D::Minus1, 0, t.dim(D::Minus1)? / 2)?.squeeze(1)?.contiguous() };
        return candle_nn::rotary_emb::rope(x, &half(cos)?, &half(sin)?);
    }
    if cpu_f32 && !cos.track_op() && !sin.track_op() {
        return x.contiguous()?.apply_op3(&cos.contiguous()?, &sin.contiguous()?, Rope { back: false });
    }
    composed(x, cos, sin)
}

/// The same rotation from differentiable candle ops (any device and dtype).
pub(crate) fn composed(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let half = x.dim(D::Minus1)? / 2;
    let rotated = Tensor::cat(&[&x.narrow(D::Minus1, half, half)?.neg()?, &x.narrow(D::Minus1, 0, half)?], D::Minus1)?;
    x.broadcast_mul(cos)? + rotated.broadcast_mul(sin)?
}

/// The op: x · cos + rot(x) · sin, or with `back` the backward's g · cos + rotᵀ(g · sin), for
/// x (or g) [B, H, T, D] and tables [B, 1, T, D].
struct Rope {
    back: bool,
}

impl CustomOp3 for Rope {
    fn name(&self) -> &'static str {
        if self.back { "rope-grad" } else { "rope" }
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout, cs: &CpuStorage, cl: &Layout, ss: &CpuStorage, sl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, cos, sin) = (f32_slice(xs, xl, self.name())?, f32_slice(cs, cl, self.name())?, f32_slice(ss, sl, self.name())?);
        let (b, h, t, d) = xl.shape().dims4()?;
        if cl.shape().dims() != [b, 1, t, d] || sl.shape() != cl.shape() || d % 2 != 0 {
            candle_core::bail!("{}: tables {:?} and {:?} do not fit {:?}", self.name(), cl.shape(), sl.shape(), xl.shape());
        }
        let half = d / 2;
        // Forward: y₁ = x₁c₁ − x₂s₁, y₂ = x₂c₂ + x₁s₂. Backward: dx₁ = g₁c₁ + g₂s₂, dx₂ = g₂c₂ − g₁s₁.
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(d).zip(x.par_chunks(d)).enumerate().for_each(|(row, (o, x))| {
            // Row `row` is (batch, head, position) in row-major order; the tables skip the head.
            let at = ((row / (h * t)) * t + row % t) * d;
            let (c, s) = (&cos[at..at + d], &sin[at..at + d]);
            let (x1, x2) = x.split_at(half);
            let (o1, o2) = o.split_at_mut(half);
            for i in 0..half {
                let j = i + half;
                if self.back {
                    o1[i] = x1[i] * c[i] + x2[i] * s[j];
                    o2[i] = x2[i] * c[j] - x1[i] * s[i];
                } else {
                    o1[i] = x1[i] * c[i] - x2[i] * s[i];
                    o2[i] = x2[i] * c[j] + x1[i] * s[j];
                }
            }
        });
        Ok((CpuStorage::F32(out), xl.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, cos: &Tensor, sin: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dx = grad.contiguous()?.apply_op3_no_bwd(cos, sin, &Rope { back: true })?;
        Ok((Some(dx), None, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::teacher::model::testing::{assert_same_values_and_gradients, max_diff};
    use candle_core::{Device, Var};

    #[test]
    fn a_quarter_turn_by_hand() {
        // head_dim 2, angle 90°: (x₁, x₂) = (1, 2) turns to (−2, 1). With ∂L/∂y = (1, 0) the
        // gradient is the turn back of (1, 0): ∂L/∂x = (0, −1).
        let d = Device::Cpu;
        let x = Var::from_tensor(&Tensor::new(&[1f32, 2.], &d).unwrap().reshape((1, 1, 1, 2)).unwrap()).unwrap();
        let cos = Tensor::zeros((1, 1, 1, 2), DType::F32, &d).unwrap();
        let sin = Tensor::ones((1, 1, 1, 2), DType::F32, &d).unwrap();
        let y = apply_rope(x.as_tensor(), &cos, &sin).unwrap();
        assert_eq!(y.flatten_all().unwrap().to_vec1::<f32>().unwrap(), [-2.0, 1.0]);
        let grads = y.flatten_all().unwrap().narrow(0, 0, 1).unwrap().sum_all().unwrap().backward().unwrap();
        let dx = grads.get(x.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(dx, [0.0, -1.0]);
    }

    #[test]
    fn fused_equals_composed_values_and_gradient() {
        let d = Device::Cpu;
        let (b, h, t, hd) = (2, 3, 5, 8);
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (b, h, t, hd), &d).unwrap()).unwrap();
        // Tables as `Rope::tables` makes them: angles per (row, position, frequency), halves equal.
        let angles = Tensor::randn(0f32, 2.0, (b, 1, t, hd / 2), &d).unwrap();
        let angles = Tensor::cat(&[&angles, &angles], D::Minus1).unwrap();
        let (cos, sin) = (angles.cos().unwrap(), angles.sin().unwrap());
        let fused = apply_rope(x.as_tensor(), &cos, &sin).unwrap();
        let plain = composed(x.as_tensor(), &cos, &sin).unwrap();
        assert_same_values_and_gradients(&fused, &plain, &[&x], 1e-6, 1e-6);
        // The no-gradient path (candle-nn's kernel) agrees too.
        assert!(max_diff(&apply_rope(&x.as_tensor().detach(), &cos, &sin).unwrap(), &plain) < 1e-6);
    }
}
