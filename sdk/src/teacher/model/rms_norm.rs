//! RMSNorm, y = x · r · w with r = 1 / sqrt(mean(x²) + ε) per row, as one CPU op with a
//! hand-written backward. Composed from candle ops it is six passes over the activations
//! forward (square, mean, add, sqrt, divide, scale) and about twice as many backward, each
//! allocating an activation-sized tensor; fused, it is one pass each way:
//!   ∂L/∂x_k = r · g_k w_k − (r³ / H) · x_k · Σ_j g_j w_j x_j,   ∂L/∂w_j = Σ_rows g_j x_j r.
//! CPU f32 only; elsewhere (and for other dtypes) the composed ops.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, D, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu_slice::f32_slice;

/// RMSNorm of `x` [.., H] with weight `w` [H], differentiable in both.
pub(crate) fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    let fused = x.device().is_cpu() && x.dtype() == DType::F32 && w.dtype() == DType::F32;
    if fused && !x.track_op() && !w.track_op() {
        // No gradient wanted: candle-nn's kernel (f32 accumulation, same formula).
        return candle_nn::ops::rms_norm(&x.contiguous()?, w, eps as f32);
    }
    if fused {
        return x.contiguous()?.apply_op2(&w.contiguous()?, RmsNormOp { eps: eps as f32 });
    }
    composed(x, w, eps)
}

/// The same norm from differentiable candle ops, computed in f32 (any device and dtype).
pub(crate) fn composed(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    let dtype = x.dtype();
    let xf = x.to_dtype(DType::F32)?;
    let ms = xf.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = xf.broadcast_div(&(ms + eps)?.sqrt()?)?;
    normed.to_dtype(dtype)?.broadcast_mul(w)
}

/// 1 / sqrt(mean(x²) + ε) of one row.
fn inv_rms(row: &[f32], eps: f32) -> f32 {
    let ss: f32 = row.iter().map(|x| x * x).sum();
    1.0 / (ss / row.len() as f32 + eps).sqrt()
}

/// The hidden size of `w` [H], checked against the last dimension of `x`.
fn hidden(xl: &Layout, wl: &Layout, op: &str) -> Result<usize> {
    let h = wl.shape().elem_count();
    if wl.shape().rank() != 1 || xl.shape().dims().last() != Some(&h) || h == 0 {
        candle_core::bail!("{op}: weight {:?} does not fit activations {:?}", wl.shape(), xl.shape());
    }
    Ok(h)
}

/// Rows per block of the weight gradient's sum (see `RmsNormGrad`).
const ROWS_PER_BLOCK: usize = 32;

/// The forward op: arguments x [.., H] and w [H].
struct RmsNormOp {
    eps: f32,
}

impl CustomOp2 for RmsNormOp {
    fn name(&self) -> &'static str {
        "rms-norm"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout, ws: &CpuStorage, wl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, w) = (f32_slice(xs, xl, self.name())?, f32_slice(ws, wl, self.name())?);
        let h = hidden(xl, wl, self.name())?;
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(h).zip(x.par_chunks(h)).for_each(|(o, x)| {
            let r = inv_rms(x, self.eps);
            for ((o, &x), &w) in o.iter_mut().zip(x).zip(w) {
                *o = x * r * w;
            }
        });
        Ok((CpuStorage::F32(out), xl.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        // One op writes both gradients: rows 0..N are ∂L/∂x, row N is ∂L/∂w.
        let both = x.apply_op3_no_bwd(w, &grad.contiguous()?, &RmsNormGrad { eps: self.eps })?;
        let (n, h) = both.dims2()?;
        let dx = both.narrow(0, 0, n - 1)?.reshape(x.shape())?;
        let dw = both.narrow(0, n - 1, 1)?.reshape(h)?;
        Ok((Some(dx), Some(dw)))
    }
}

/// The backward op: arguments x [.., H], w [H] and ∂L/∂y [.., H]; result [N + 1, H], the
/// gradient of x's N rows followed by w's.
struct RmsNormGrad {
    eps: f32,
}

