//! The clipped GRPO surrogate with TRL's loss normalisations and the k3 KL penalty.
//!
//! Per token: ρ = exp(logp − logp_old), L = −min(ρ·A, clip(ρ, 1−ε, 1+ε_high)·A) + β·KL, with
//! KL = exp(ref − logp) − (ref − logp) − 1 (Schulman's k3 estimator). Samples drawn by an older
//! policy (pipelined training) weigh the policy term by a truncated importance ratio w, as TRL's
//! `vllm_importance_sampling_correction` does: L = −w·min(…) + β·KL. Tokens are then averaged
//! as TRL's `loss_type` says, always over the whole optimisation batch ([`BatchSize`]), so
//! splitting it into micro-batches to save memory never changes the objective: `grpo` per
//! sequence then over the batch's sequences, `bnpo` and `dapo` over the batch's completion
//! tokens, `dr_grpo` over sequences × max_completion_length. So wst's `bnpo` is `dapo`: TRL's
//! `bnpo` averages over each micro-batch's tokens and then divides by the accumulation steps,
//! which weighs a token of a short micro-batch more; wst keeps the whole-batch average.

use candle_core::{D, DType, Tensor};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How per-token losses are averaged (TRL `loss_type`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LossType {
    /// Mean over each sequence's tokens, then over sequences (the original GRPO; length-biased).
    Grpo,
    /// Mean over all completion tokens of the batch (equal to `dapo` on one device).
    Bnpo,
    /// Sum over tokens divided by batch size × `max_completion_length` (Dr. GRPO).
    DrGrpo,
    /// Sum over tokens divided by all completion tokens of the optimisation step (DAPO; TRL's default).
    #[default]
    Dapo,
}

/// The loss's settings, named as in TRL's `GRPOConfig`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GrpoLoss {
    /// Lower clip range ε.
    pub epsilon: f64,
    /// Upper clip range ε_high (DAPO's clip-higher); equal to ε when not set.
    pub epsilon_high: f64,
    /// KL coefficient β; 0 disables the KL term and the reference model.
    pub beta: f64,
    /// How tokens are averaged.
    pub loss_type: LossType,
    /// Normaliser for `dr_grpo`.
    pub max_completion_length: usize,
}

/// A micro-batch's loss (differentiable) and its detached metrics.
#[derive(Debug, Clone)]
pub struct LossOutput {
    /// The scalar loss to back-propagate.
    pub loss: Tensor,
    /// Masked mean of the per-token k3 KL, when a reference was given.
    pub kl: Option<f64>,
    /// Fraction of tokens with ρ < 1 − ε and A < 0 (their gradient is clipped away).
    pub clip_ratio_low: f64,
    /// Fraction of tokens with ρ > 1 + ε_high and A > 0.
    pub clip_ratio_high: f64,
    /// Fraction clipped either way.
    pub clip_ratio_region: f64,
    /// Completion tokens in the micro-batch.
    pub tokens: f64,
}

/// The size of a whole optimisation batch, which every loss type divides by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSize {
    /// Completions in the batch.
    pub sequences: usize,
    /// Completion tokens in the batch.
    pub tokens: usize,
}

impl BatchSize {
    /// The size of a batch of completions with these lengths.
    pub fn of(completion_lengths: impl IntoIterator<Item = usize>) -> Self {
        let (mut sequences, mut tokens) = (0, 0);
        for l in completion_lengths {
            sequences += 1;
            tokens += l;
        }
        BatchSize { sequences, tokens }
    }
}

