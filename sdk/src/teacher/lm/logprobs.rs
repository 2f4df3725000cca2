//! Packing a micro-batch (shared prompts) and per-token log-probs of its completions.

use candle_core::{D, DType, Tensor};

use super::LmTeacher;
use crate::error::{Error, Result};
use crate::teacher::TeacherSample;
use crate::teacher::model::token_logprob::token_logprobs;
use crate::teacher::model::{Decoder, SharedBatch};

impl LmTeacher {
    /// Per-token log-probs [B, T_c] of each sample's completion under `decoder` (temperature-
    /// scaled as when sampling), with the completion mask [B, T_c]. Differentiable.
    pub fn completion_logprobs(&self, decoder: &Decoder, samples: &[&TeacherSample], temperature: f64) -> Result<(Tensor, Tensor)> {
        let p = self.pack(samples)?;
        Ok((packed_logprobs(decoder, &p, temperature, None)?, p.cmask))
    }

    /// Samples as one batch: each distinct prompt once, completions right-padded.
    pub(super) fn pack(&self, samples: &[&TeacherSample]) -> Result<Packed> {
        let rows: Vec<(&[u32], &[u32])> = samples.iter().map(|s| (s.prompt_ids.as_slice(), s.completion_ids.as_slice())).collect();
        let batch = SharedBatch::new(&rows, self.tokenizer.pad_id, self.dtype, &self.device).map_err(|e| Error::invalid("samples", e.to_string()))?;
        let tc = batch.completion_len()?;
        let (mut targets, mut cmask) = (Vec::with_capacity(samples.len() * tc), Vec::with_capacity(samples.len() * tc));
        for s in samples {
            targets.extend(s.completion_ids.iter().copied().chain(std::iter::repeat(0)).take(tc));
            cmask.extend((0..tc).map(|j| if j < s.completion_ids.len() { 1.0f32 } else { 0.0 }));
        }
        Ok(Packed { batch, targets: Tensor::from_vec(targets, (samples.len(), tc), &self.device)?, cmask: Tensor::from_vec(cmask, (samples.len(), tc), &self.device)? })
    }

    /// The reference model's per-token log-probs of `p`'s completions (no graph), if β > 0.
    pub(super) fn reference_logprobs(&self, p: &Packed, temperature: f64) -> Result<Option<Tensor>> {
        let Some(r) = &self.reference else { return Ok(None) };
        // The reference holds plain tensors: its forward records no graph.
        Ok(Some(packed_logprobs(r, p, temperature, None)?.detach()))
    }
}

/// A micro-batch packed for a forward pass (see [`LmTeacher::pack`]).
pub(super) struct Packed {
    /// Distinct prompts and the completions.
    pub(super) batch: SharedBatch,
    /// Completion tokens [B, T_c] (0 on padding).
    pub(super) targets: Tensor,
    /// 1 on completion tokens, 0 on padding [B, T_c].
    pub(super) cmask: Tensor,
}

/// log p(target) [B, T_c] of `p`'s completions under `decoder` (one forward over the shared
/// batch, then the output head). Differentiable when `decoder` is.
pub(super) fn packed_logprobs(decoder: &Decoder, p: &Packed, temperature: f64, entropy: Option<&mut Vec<Tensor>>) -> Result<Tensor> {
    let (yp, yc) = decoder.forward_shared(&p.batch)?;
    head_logprobs(decoder, &p.batch.predictors(&yp, &yc)?, &p.targets, temperature, entropy)
}

/// Completion tokens per chunk of the output head: its [rows, T_c, vocab] logits (and their
/// log-softmax) exist for one chunk of rows at a time (~50 MB per 1,000 tokens per 49k vocab).
pub(super) const HEAD_TOKENS: usize = 256;

/// Rows of T_c completion tokens per output-head chunk (about [`HEAD_TOKENS`] tokens, at least 1).
pub(super) fn head_chunk_rows(tc: usize) -> usize {
    (HEAD_TOKENS / tc.max(1)).max(1)
}

/// log p(target) [B, T_c] under `decoder`'s output head from the last layer's outputs `x`
/// [B, T_c, H] at the positions predicting each target (before the final norm), temperature-
/// scaled as when sampling; rows in chunks of about [`HEAD_TOKENS`] tokens. Differentiable when
/// `decoder` or `x` is.
pub(super) fn head_logprobs(decoder: &Decoder, x: &Tensor, targets: &Tensor, temperature: f64, mut entropy: Option<&mut Vec<Tensor>>) -> Result<Tensor> {
    let (b, tc) = targets.dims2()?;
    let rows = head_chunk_rows(tc);
    let temp = if temperature > 0.0 { temperature } else { 1.0 };
    let mut parts = Vec::with_capacity(b.div_ceil(rows));
    for r0 in (0..b).step_by(rows) {
        let n = rows.min(b - r0);
        let logits = decoder.logits(&decoder.final_norm(&x.narrow(0, r0, n)?)?)?.to_dtype(DType::F32)?;
        let vocab = logits.dim(D::Minus1)?;
        let t = targets.narrow(0, r0, n)?.flatten_all()?;
        let (logp, h) = token_logprobs(&logits.reshape((n * tc, vocab))?, &t, temp)?;
        if let Some(out) = entropy.as_deref_mut() {
            // H = −Σ p·log p per position, measured only (no gradient).
            out.push(h.detach().reshape((n, tc))?);
        }
        parts.push(logp.reshape((n, tc))?);
    }
    Ok(Tensor::cat(&parts, 0)?)
}
