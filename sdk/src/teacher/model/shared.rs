//! Training batches whose completions share prompts. GRPO scores G completions of each prompt,
//! so a batch of rows `prompt ‖ completion` would run every prompt through the model G times.
//! A [`SharedBatch`] holds each distinct prompt once (a prompt block) and the completions apart
//! (a completion block); in every layer a completion attends to its prompt's keys and values,
//! and their gradients flow back into the one copy of the prompt. The result equals the
//! row-by-row forward pass, with the prompt's share of the work divided by G.

use candle_core::{DType, Device, Result, Tensor};

use super::transformer::{Decoder, LeftPadded, attention_mask, positions_tensor};

/// Distinct prompts (left-padded) and the completions that continue them (right-padded).
#[derive(Debug, Clone)]
pub struct SharedBatch {
    /// Distinct prompts [U, T_p], left-padded.
    pub(super) prompt_ids: Tensor,
    /// Their positions [U, T_p] (u32; 0 on padding).
    prompt_positions: Tensor,
    /// Causal mask over the prompts [U, 1, T_p, T_p].
    pub(super) prompt_mask: Tensor,
    /// Completions [B, T_c], right-padded.
    pub(super) ids: Tensor,
    /// Their positions [B, T_c] (the prompt's length onwards; 0 on padding).
    positions: Tensor,
    /// Mask of completion queries over their prompt's keys, then their own [B, 1, T_c, T_p + T_c].
    pub(super) mask: Tensor,
    /// Row r continues prompt `row_prompt[r]` [B] (u32).
    pub(super) row_prompt: Tensor,
}

/// RoPE tables of both blocks of a [`SharedBatch`], [rows, 1, T, head_dim].
#[derive(Debug, Clone)]
pub struct SharedRope {
    pub(super) prompt_cos: Tensor,
    pub(super) prompt_sin: Tensor,
    pub(super) cos: Tensor,
    pub(super) sin: Tensor,
}

impl SharedBatch {
    /// A batch of `rows` (prompt ids, completion ids); equal prompts are stored once and `pad`
    /// fills padding. Fails on a row with an empty prompt (its first completion token would have
    /// no position to be predicted from).
    pub fn new(rows: &[(&[u32], &[u32])], pad: u32, dtype: DType, device: &Device) -> Result<Self> {
        if rows.is_empty() {
            candle_core::bail!("a batch needs at least one row");
        }
        let mut prompts: Vec<&[u32]> = Vec::new();
        let mut row_prompt = Vec::with_capacity(rows.len());
        for (r, (prompt, _)) in rows.iter().enumerate() {
            if prompt.is_empty() {
                candle_core::bail!("row {r} has an empty prompt: its first completion token has no position to be predicted from");
            }
            let u = match prompts.iter().position(|p| p == prompt) {
                Some(u) => u,
                None => {
                    prompts.push(prompt);
                    prompts.len() - 1
                }
            };
            row_prompt.push(u as u32);
        }
        let prompt = LeftPadded::new(&prompts, pad);
        let (p_pos, p_real) = (&prompt.pos, &prompt.real);
        let tc = rows.iter().map(|(_, c)| c.len()).max().unwrap_or(0).max(1);
        let (mut c_ids, mut q_pos, mut q_real, mut k_pos, mut k_real) = (Vec::with_capacity(rows.len() * tc), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for ((prompt, completion), &u) in rows.iter().zip(&row_prompt) {
            let (u, start) = (u as usize, prompt.len());
            c_ids.extend_from_slice(completion);
            c_ids.extend(std::iter::repeat_n(pad, tc - completion.len()));
            let real: Vec<bool> = (0..tc).map(|j| j < completion.len()).collect();
            let pos: Vec<i64> = (0..tc).map(|j| if j < completion.len() { (start + j) as i64 } else { 0 }).collect();
            k_pos.push(p_pos[u].iter().chain(&pos).copied().collect::<Vec<_>>());
            k_real.push(p_real[u].iter().chain(&real).copied().collect::<Vec<_>>());
            q_pos.push(pos);
            q_real.push(real);
        }
        let (prompt_ids, prompt_positions, prompt_mask) = prompt.tensors(dtype, device)?;
        Ok(SharedBatch {
            prompt_ids,
            prompt_positions,
            prompt_mask,
            ids: Tensor::from_vec(c_ids, (rows.len(), tc), device)?,
            positions: positions_tensor(&q_pos, device)?,
            mask: attention_mask(&q_pos, &k_pos, &k_real, &q_real, dtype, device)?,
            row_prompt: Tensor::from_vec(row_prompt, rows.len(), device)?,
        })
    }

    /// Padded completion length T_c (at least 1).
    pub fn completion_len(&self) -> Result<usize> {
        self.ids.dim(1)
    }

    /// Number of distinct prompts.
    pub fn prompts(&self) -> Result<usize> {
        self.prompt_ids.dim(0)
    }

    /// Hidden states [B, T_c, H] of the positions that predict each completion token: the last
    /// prompt position, then every completion position but the last, from the last layer's
    /// outputs `yp` [U, T_p, H] and `yc` [B, T_c, H]. Differentiable.
    pub fn predictors(&self, yp: &Tensor, yc: &Tensor) -> Result<Tensor> {
        let (tp, tc) = (yp.dim(1)?, yc.dim(1)?);
        let first = yp.narrow(1, tp - 1, 1)?.contiguous()?.index_select(&self.row_prompt, 0)?;
        if tc == 1 {
            return Ok(first);
        }
        Tensor::cat(&[&first, &yc.narrow(1, 0, tc - 1)?], 1)
    }
}

impl Decoder {
    /// RoPE tables for both blocks of `batch`; fails when a position is beyond the model's table.
    pub fn shared_rope(&self, batch: &SharedBatch) -> Result<SharedRope> {
        self.check_positions(&batch.prompt_positions)?;
        self.check_positions(&batch.positions)?;
        let (prompt_cos, prompt_sin) = self.rope_tables(&batch.prompt_positions)?;
        let (cos, sin) = self.rope_tables(&batch.positions)?;
        Ok(SharedRope { prompt_cos, prompt_sin, cos, sin })
    }