impl CustomOp3 for RmsNormGrad {
    fn name(&self) -> &'static str {
        "rms-norm-grad"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout, ws: &CpuStorage, wl: &Layout, gs: &CpuStorage, gl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, w, g) = (f32_slice(xs, xl, self.name())?, f32_slice(ws, wl, self.name())?, f32_slice(gs, gl, self.name())?);
        let h = hidden(xl, wl, self.name())?;
        if gl.shape() != xl.shape() {
            candle_core::bail!("rms-norm-grad: gradient {:?} does not fit activations {:?}", gl.shape(), xl.shape());
        }
        let n = x.len() / h;
        let mut out = vec![0f32; (n + 1) * h];
        let (dx, dw) = out.split_at_mut(n * h);
        // ∂L/∂w sums over rows. Blocks of a fixed number of rows, each summed by one thread and
        // then added in block order, give the same bits on every run (rayon's own fold splits
        // where work is stolen, so its sums change order from run to run, and a resumed training
        // run would not repeat the uninterrupted one).
        let rows = ROWS_PER_BLOCK * h;
        let partials: Vec<Vec<f32>> = dx
            .par_chunks_mut(rows)
            .zip(x.par_chunks(rows).zip(g.par_chunks(rows)))
            .map(|(dx, (x, g))| {
                let mut dw = vec![0f32; h];
                for (dx, (x, g)) in dx.chunks_mut(h).zip(x.chunks(h).zip(g.chunks(h))) {
                    let r = inv_rms(x, self.eps);
                    let dot: f32 = g.iter().zip(w).zip(x).map(|((g, w), x)| g * w * x).sum();
                    let c = r * r * r * dot / h as f32;
                    for (((dx, dw), &x), (&g, &w)) in dx.iter_mut().zip(dw.iter_mut()).zip(x).zip(g.iter().zip(w)) {
                        *dx = r * g * w - c * x;
                        *dw += g * x * r;
                    }
                }
                dw
            })
            .collect();
        for p in partials {
            dw.iter_mut().zip(p).for_each(|(a, b)| *a += b);
        }
        Ok((CpuStorage::F32(out), Shape::from((n + 1, h))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::teacher::model::testing::{assert_same_values_and_gradients, max_abs};
    use candle_core::{Device, Var};

    #[test]
    fn one_row_by_hand() {
        // x = (3, 4), w = (1, 2), ε = 0: mean(x²) = 12.5, r = 1 / sqrt(12.5) = 0.282843.
        // y = (3r, 8r) = (0.848528, 2.262742). With ∂L/∂y = (1, 0): Σ g w x = 3, so
        // ∂L/∂x = (r − r³·3·3/2, −r³·3·4/2) = (0.282843 − 0.101823, −0.135765) and
        // ∂L/∂w = (3r, 0) = (0.848528, 0).
        let d = Device::Cpu;
        let x = Var::from_tensor(&Tensor::new(&[[3f32, 4.]], &d).unwrap()).unwrap();
        let w = Var::from_tensor(&Tensor::new(&[1f32, 2.], &d).unwrap()).unwrap();
        let y = rms_norm(x.as_tensor(), w.as_tensor(), 0.0).unwrap();
        let got = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!((got[0] - 0.848528).abs() < 1e-5 && (got[1] - 2.262742).abs() < 1e-5, "{got:?}");
        let grads = y.narrow(1, 0, 1).unwrap().sum_all().unwrap().backward().unwrap();
        let dx = grads.get(x.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let dw = grads.get(w.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
        assert!((dx[0] - 0.181020).abs() < 1e-5 && (dx[1] + 0.135765).abs() < 1e-5, "{dx:?}");
        assert!((dw[0] - 0.848528).abs() < 1e-5 && dw[1].abs() < 1e-7, "{dw:?}");
    }

    #[test]
    fn fused_equals_composed_values_and_gradients() {
        let d = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 2.0, (3, 5, 16), &d).unwrap()).unwrap();
        let w = Var::from_tensor(&Tensor::randn(1f32, 0.3, 16, &d).unwrap()).unwrap();
        let fused = rms_norm(x.as_tensor(), w.as_tensor(), 1e-5).unwrap();
        let plain = composed(x.as_tensor(), w.as_tensor(), 1e-5).unwrap();
        for g in assert_same_values_and_gradients(&fused, &plain, &[&x, &w], 1e-5, 1e-4) {
            assert!(max_abs(&g) > 1e-2, "a gradient that is not zero");
        }
    }

    #[test]
    fn the_weight_gradient_has_the_same_bits_every_time() {
        // Many blocks of rows, summed on two threads: the order of the sum must not depend on
        // which thread took which block.
        let d = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (1000, 64), &d).unwrap()).unwrap();
        let w = Var::from_tensor(&Tensor::randn(1f32, 0.3, 64, &d).unwrap()).unwrap();
        let g = Tensor::randn(0f32, 1.0, (1000, 64), &d).unwrap();
        let dw = || {
            let grads = (rms_norm(x.as_tensor(), w.as_tensor(), 1e-6).unwrap() * &g).unwrap().sum_all().unwrap().backward().unwrap();
            grads.get(w.as_tensor()).unwrap().to_vec1::<f32>().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        };
        let first = dw();
        for _ in 0..20 {
            assert_eq!(dw(), first);
        }
    }

    #[test]
    fn a_weight_that_does_not_fit_is_an_error() {
        let d = Device::Cpu;
        let x = Var::from_tensor(&Tensor::zeros((2, 4), DType::F32, &d).unwrap()).unwrap();
        let w = Tensor::ones(3, DType::F32, &d).unwrap();
        let err = rms_norm(x.as_tensor(), &w, 1e-6).unwrap_err().to_string();
        assert!(err.contains("does not fit"), "{err}");
    }
}
