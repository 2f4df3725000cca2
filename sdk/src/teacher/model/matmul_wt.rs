//! x·Wᵀ for a weight W stored [out, in], as a candle custom op with its own backward pass: the
//! gradient of x always, and of W only when W is trained (a `Var`), made by one gemm straight
//! in W's layout. Through candle's `x.matmul(&w.t())`, W's gradient is a gemm into the
//! transposed layout, added into a fresh zero tensor at the transpose, then transposed back and
//! added into another (a strided add) at W; and a frozen W's gradient is computed and thrown
//! away, which makes a LoRA step as slow as full fine-tuning. CPU f32 only; callers fall back
//! to the plain matmul elsewhere.

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};

use super::cpu_slice::contiguous;

/// The op: `x` [rows, in] (first argument) times `w` [out, in] (second) transposed.
struct MatmulWt;

impl CustomOp2 for MatmulWt {
    fn name(&self) -> &'static str {
        "matmul-wt"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout, ws: &CpuStorage, wl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(x), CpuStorage::F32(w)) = (xs, ws) else {
            candle_core::bail!("matmul-wt: f32 only");
        };
        let (rows, k) = xl.shape().dims2()?;
        let (out, k2) = wl.shape().dims2()?;
        if k != k2 {
            candle_core::bail!("matmul-wt: x is [{rows}, {k}] but w is [{out}, {k2}]");
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

    fn bwd(&self, x: &Tensor, w: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        // y = x·Wᵀ: ∂/∂x = grad·W; ∂/∂W = gradᵀ·x, [out, in] like W (gemm reads gradᵀ as strides).
        // Products of the detached operands: a product with a tracked operand records a graph
        // that keeps the incoming gradient and x alive, and a weight's gradient lives until the
        // whole backward pass ends (a step's memory grew 7x before this).
        let (xd, wd) = (x.detach(), w.detach());
        let gx = if x.track_op() { Some(grad.matmul(&wd)?) } else { None };
        let gw = if w.track_op() { Some(grad.t()?.matmul(&xd)?) } else { None };
        Ok((gx, gw))
    }
}

/// Whether [`matmul_wt`] can serve `x` · `w`ᵀ: 2-D f32 operands on the CPU, one of them
/// wanting a gradient (without a graph the plain matmul records nothing anyway).
pub fn applies(x: &Tensor, w: &Tensor) -> bool {
    (x.track_op() || w.track_op()) && x.rank() == 2 && w.rank() == 2 && x.device().is_cpu() && w.device().is_cpu() && x.dtype() == DType::F32 && w.dtype() == DType::F32
}