impl GrpoLoss {
    /// The loss of one micro-batch.
    ///
    /// Shapes: `logp`, `old_logp`, `ref_logp`, `mask` are [B, T] (mask 1 on completion tokens,
    /// 0 on padding); `advantages` is [B]. `old_logp = None` means on-policy (ρ = 1 in value,
    /// gradient of logp). `batch` is the size of the whole optimisation batch this micro-batch
    /// belongs to: the micro-batch losses of a batch sum to the batch's loss. `sampling_weight`
    /// [B, T] (see [`importance_weights`]) weighs each token's policy term, not its KL.
    // Each argument is a distinct tensor of the formula above.
    #[allow(clippy::too_many_arguments)]
    pub fn compute(
        &self,
        logp: &Tensor,
        old_logp: Option<&Tensor>,
        ref_logp: Option<&Tensor>,
        advantages: &Tensor,
        mask: &Tensor,
        batch: BatchSize,
        sampling_weight: Option<&Tensor>,
    ) -> Result<LossOutput> {
        let (b, t) = logp.dims2()?;
        if mask.dims() != [b, t] || advantages.dims() != [b] {
            return Err(Error::invalid("mask/advantages", format!("expected mask [{b}, {t}] and advantages [{b}], got {:?} and {:?}", mask.dims(), advantages.dims())));
        }
        if self.beta != 0.0 && ref_logp.is_none() {
            return Err(Error::invalid("ref_logp", "beta != 0 needs the reference model's log-probs"));
        }
        let mask = mask.to_dtype(logp.dtype())?;
        let old = match old_logp {
            Some(o) => o.detach(),
            None => logp.detach(),
        };
        let ratio = (logp - &old)?.exp()?;
        let adv = advantages.to_dtype(logp.dtype())?.unsqueeze(1)?;
        let clipped = ratio.clamp(1.0 - self.epsilon, 1.0 + self.epsilon_high)?;
        let l1 = ratio.broadcast_mul(&adv)?;
        let l2 = clipped.broadcast_mul(&adv)?;
        // −min(l1, l2) written as −(l1 − relu(l1 − l2)): one unambiguous gradient path.
        let mut per_token = (&l1 - (&l1 - &l2)?.relu()?)?.neg()?;
        if let Some(w) = sampling_weight {
            per_token = (per_token * w.detach().to_dtype(logp.dtype())?)?;
        }

        let tokens = mask.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        let masked_mean = |x: &Tensor| -> Result<f64> {
            let s = (x * &mask)?.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            Ok(s / tokens.max(1.0))
        };

        let mut kl_mean = None;
        if let Some(r) = ref_logp {
            let d = (r.detach() - logp)?;
            let kl = ((d.exp()? - &d)? - 1.0)?;
            kl_mean = Some(masked_mean(&kl.detach())?);
            if self.beta != 0.0 {
                per_token = (per_token + (kl * self.beta)?)?;
            }
        }

        let masked = (&per_token * &mask)?;
        let sequences = batch.sequences.max(1) as f64;
        let loss = match self.loss_type {
            LossType::Grpo => {
                let per_seq = masked.sum(D::Minus1)?.div(&mask.sum(D::Minus1)?.clamp(1.0, f64::INFINITY)?)?;
                (per_seq.sum_all()? / sequences)?
            }
            LossType::Bnpo | LossType::Dapo => (masked.sum_all()? / batch.tokens.max(1) as f64)?,
            LossType::DrGrpo => (masked.sum_all()? / (sequences * self.max_completion_length.max(1) as f64))?,
        };

        let ratio_d = ratio.detach();
        let adv_neg = adv.lt(0.0)?.to_dtype(logp.dtype())?;
        let adv_pos = adv.gt(0.0)?.to_dtype(logp.dtype())?;
        let low = ratio_d.lt(1.0 - self.epsilon)?.to_dtype(logp.dtype())?.broadcast_mul(&adv_neg)?;
        let high = ratio_d.gt(1.0 + self.epsilon_high)?.to_dtype(logp.dtype())?.broadcast_mul(&adv_pos)?;
        let region = (&low + &high)?;
        Ok(LossOutput { loss, kl: kl_mean, clip_ratio_low: masked_mean(&low)?, clip_ratio_high: masked_mean(&high)?, clip_ratio_region: masked_mean(&region)?, tokens })
    }
}

/// The truncated importance weights of samples drawn by another policy: per token
/// w = min(exp(logp − sampled_logp), cap), with `logp` the current policy's (detached) and
/// `sampled_logp` the sampler's, both [B, T]. Off-policy samples (a stale policy, a sampler that
/// differs numerically) are reweighted towards the policy being trained; the cap bounds the
/// variance (TRL's `vllm_importance_sampling_cap`, verl's rollout TIS).
pub fn importance_weights(logp: &Tensor, sampled_logp: &Tensor, cap: f64) -> Result<Tensor> {
    if logp.dims() != sampled_logp.dims() {
        return Err(Error::invalid("sampled_logp", format!("expected {:?}, got {:?}", logp.dims(), sampled_logp.dims())));
    }
    Ok((logp.detach() - sampled_logp.to_dtype(logp.dtype())?)?.exp()?.clamp(0.0, cap)?)
}

