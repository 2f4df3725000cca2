//! x·Wᵀ for a frozen weight W, as a candle custom op whose backward returns the gradient of x
//! only. candle's own matmul backward also computes W's gradient (a full gemm, thrown away when
//! W is frozen), which makes a LoRA step as slow as full fine-tuning. CPU f32 only; callers
//! fall back to the plain matmul elsewhere.

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};

use super::cpu_slice::contiguous;

/// The op: `x` [rows, in] (first argument) times `w` [out, in] (second) transposed.
struct FrozenMatmul;

impl CustomOp2 for FrozenMatmul {
    fn name(&self) -> &'static str {
        "frozen-matmul"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout, ws: &CpuStorage, wl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(x), CpuStorage::F32(w)) = (xs, ws) else {
            candle_core::bail!("frozen-matmul: f32 only");
        };
        let (rows, k) = xl.shape().dims2()?;
        let (out, k2) = wl.shape().dims2()?;
        if k != k2 {
            candle_core::bail!("frozen-matmul: x is [{rows}, {k}] but w is [{out}, {k2}]");
        }
        let (x, w) = (contiguous(x, xl, self.name())?, contiguous(w, wl, self.name())?);
        let mut dst = vec![0f32; rows * out];
        let threads = candle_core::utils::get_num_threads();
        let parallelism = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
        // dst [rows, out] row-major = x [rows, k] (row-major) · wᵀ, where wᵀ [k, out] reads w
        // with row stride 1 and column stride k.
        unsafe {
            gemm::gemm(rows, out, k, dst.as_mut_ptr(), 1, out as isize, false, x.as_ptr(), 1, k as isize, w.as_ptr(), k as isize, 1, 0.0, 1.0, false, false, false, parallelism);
        }
        Ok((CpuStorage::F32(dst), Shape::from((rows, out))))
    }

    fn bwd(&self, _x: &Tensor, w: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        // ∂(x·Wᵀ)/∂x applied to the incoming gradient; W is frozen: no gradient.
        Ok((Some(grad.matmul(w)?), None))
    }
}

/// Whether [`frozen_matmul`] can serve `x` · `w`ᵀ: a frozen f32 weight on the CPU and an input
/// that needs a gradient (otherwise the plain matmul records nothing anyway).
pub fn applies(x: &Tensor, w: &Tensor) -> bool {
    x.track_op() && !w.track_op() && x.device().is_cpu() && x.dtype() == DType::F32 && w.dtype() == DType::F32
}

/// `x` [rows, in] · `w`ᵀ with `w` [out, in] frozen: the backward pass skips w's gradient.
pub fn frozen_matmul(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&w.contiguous()?, FrozenMatmul)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::teacher::model::testing::max_diff;
    use candle_core::{Device, Var};

    #[test]
    fn same_values_and_input_gradient_as_matmul_and_none_for_the_weight() {
        let d = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (7, 5), &d).unwrap()).unwrap();
        let w = Tensor::randn(0f32, 1.0, (3, 5), &d).unwrap();
        let g = Tensor::randn(0f32, 1.0, (7, 3), &d).unwrap();
        assert!(applies(x.as_tensor(), &w));
        let ours = frozen_matmul(x.as_tensor(), &w).unwrap();
        let wt = w.t().unwrap();
        let plain = x.as_tensor().matmul(&wt).unwrap();
        assert!(max_diff(&ours, &plain) < 1e-5);
        let a = (ours * &g).unwrap().sum_all().unwrap().backward().unwrap();
        let b = (plain * &g).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(max_diff(a.get(x.as_tensor()).unwrap(), b.get(x.as_tensor()).unwrap()) < 1e-5);
        assert!(a.get(&w).is_none(), "no gradient computed for the frozen weight");
        assert!(b.get(&wt).is_some(), "candle's matmul computes one (what this op saves)");
    }
}
