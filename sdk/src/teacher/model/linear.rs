//! A linear layer y = x·Wᵀ + b with an optional LoRA adapter (alpha/r)·(x·Aᵀ)·Bᵀ. Frozen
//! weights are plain tensors; only adapter (or fully fine-tuned) weights are `Var`s.

use candle_core::{Module, Result, Tensor};

/// LoRA matrices A [r, in] and B [out, r] with their scale alpha / r.
#[derive(Debug, Clone)]
pub struct Lora {
    /// Down projection A.
    pub a: Tensor,
    /// Up projection B (starts at zero, so a fresh adapter changes nothing).
    pub b: Tensor,
    /// alpha / r.
    pub scale: f64,
}

/// A linear layer in Hugging Face layout (weight [out, in]).
#[derive(Debug, Clone)]
pub struct Linear {
    /// Weight [out, in].
    pub weight: Tensor,
    /// Optional bias [out].
    pub bias: Option<Tensor>,
    /// Optional LoRA adapter.
    pub lora: Option<Lora>,
}

impl Linear {
    /// A layer from a [out, in] weight and optional bias, without adapter.
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Linear {
        Linear { weight, bias, lora: None }
    }

    /// The same layer with every tensor detached from autograd (storage shared).
    pub fn detached(&self) -> Linear {
        Linear {
            weight: self.weight.detach(),
            bias: self.bias.as_ref().map(Tensor::detach),
            lora: self.lora.as_ref().map(|l| Lora { a: l.a.detach(), b: l.b.detach(), scale: l.scale }),
        }
    }

    /// The same layer for inference: detached from autograd (no graph is recorded), LoRA merged
    /// into a contiguous weight, which a decoding step's few rows read by dot products
    /// (`few_rows`). A snapshot: later optimiser updates are not seen.
    pub fn for_inference(&self) -> Result<Linear> {
        let mut w = self.weight.detach();
        if let Some(l) = &self.lora {
            w = (w + (l.b.detach().matmul(&l.a.detach())? * l.scale)?)?;
        }
        Ok(Linear { weight: w.contiguous()?, bias: self.bias.as_ref().map(Tensor::detach), lora: None })
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        on_rows(x, |x2| {
            let mut y = xwt(x2, &self.weight)?;
            if let Some(b) = &self.bias {
                y = y.broadcast_add(b)?;
            }
            if let Some(l) = &self.lora {
                let up = xwt(&xwt(x2, &l.a)?, &l.b)?;
                y = (y + (up * l.scale)?)?;
            }
            Ok(y)
        })
    }
}

/// `f` applied to `x` [.., in] with its leading dims folded into rows ([rows, in]), its
/// [rows, out] result unfolded to [.., out]: one gemm against a weight, and in backward one gemm
/// for its gradient, instead of a per-batch product summed afterwards.
pub(crate) fn on_rows(x: &Tensor, f: impl FnOnce(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
    let Some((&width, lead)) = x.dims().split_last() else { candle_core::bail!("a product by a weight needs an input with a last dimension, got a scalar") };
    let y = f(&x.reshape((lead.iter().product::<usize>(), width))?)?;
    let mut out = lead.to_vec();
    out.push(y.dim(1)?);
    y.reshape(out)
}

/// `x` [rows, in] · `w`ᵀ for `w` [out, in], by the path that fits: dot products for a decoding
/// step's few rows, the op with its own backward when a gradient is wanted, gemm otherwise.
pub(crate) fn xwt(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    if super::few_rows::applies(x, w) {
        super::few_rows::few_rows_matmul(x, w)
    } else if super::matmul_wt::applies(x, w) {
        super::matmul_wt::matmul_wt(x, w)
    } else {
        x.matmul(&w.t()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn inference_copy_merges_lora_and_gives_the_same_outputs() {
        let d = Device::Cpu;
        let w = Var::from_tensor(&Tensor::randn(0f32, 1.0, (5, 3), &d).unwrap()).unwrap();
        let a = Tensor::randn(0f32, 1.0, (2, 3), &d).unwrap();
        let b = Tensor::randn(0f32, 1.0, (5, 2), &d).unwrap();
        let bias = Tensor::randn(0f32, 1.0, 5, &d).unwrap();
        let lin = Linear { lora: Some(Lora { a, b, scale: 0.5 }), ..Linear::new(w.as_tensor().clone(), Some(bias)) };
        let x = Tensor::randn(0f32, 1.0, (2, 4, 3), &d).unwrap();
        let inf = lin.for_inference().unwrap();
        assert!(inf.lora.is_none() && !inf.weight.track_op());
        let diff = (lin.forward(&x).unwrap() - inf.forward(&x).unwrap()).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-5);
        assert!(!inf.forward(&x).unwrap().track_op(), "an inference forward records no graph");
    }
}