    /// The last layer's outputs (before the final norm) for the prompt block [U, T_p, H] and the
    /// completion block [B, T_c, H] of `batch`. Records a graph when the weights are tracked.
    pub fn forward_shared(&self, batch: &SharedBatch) -> Result<(Tensor, Tensor)> {
        let rope = self.shared_rope(batch)?;
        let (mut xp, mut xc) = (self.embed(&batch.prompt_ids)?, self.embed(&batch.ids)?);
        for i in 0..self.num_layers() {
            (xp, xc) = self.layer_forward_shared(i, &xp, &xc, &rope, batch)?;
        }
        Ok((xp, xc))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::random_decoder;
    use super::*;

    /// log-softmax logits of the positions predicting each completion token of `row` alone.
    fn alone(d: &Decoder, prompt: &[u32], completion: &[u32]) -> Tensor {
        let ids: Vec<u32> = prompt.iter().chain(completion).copied().collect();
        let t = ids.len();
        let pos = vec![(0..t as i64).collect::<Vec<_>>()];
        let mask = attention_mask(&pos, &pos, &[vec![true; t]], &[vec![true; t]], DType::F32, &Device::Cpu).unwrap();
        let positions = Tensor::from_vec((0..t as u32).collect::<Vec<_>>(), (1, t), &Device::Cpu).unwrap();
        let h = d.forward_hidden(&Tensor::from_vec(ids, (1, t), &Device::Cpu).unwrap(), &positions, &mask, None).unwrap();
        d.logits(&h.narrow(1, prompt.len() - 1, completion.len()).unwrap()).unwrap().squeeze(0).unwrap()
    }

    #[test]
    fn shared_prompts_give_the_logits_of_each_row_alone() {
        let (d, _) = random_decoder(2);
        let rows: [(&[u32], &[u32]); 4] = [(&[1, 5, 9, 2], &[3, 7, 2]), (&[6, 8], &[9, 9, 1, 4]), (&[1, 5, 9, 2], &[4]), (&[1, 5, 9, 2], &[11, 12])];
        let batch = SharedBatch::new(&rows, 0, DType::F32, &Device::Cpu).unwrap();
        assert_eq!(batch.prompts().unwrap(), 2);
        let (yp, yc) = d.forward_shared(&batch).unwrap();
        let logits = d.logits(&d.final_norm(&batch.predictors(&yp, &yc).unwrap()).unwrap()).unwrap();
        for (r, (p, c)) in rows.iter().enumerate() {
            let want = alone(&d, p, c);
            let got = logits.get(r).unwrap().narrow(0, 0, c.len()).unwrap();
            let diff = (want - got).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(diff < 1e-4, "row {r}: {diff}");
        }
    }

    #[test]
    fn an_empty_prompt_is_an_error() {
        let rows: [(&[u32], &[u32]); 2] = [(&[1, 2], &[3]), (&[], &[3])];
        let err = SharedBatch::new(&rows, 0, DType::F32, &Device::Cpu).unwrap_err().to_string();
        assert!(err.contains("row 1 has an empty prompt"), "{err}");
    }
}
