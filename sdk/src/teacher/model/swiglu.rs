//! The MLP's gate, silu(g) · u, as one CPU op with a hand-written backward. Composed, candle
//! runs silu and a product forward and about six elementwise ops backward (silu's derivative
//! alone is built from four), each allocating an activation-sized tensor; fused, it is one pass
//! each way, with σ = sigmoid(g):
//!   ∂L/∂g = d · u · σ · (1 + g · (1 − σ)),   ∂L/∂u = d · g · σ.
//! CPU f32 only; elsewhere the composed ops.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu_slice::f32_slice;

/// Elements per parallel task: large enough that rayon's hand-offs cost nothing.
const CHUNK: usize = 1 << 14;

/// silu(`gate`) · `up`, differentiable in both (same shape).
pub(crate) fn swiglu(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    if gate.device().is_cpu() && gate.dtype() == DType::F32 && up.dtype() == DType::F32 {
        return gate.contiguous()?.apply_op2(&up.contiguous()?, Swiglu);
    }
    gate.silu()? * up
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

fn same_shape(a: &Layout, b: &Layout, op: &str) -> Result<()> {
    if a.shape() != b.shape() {
        candle_core::bail!("{op}: {:?} vs {:?}", a.shape(), b.shape());
    }
    Ok(())
}

/// The forward op: arguments gate and up.
struct Swiglu;

impl CustomOp2 for Swiglu {
    fn name(&self) -> &'static str {
        "swiglu"
    }

    fn cpu_fwd(&self, gs: &CpuStorage, gl: &Layout, us: &CpuStorage, ul: &Layout) -> Result<(CpuStorage, Shape)> {
        let (g, u) = (f32_slice(gs, gl, self.name())?, f32_slice(us, ul, self.name())?);
        same_shape(gl, ul, self.name())?;
        let mut out = vec![0f32; g.len()];
        out.par_chunks_mut(CHUNK).zip(g.par_chunks(CHUNK).zip(u.par_chunks(CHUNK))).for_each(|(o, (g, u))| {
            for ((o, &g), &u) in o.iter_mut().zip(g).zip(u) {
                *o = g * sigmoid(g) * u;
            }
        });
        Ok((CpuStorage::F32(out), gl.shape().clone()))
    }

    fn bwd(&self, gate: &Tensor, up: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        // One op writes both gradients, stacked on a new first dimension.
        let both = gate.apply_op3_no_bwd(up, &grad.contiguous()?, &SwigluGrad)?;
        Ok((Some(both.get(0)?), Some(both.get(1)?)))
    }
}

/// The backward op: arguments gate, up and ∂L/∂y; result [2, ..] = (∂L/∂gate, ∂L/∂up).
struct SwigluGrad;

impl CustomOp3 for SwigluGrad {
    fn name(&self) -> &'static str {
        "swiglu-grad"
    }

    fn cpu_fwd(&self, gs: &CpuStorage, gl: &Layout, us: &CpuStorage, ul: &Layout, ds: &CpuStorage, dl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (g, u, d) = (f32_slice(gs, gl, self.name())?, f32_slice(us, ul, self.name())?, f32_slice(ds, dl, self.name())?);
        same_shape(gl, ul, self.name())?;
        same_shape(gl, dl, self.name())?;
        let n = g.len();
        let mut out = vec![0f32; 2 * n];
        let (dg, du) = out.split_at_mut(n);
        dg.par_chunks_mut(CHUNK).zip(du.par_chunks_mut(CHUNK)).zip(g.par_chunks(CHUNK).zip(u.par_chunks(CHUNK)).zip(d.par_chunks(CHUNK))).for_each(|((dg, du), ((g, u), d))| {
            for ((dg, du), ((&g, &u), &d)) in dg.iter_mut().zip(du.iter_mut()).zip(g.iter().zip(u).zip(d)) {
                let s = sigmoid(g);
                *dg = d * u * s * (1.0 + g * (1.0 - s));
                *du = d * g * s;
            }
        });
        let mut dims = vec![2];
        dims.extend_from_slice(gl.shape().dims());
        Ok((CpuStorage::F32(out), Shape::from(dims)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::teacher::model::testing::assert_same_values_and_gradients;
    use candle_core::{Device, Var};

    #[test]
    fn one_element_by_hand() {
        // g = 1, u = 2: σ(1) = 0.731059, y = 1 · 0.731059 · 2 = 1.462117;
        // ∂y/∂g = 2 · 0.731059 · (1 + 1 · 0.268941) = 1.855341, ∂y/∂u = 0.731059.
        let d = Device::Cpu;
        let g = Var::from_tensor(&Tensor::new(&[1f32], &d).unwrap()).unwrap();
        let u = Var::from_tensor(&Tensor::new(&[2f32], &d).unwrap()).unwrap();
        let y = swiglu(g.as_tensor(), u.as_tensor()).unwrap();
        assert!((y.to_vec1::<f32>().unwrap()[0] - 1.462117).abs() < 1e-5);
        let grads = y.sum_all().unwrap().backward().unwrap();
        let dg = grads.get(g.as_tensor()).unwrap().to_vec1::<f32>().unwrap()[0];
        let du = grads.get(u.as_tensor()).unwrap().to_vec1::<f32>().unwrap()[0];
        assert!((dg - 1.855341).abs() < 1e-5 && (du - 0.731059).abs() < 1e-5, "{dg} {du}");
    }

    #[test]
    fn fused_equals_composed_values_and_gradients() {
        let d = Device::Cpu;
        // More elements than one chunk, and not a multiple of it.
        let g = Var::from_tensor(&Tensor::randn(0f32, 3.0, (3, 7, 1001), &d).unwrap()).unwrap();
        let u = Var::from_tensor(&Tensor::randn(0f32, 1.0, (3, 7, 1001), &d).unwrap()).unwrap();
        let fused = swiglu(g.as_tensor(), u.as_tensor()).unwrap();
        let plain = (g.as_tensor().silu().unwrap() * u.as_tensor()).unwrap();
        assert_same_values_and_gradients(&fused, &plain, &[&g, &u], 1e-5, 1e-5);
    }
}