/// `x` [rows, in] · `w`ᵀ with `w` [out, in]; the backward pass computes w's gradient only when
/// w is trained.
pub fn matmul_wt(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&w.contiguous()?, MatmulWt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::teacher::model::testing::max_diff;
    use candle_core::{Device, Var};

    #[test]
    fn same_values_and_input_gradient_as_matmul_and_none_for_a_frozen_weight() {
        let d = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (7, 5), &d).unwrap()).unwrap();
        let w = Tensor::randn(0f32, 1.0, (3, 5), &d).unwrap();
        let g = Tensor::randn(0f32, 1.0, (7, 3), &d).unwrap();
        assert!(applies(x.as_tensor(), &w));
        let ours = matmul_wt(x.as_tensor(), &w).unwrap();
        let wt = w.t().unwrap();
        let plain = x.as_tensor().matmul(&wt).unwrap();
        assert!(max_diff(&ours, &plain) < 1e-5);
        let a = (ours * &g).unwrap().sum_all().unwrap().backward().unwrap();
        let b = (plain * &g).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(max_diff(a.get(x.as_tensor()).unwrap(), b.get(x.as_tensor()).unwrap()) < 1e-5);
        assert!(a.get(&w).is_none(), "no gradient computed for the frozen weight");
        assert!(b.get(&wt).is_some(), "candle's matmul computes one (what this op saves)");
    }

    #[test]
    fn a_trained_weight_gets_the_gradient_candle_gives_it_in_its_own_layout() {
        let d = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (6, 4), &d).unwrap()).unwrap();
        let w = Var::from_tensor(&Tensor::randn(0f32, 1.0, (3, 4), &d).unwrap()).unwrap();
        let g = Tensor::randn(0f32, 1.0, (6, 3), &d).unwrap();
        let ours = (matmul_wt(x.as_tensor(), w.as_tensor()).unwrap() * &g).unwrap().sum_all().unwrap().backward().unwrap();
        let plain = (x.as_tensor().matmul(&w.as_tensor().t().unwrap()).unwrap() * &g).unwrap().sum_all().unwrap().backward().unwrap();
        for v in [&x, &w] {
            assert!(max_diff(ours.get(v.as_tensor()).unwrap(), plain.get(v.as_tensor()).unwrap()) < 1e-5);
        }
        let gw = ours.get(w.as_tensor()).unwrap();
        assert!(gw.dims() == [3, 4] && gw.is_contiguous());
        // By hand: ∂/∂W[o][i] = Σ_r g[r][o]·x[r][i], here for o = 1, i = 2.
        let (gv, xv) = (g.to_vec2::<f32>().unwrap(), x.as_tensor().to_vec2::<f32>().unwrap());
        let hand: f32 = (0..6).map(|r| gv[r][1] * xv[r][2]).sum();
        assert!((gw.to_vec2::<f32>().unwrap()[1][2] - hand).abs() < 1e-5);
    }

    #[test]
    fn without_a_gradient_it_stands_aside_and_bad_shapes_are_errors() {
        let d = Device::Cpu;
        let (x, w) = (Tensor::randn(0f32, 1.0, (2, 4), &d).unwrap(), Tensor::randn(0f32, 1.0, (3, 4), &d).unwrap());
        assert!(!applies(&x, &w), "nothing to differentiate: the plain matmul serves");
        let tracked = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 5), &d).unwrap()).unwrap();
        assert!(matmul_wt(tracked.as_tensor(), &w).is_err(), "widths that do not match");
    }

    #[test]
    fn the_gradients_carry_no_graph() {
        // A gradient that records how it was made keeps the tensors it was made from alive
        // until the backward pass ends (a weight's gradient is never consumed during it).
        let d = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (6, 4), &d).unwrap()).unwrap();
        let w = Var::from_tensor(&Tensor::randn(0f32, 1.0, (3, 4), &d).unwrap()).unwrap();
        let store = matmul_wt(x.as_tensor(), w.as_tensor()).unwrap().sum_all().unwrap().backward().unwrap();
        for v in [&x, &w] {
            assert!(!store.get(v.as_tensor()).unwrap().track_op());
        }
    }

    /// Measures (prints) gemm's rate on large f32 products of a SmolLM2 step's shapes, the bound
    /// BENCHMARKS.md sets against issue 27's goal 3, and checks one element of each by hand.
    /// `cargo test --release -p wst-sdk --lib gemm_rate_at_training_shapes -- --ignored --nocapture`
    #[test]
    #[ignore = "a timing harness: run by hand in release, on an idle machine"]
    fn gemm_rate_at_training_shapes() {
        let d = Device::Cpu;
        for (m, k, n) in [(2048, 576, 1536), (2048, 1536, 576), (1536, 2048, 576), (2048, 2048, 2048), (2048, 576, 49152)] {
            let a = Tensor::randn(0f32, 1.0, (m, k), &d).unwrap();
            let b = Tensor::randn(0f32, 1.0, (k, n), &d).unwrap();
            let c = a.matmul(&b).unwrap();
            let (row, col) = (a.get(m - 1).unwrap().to_vec1::<f32>().unwrap(), b.t().unwrap().get(n - 1).unwrap().to_vec1::<f32>().unwrap());
            let hand: f32 = row.iter().zip(&col).map(|(x, y)| x * y).sum();
            let got = c.get(m - 1).unwrap().get(n - 1).unwrap().to_scalar::<f32>().unwrap();
            assert!((got - hand).abs() < 1e-3 * (k as f32).sqrt());
            let reps = 5;
            let start = std::time::Instant::now();
            for _ in 0..reps {
                std::hint::black_box(a.matmul(&b).unwrap());
            }
            let s = start.elapsed().as_secs_f64() / reps as f64;
            println!("{m}x{k}x{n}: {:.0} GFLOP/s", 2.0 * (m * k * n) as f64 / s / 1e9);
        }
    }
}
