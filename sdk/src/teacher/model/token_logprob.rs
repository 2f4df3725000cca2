//! The output head's log p(target) and entropy per position as one CPU op with a hand-written
//! backward. Composed from candle ops (scale, log-softmax, gather, and exp·log-p for the
//! entropy) it is about ten passes over the [positions, vocab] logits, each allocating a
//! vocabulary-sized tensor, and as many again in the backward; fused, the forward reads each
//! row twice and allocates nothing of that size, and the backward writes the logits' gradient
//! in one pass: for z = logits / T and p = softmax(z),
//!   ∂ log p_t / ∂z_j = δ_jt − p_j,   ∂H / ∂z_j = −p_j (log p_j + H).
//! CPU f32 only; elsewhere the composed ops.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, D, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu_slice::contiguous;

/// log p(target) and the entropy H of softmax(`logits` / `temperature`) for each row of
/// `logits` [N, V] (f32) with `targets` [N] (u32): two [N] tensors, both differentiable
/// with respect to `logits`.
pub fn token_logprobs(logits: &Tensor, targets: &Tensor, temperature: f64) -> Result<(Tensor, Tensor)> {
    let (n, v) = logits.dims2()?;
    if targets.dims() != [n] {
        candle_core::bail!("token-logprob: targets {:?} do not fit logits {:?}", targets.shape(), logits.shape());
    }
    if logits.device().is_cpu() && logits.dtype() == DType::F32 && targets.dtype() == DType::U32 {
        let out = logits.contiguous()?.apply_op2(&targets.contiguous()?, TokenLogprob { inv_t: (1.0 / temperature) as f32, vocab: v })?;
        return Ok((out.narrow(1, 0, 1)?.squeeze(1)?, out.narrow(1, 1, 1)?.squeeze(1)?));
    }
    let z = if temperature == 1.0 { logits.clone() } else { (logits / temperature)? };
    let logp = candle_nn::ops::log_softmax(&z, D::Minus1)?;
    let entropy = (logp.exp()? * &logp)?.sum(D::Minus1)?.neg()?;
    let target = logp.gather(&targets.unsqueeze(1)?.contiguous()?, D::Minus1)?.squeeze(1)?;
    Ok((target, entropy))
}

/// Checks a target id against the vocabulary (an id past it would read another row).
fn target(t: u32, vocab: usize, op: &str) -> Result<usize> {
    let t = t as usize;
    if t >= vocab {
        candle_core::bail!("{op}: target id {t} is outside the vocabulary of {vocab}");
    }
    Ok(t)
}

/// The forward op: logits [N, V] f32 and targets [N] u32 to [N, 4] = (log p(target), H, m,
/// ln Σ exp(z − m)) with m the row's maximum. The last two columns are kept for the backward
/// and never leave this module.
struct TokenLogprob {
    inv_t: f32,
    vocab: usize,
}

/// For one row of `logits` scaled by `inv_t` (z): its maximum m, ln Σ exp(z − m), and
/// Σ p·(z − m). Working relative to m, as candle's log-softmax does, keeps the digits that
/// m + ln Σ would round away when the logits are large.
fn row_stats(row: &[f32], inv_t: f32) -> (f32, f32, f32) {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x * inv_t));
    let (mut sum, mut weighted) = (0f32, 0f32);
    for &x in row {
        let d = x * inv_t - max;
        let e = d.exp();
        sum += e;
        weighted += e * d;
    }
    (max, sum.ln(), weighted / sum)
}

impl CustomOp2 for TokenLogprob {
    fn name(&self) -> &'static str {
        "token-logprob"
    }

    fn cpu_fwd(&self, ls: &CpuStorage, ll: &Layout, ts: &CpuStorage, tl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(l), CpuStorage::U32(t)) = (ls, ts) else { candle_core::bail!("token-logprob: f32 logits and u32 targets only") };
        let (logits, targets) = (contiguous(l, ll, self.name())?, contiguous(t, tl, self.name())?);
        let v = self.vocab;
        let mut out = vec![0f32; 4 * targets.len()];
        out.par_chunks_mut(4).zip(logits.par_chunks(v).zip(targets.par_iter())).try_for_each(|(o, (row, &t))| -> Result<()> {
            let t = target(t, v, "token-logprob")?;
            let (max, ln_sum, mean_d) = row_stats(row, self.inv_t);
            o[0] = (row[t] * self.inv_t - max) - ln_sum;
            // H = −Σ p log p = −Σ p ((z − m) − ln Σ) = ln Σ − Σ p (z − m).
            o[1] = ln_sum - mean_d;
            o[2] = max;
            o[3] = ln_sum;
            Ok(())
        })?;
        Ok((CpuStorage::F32(out), Shape::from((targets.len(), 4))))
    }

    fn bwd(&self, logits: &Tensor, targets: &Tensor, res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let aux = Tensor::cat(&[res, grad], 1)?.contiguous()?;
        let g = logits.apply_op3_no_bwd(targets, &aux, &TokenLogprobGrad { inv_t: self.inv_t, vocab: self.vocab })?;
        Ok((Some(g), None))
    }
}

/// The backward op: logits [N, V], targets [N] and [N, 8] = the forward's output (log
/// p(target), H, m, ln Σ) and its gradient (zero in the last two columns: they are never
/// exposed) to the logits' gradient [N, V].
struct TokenLogprobGrad {
    inv_t: f32,
    vocab: usize,
}

