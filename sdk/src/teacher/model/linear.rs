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

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let w = self.weight.t()?;
        let mut y = x.broadcast_matmul(&w)?;
        if let Some(b) = &self.bias {
            y = y.broadcast_add(b)?;
        }
        if let Some(l) = &self.lora {
            let down = x.broadcast_matmul(&l.a.t()?)?;
            let up = down.broadcast_matmul(&l.b.t()?)?;
            y = (y + (up * l.scale)?)?;
        }
        Ok(y)
    }
}