/// What importance weighting did to one optimisation batch (TRL's `sampling/…` logs).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImportanceStats {
    /// Smallest weight over completion tokens.
    pub ratio_min: f64,
    /// Mean weight over completion tokens.
    pub ratio_mean: f64,
    /// Largest weight (at most the cap).
    pub ratio_max: f64,
    /// Mean |logp − sampled_logp| over completion tokens.
    pub logp_difference_mean: f64,
    /// Largest |logp − sampled_logp|.
    pub logp_difference_max: f64,
    /// Completion tokens measured.
    pub tokens: f64,
}

impl ImportanceStats {
    /// The statistics of one micro-batch's weights `w` and log-prob differences, over `mask`.
    pub fn measure(w: &Tensor, logp: &Tensor, sampled_logp: &Tensor, mask: &Tensor) -> Result<Self> {
        let m = mask.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
        let values = |t: &Tensor| -> Result<Vec<f64>> {
            let t = t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
            Ok(t.into_iter().zip(&m).filter(|(_, m)| **m > 0.0).map(|(x, _)| x).collect())
        };
        let w = values(w)?;
        let d: Vec<f64> = values(&(logp.detach() - sampled_logp.to_dtype(logp.dtype())?)?.abs()?)?;
        let n = w.len() as f64;
        if w.is_empty() {
            return Ok(ImportanceStats {
                ratio_min: f64::NAN,
                ratio_mean: f64::NAN,
                ratio_max: f64::NAN,
                logp_difference_mean: f64::NAN,
                logp_difference_max: f64::NAN,
                tokens: 0.0,
            });
        }
        Ok(ImportanceStats {
            ratio_min: w.iter().copied().fold(f64::INFINITY, f64::min),
            ratio_mean: w.iter().sum::<f64>() / n,
            ratio_max: w.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            logp_difference_mean: d.iter().sum::<f64>() / n,
            logp_difference_max: d.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            tokens: n,
        })
    }