impl CustomOp3 for TokenLogprobGrad {
    fn name(&self) -> &'static str {
        "token-logprob-grad"
    }

    fn cpu_fwd(&self, ls: &CpuStorage, ll: &Layout, ts: &CpuStorage, tl: &Layout, as_: &CpuStorage, al: &Layout) -> Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(l), CpuStorage::U32(t), CpuStorage::F32(a)) = (ls, ts, as_) else { candle_core::bail!("token-logprob-grad: f32 logits, u32 targets only") };
        let (logits, targets, aux) = (contiguous(l, ll, self.name())?, contiguous(t, tl, self.name())?, contiguous(a, al, self.name())?);
        let v = self.vocab;
        let mut out = vec![0f32; logits.len()];
        out.par_chunks_mut(v).zip(logits.par_chunks(v).zip(targets.par_iter().zip(aux.par_chunks(8)))).try_for_each(|(o, (row, (&t, a)))| -> Result<()> {
            let t = target(t, v, "token-logprob-grad")?;
            let (h, max, ln_sum, g_logp, g_h) = (a[1], a[2], a[3], a[4], a[5]);
            for (o, &x) in o.iter_mut().zip(row) {
                let log_p = (x * self.inv_t - max) - ln_sum;
                let p = log_p.exp();
                *o = -p * (g_logp + g_h * (log_p + h)) * self.inv_t;
            }
            o[t] += g_logp * self.inv_t;
            Ok(())
        })?;
        Ok((CpuStorage::F32(out), ll.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::teacher::model::testing::max_diff;
    use candle_core::{Device, Var};

    #[test]
    fn by_hand_on_two_tokens() {
        // logits [0, ln 3] at T = 1: p = (1/4, 3/4); target 1: log p = ln 0.75;
        // H = −(¼ ln ¼ + ¾ ln ¾) = 0.562335.
        let d = Device::Cpu;
        let logits = Tensor::new(&[[0f32, 3f32.ln()]], &d).unwrap();
        let (lp, h) = token_logprobs(&logits, &Tensor::new(&[1u32], &d).unwrap(), 1.0).unwrap();
        assert!((lp.to_vec1::<f32>().unwrap()[0] - 0.75f32.ln()).abs() < 1e-6);
        assert!((h.to_vec1::<f32>().unwrap()[0] - 0.562335).abs() < 1e-5);
        // ∂ log p_1 / ∂z = (−p_0, 1 − p_1) = (−¼, ¼).
        let v = Var::from_tensor(&logits).unwrap();
        let (lp, _) = token_logprobs(v.as_tensor(), &Tensor::new(&[1u32], &d).unwrap(), 1.0).unwrap();
        let g = lp.sum_all().unwrap().backward().unwrap();
        let g = g.get(v.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
        assert!((g[0][0] + 0.25).abs() < 1e-6 && (g[0][1] - 0.25).abs() < 1e-6, "{g:?}");
    }

    #[test]
    fn fused_equals_composed_values_and_gradients() {
        let d = Device::Cpu;
        for temperature in [1.0, 0.7] {
            let logits = Var::from_tensor(&Tensor::randn(0f32, 3.0, (6, 37), &d).unwrap()).unwrap();
            let targets = Tensor::new(&[0u32, 36, 5, 5, 17, 2], &d).unwrap();
            let (w_lp, w_h) = (Tensor::randn(0f32, 1.0, 6, &d).unwrap(), Tensor::randn(0f32, 1.0, 6, &d).unwrap());
            let (lp, h) = token_logprobs(logits.as_tensor(), &targets, temperature).unwrap();
            // The composed reference, through candle's own ops and autograd.
            let z = (logits.as_tensor() / temperature).unwrap();
            let logp = candle_nn::ops::log_softmax(&z, D::Minus1).unwrap();
            let h_ref = (logp.exp().unwrap() * &logp).unwrap().sum(D::Minus1).unwrap().neg().unwrap();
            let lp_ref = logp.gather(&targets.unsqueeze(1).unwrap(), D::Minus1).unwrap().squeeze(1).unwrap();
            assert!(max_diff(&lp, &lp_ref) < 1e-5, "log p: {}", max_diff(&lp, &lp_ref));
            assert!(max_diff(&h, &h_ref) < 1e-5, "entropy: {}", max_diff(&h, &h_ref));
            let loss = |lp: &Tensor, h: &Tensor| ((lp * &w_lp).unwrap() + (h * &w_h).unwrap()).unwrap().sum_all().unwrap();
            let g = loss(&lp, &h).backward().unwrap();
            let g_ref = loss(&lp_ref, &h_ref).backward().unwrap();
            let (a, b) = (g.get(logits.as_tensor()).unwrap(), g_ref.get(logits.as_tensor()).unwrap());
            assert!(max_diff(a, b) < 1e-5, "gradient at T = {temperature}: {}", max_diff(a, b));
            assert!(a.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap() > 1e-3, "a gradient that is not zero");
        }
    }

    #[test]
    fn a_target_outside_the_vocabulary_is_an_error() {
        let d = Device::Cpu;
        let err = token_logprobs(&Tensor::zeros((1, 4), DType::F32, &d).unwrap(), &Tensor::new(&[4u32], &d).unwrap(), 1.0).unwrap_err();
        assert!(err.to_string().contains("outside the vocabulary of 4"), "{err}");
    }
}