    /// The statistics of two parts of one batch together (means weighted by tokens).
    pub fn merge(self, other: Self) -> Self {
        if self.tokens == 0.0 {
            return other;
        }
        if other.tokens == 0.0 {
            return self;
        }
        let n = self.tokens + other.tokens;
        ImportanceStats {
            ratio_min: self.ratio_min.min(other.ratio_min),
            ratio_mean: (self.ratio_mean * self.tokens + other.ratio_mean * other.tokens) / n,
            ratio_max: self.ratio_max.max(other.ratio_max),
            logp_difference_mean: (self.logp_difference_mean * self.tokens + other.logp_difference_mean * other.tokens) / n,
            logp_difference_max: self.logp_difference_max.max(other.logp_difference_max),
            tokens: n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn t2(v: &[[f32; 3]; 2]) -> Tensor {
        Tensor::new(v, &Device::Cpu).unwrap()
    }

    fn cfg(loss_type: LossType) -> GrpoLoss {
        GrpoLoss { epsilon: 0.2, epsilon_high: 0.2, beta: 0.0, loss_type, max_completion_length: 4 }
    }

    // Two sequences; the second has one padding token. On-policy (ratio 1): per-token loss is −A.
    // A = [1, -2]. Row 1: 3 tokens of −1; row 2: 2 tokens of +2 (plus one masked).
    fn on_policy(loss_type: LossType) -> f32 {
        let logp = t2(&[[-1.0, -2.0, -0.5], [-0.3, -0.7, -9.0]]);
        let mask = t2(&[[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]);
        let adv = Tensor::new(&[1.0f32, -2.0], &Device::Cpu).unwrap();
        let out = cfg(loss_type).compute(&logp, None, None, &adv, &mask, BatchSize { sequences: 2, tokens: 5 }, None).unwrap();
        assert_eq!(out.tokens, 5.0);
        assert_eq!(out.clip_ratio_region, 0.0);
        out.loss.to_scalar::<f32>().unwrap()
    }

    #[test]
    fn loss_types_by_hand() {
        // grpo: mean(−1, +2) = 0.5; bnpo: (−3 + 4)/5 = 0.2; dr_grpo: 1/(2·4) = 0.125; dapo: 1/5.
        assert!((on_policy(LossType::Grpo) - 0.5).abs() < 1e-6);
        assert!((on_policy(LossType::Bnpo) - 0.2).abs() < 1e-6);
        assert!((on_policy(LossType::DrGrpo) - 0.125).abs() < 1e-6);
        assert!((on_policy(LossType::Dapo) - 0.2).abs() < 1e-6);
    }

    #[test]
    fn importance_weights_by_hand() {
        // Current log-probs 0 (p = 1 in log space, on-policy ρ = 1); the sampler's give ratios
        // exp(0 − ln x) = 1/x: 2, 4 → capped at 2, 0.5; row 2: 0.5, 2, and a padding token.
        let logp = t2(&[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]);
        let ln = |x: f32| x.ln();
        let sampled = t2(&[[ln(0.5), ln(0.25), ln(2.0)], [ln(2.0), ln(0.5), 7.0]]);
        let mask = t2(&[[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]);
        let w = importance_weights(&logp, &sampled, 2.0).unwrap();
        let wv = w.to_vec2::<f32>().unwrap();
        for (got, want) in wv[0].iter().chain(&wv[1][..2]).zip([2.0, 2.0, 0.5, 0.5, 2.0]) {
            assert!((got - want).abs() < 1e-6, "{wv:?}");
        }
        // Per token −w·A with A = [1, −2]: row 1 −(2 + 2 + 0.5), row 2 +2·(0.5 + 2); dapo / 5 tokens.
        let adv = Tensor::new(&[1.0f32, -2.0], &Device::Cpu).unwrap();
        let out = cfg(LossType::Dapo).compute(&logp, None, None, &adv, &mask, BatchSize { sequences: 2, tokens: 5 }, Some(&w)).unwrap();
        assert!((out.loss.to_scalar::<f32>().unwrap() - 0.1).abs() < 1e-6);
        let s = ImportanceStats::measure(&w, &logp, &sampled, &mask).unwrap();
        assert_eq!((s.ratio_min, s.ratio_max, s.tokens), (0.5, 2.0, 5.0));
        assert!((s.ratio_mean - 1.4).abs() < 1e-6);
        let l2 = 2f64.ln();
        assert!((s.logp_difference_mean - (l2 + 2.0 * l2 + l2 + l2 + l2) / 5.0).abs() < 1e-6 && (s.logp_difference_max - 2.0 * l2).abs() < 1e-6, "{s:?}");
        // Two micro-batches merge as one batch: means weighted by tokens.
        let one = ImportanceStats { ratio_min: 1.0, ratio_mean: 1.0, ratio_max: 1.0, logp_difference_mean: 0.0, logp_difference_max: 0.0, tokens: 5.0 };
        let m = s.merge(one);
        assert_eq!((m.ratio_min, m.ratio_max, m.tokens), (0.5, 2.0, 10.0));
        assert!((m.ratio_mean - 1.2).abs() < 1e-6);
    }

    #[test]
    fn clipping_by_hand() {
        // ρ = exp(logp − old). Token ratios: 1.5 (A>0: clipped to 1.2), 0.5 (A>0: unclipped, min
        // picks 0.5), 1.0; row 2 with A<0: 0.5 (clipped low: −min(−0.5, −0.8)=0.8), 1.5 (−min(−1.5,−1.2)=1.5).
        let old = t2(&[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]);
        let l = |r: f32| r.ln();
        let logp = t2(&[[l(1.5), l(0.5), 0.0], [l(0.5), l(1.5), 0.0]]);
        let mask = t2(&[[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]);
        let adv = Tensor::new(&[1.0f32, -1.0], &Device::Cpu).unwrap();
        let out = cfg(LossType::Bnpo).compute(&logp, Some(&old), None, &adv, &mask, BatchSize { sequences: 2, tokens: 5 }, None).unwrap();
        let expected = (-1.2 - 0.5 - 1.0 + 0.8 + 1.5) / 5.0;
        assert!((out.loss.to_scalar::<f32>().unwrap() - expected).abs() < 1e-5);
        assert!((out.clip_ratio_high - 0.2).abs() < 1e-9);
        assert!((out.clip_ratio_low - 0.2).abs() < 1e-9);
        assert!((out.clip_ratio_region - 0.4).abs() < 1e-9);
    }

    #[test]
    fn gradient_by_hand_and_clipped_tokens_get_none() {
        // d/dlogp of −ρA/N is −ρA/N where unclipped, 0 where clipped.
        let old = t2(&[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]);
        let ln = |r: f32| r.ln();
        let logp = Var::from_tensor(&t2(&[[ln(1.5), ln(0.9), 0.0], [ln(0.5), ln(1.1), 0.0]])).unwrap();
        let mask = t2(&[[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]);
        let adv = Tensor::new(&[2.0f32, -1.0], &Device::Cpu).unwrap();
        let out = cfg(LossType::Bnpo).compute(logp.as_tensor(), Some(&old), None, &adv, &mask, BatchSize { sequences: 2, tokens: 5 }, None).unwrap();
        let g = out.loss.backward().unwrap();
        let grad = g.get(logp.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
        let want = [[0.0, -0.9 * 2.0 / 5.0, -2.0 / 5.0], [0.0, 1.1 / 5.0, 0.0]];
        for (gr, wr) in grad.iter().zip(want) {
            for (g, w) in gr.iter().zip(wr) {
                assert!((g - w).abs() < 1e-5, "{grad:?} vs {want:?}");
            }
        }
    }

    #[test]
    fn k3_kl_by_hand() {
        // logp = ref on row 1 (KL 0); row 2: ref − logp = 1 → e − 2 on both real tokens.
        let logp = t2(&[[-1.0, -1.0, -1.0], [-2.0, -2.0, -2.0]]);
        let reference = t2(&[[-1.0, -1.0, -1.0], [-1.0, -1.0, -1.0]]);
        let mask = t2(&[[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]);
        let adv = Tensor::new(&[0.0f32, 0.0], &Device::Cpu).unwrap();
        let mut c = cfg(LossType::Bnpo);
        c.beta = 0.5;
        let out = c.compute(&logp, None, Some(&reference), &adv, &mask, BatchSize { sequences: 2, tokens: 5 }, None).unwrap();
        let k = std::f64::consts::E - 2.0;
        assert!((out.kl.unwrap() - 2.0 * k / 5.0).abs() < 1e-5);
        assert!((out.loss.to_scalar::<f32>().unwrap() as f64 - 0.5 * 2.0 * k / 5.0).abs() < 1e-5);
    }

    #[test]
    fn micro_batch_losses_sum_to_the_batch_loss_for_every_loss_type() {
        // Three rows of unequal lengths split 2 + 1 (an uneven last micro-batch): the parts must
        // sum to the whole for every loss type, which dividing by the number of micro-batches
        // (the old accumulation rule) got wrong for grpo, bnpo and dr_grpo.
        let mask = Tensor::new(&[[1.0f32, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0]], &Device::Cpu).unwrap();
        let logp = Tensor::new(&[[-1.0f32, -2.0, -0.5], [-0.3, -0.7, -9.0], [-1.5, -4.0, -4.0]], &Device::Cpu).unwrap();
        let adv = Tensor::new(&[1.0f32, -2.0, 0.5], &Device::Cpu).unwrap();
        let batch = BatchSize { sequences: 3, tokens: 6 };
        for lt in [LossType::Grpo, LossType::Bnpo, LossType::DrGrpo, LossType::Dapo] {
            let c = cfg(lt);
            let full = c.compute(&logp, None, None, &adv, &mask, batch, None).unwrap().loss.to_scalar::<f32>().unwrap();
            let mut parts = 0.0;
            for (start, len) in [(0, 2), (2, 1)] {
                let out =
                    c.compute(&logp.narrow(0, start, len).unwrap(), None, None, &adv.narrow(0, start, len).unwrap(), &mask.narrow(0, start, len).unwrap(), batch, None).unwrap();
                parts += out.loss.to_scalar::<f32>().unwrap();
            }
            assert!((full - parts).abs() < 1e-6, "{lt:?}: {full} vs {parts}");
        }
        // By hand (on-policy, per-token loss −A): grpo (−1 + 2 − 0.5)/3; dapo (−3 + 4 − 0.5)/6.
        let grpo = cfg(LossType::Grpo).compute(&logp, None, None, &adv, &mask, batch, None).unwrap().loss.to_scalar::<f32>().unwrap();
        assert!((grpo - 0.5 / 3.0).abs() < 1e-6);
        let dapo = cfg(LossType::Dapo).compute(&logp, None, None, &adv, &mask, batch, None).unwrap().loss.to_scalar::<f32>().unwrap();
        assert!((dapo - 0.5 / 6.0).abs() < 1e-6);
        assert_eq!(BatchSize::of([3, 2, 1]), batch);
    }

    #[test]
    fn beta_without_reference_is_an_error() {
        let m = t2(&[[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]]);
        let a = Tensor::new(&[0.0f32, 0.0], &Device::Cpu).unwrap();
        let mut c = cfg(LossType::Grpo);
        c.beta = 0.1;
        assert!(c.compute(&m, None, None, &a, &m, BatchSize { sequences: 2, tokens: 5 }, None).is_err());
    }
}
