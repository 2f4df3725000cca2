//! The [`Teacher`] implementation: sampling for the trainer and the GRPO step.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor};

use super::LmTeacher;
use super::logprobs::packed_logprobs;
use crate::config::GrpoConfig;
use crate::error::{Error, Result};
use crate::grpo::{BatchSize, GrpoLoss};
use crate::query::Query;
use crate::teacher::model::Decoder;
use crate::teacher::model::checkpoint::accumulate_grads;
use crate::teacher::model::weights::TensorStore;
use crate::teacher::{StepMetrics, StepSettings, Teacher, TeacherSample, TeacherSampling, TrainItem};

impl Teacher for LmTeacher {
    fn sample(&mut self, queries: &[Query], sampling: &TeacherSampling) -> Result<Vec<Vec<TeacherSample>>> {
        let convs = queries.iter().map(|q| self.messages(q)).collect::<Result<Vec<_>>>()?;
        // A query's stream is keyed by its id: its instructions are the same in any batch.
        let keys: Vec<u64> = queries.iter().map(|q| crate::types::hash_str(&q.id)).collect();
        self.generate(&convs, &keys, sampling)
    }

    /// The model as given, and every `[teacher]` setting but the device (prompts, prefix,
    /// stops, dtype, LoRA).
    fn identity(&self) -> String {
        let t = &self.options.teacher;
        let mut settings = serde_json::json!({
            "dtype": t.dtype, "lora": t.lora, "system_prompt": t.system_prompt, "prompt_template": t.prompt_template,
            "instruction_prefix": t.instruction_prefix, "stop": t.stop, "seed": self.options.seed,
        });
        // Only when set, so that the identities of Teachers without choices stay what they were.
        if !t.choices.is_empty() {
            settings["choices"] = serde_json::json!(t.choices);
        }
        format!("{} {settings}", self.spec)
    }

    fn save_checkpoint(&self, dir: &Path) -> Result<()> {
        self.save_training_state(dir)
    }

    fn load_checkpoint(&mut self, dir: &Path) -> Result<()> {
        self.load_training_state(dir)
    }

    fn save_pretrained(&self, dir: &Path) -> Result<()> {
        LmTeacher::save_pretrained(self, dir)?;
        if self.options.teacher.lora.is_some() {
            self.save_adapter(&dir.join("adapter"))?;
        }
        Ok(())
    }

    fn prepare_training(&mut self, grpo: &GrpoConfig) -> Result<()> {
        if grpo.beta == 0.0 || self.reference.is_some() {
            return Ok(());
        }
        if self.optimizer.step > 0 {
            return Err(Error::Teacher(
                "β > 0 needs the initial weights as the KL reference, but this Teacher has already been trained; call prepare_training before the first step".into(),
            ));
        }
        let full = self.options.teacher.lora.is_none();
        // LoRA: the reference is the base model without adapters (frozen weights shared).
        // Full fine-tuning: a copy of the weights as they are now, before any update.
        let tensors: BTreeMap<String, Tensor> =
            self.base.iter().map(|(k, t)| Ok((k.clone(), if full { t.detach().copy()? } else { t.detach() }))).collect::<candle_core::Result<_>>()?;
        let mut store = TensorStore::new(tensors, false, &self.source_dir);
        let reference =
            Decoder::new(&self.decoder.config, &mut store, self.dtype, &self.device).map_err(|e| Error::Model { path: self.source_dir.clone(), message: e.to_string() })?;
        self.reference = Some(reference);
        Ok(())
    }

    fn step(&mut self, items: &[TrainItem<'_>], settings: &StepSettings<'_>) -> Result<Vec<StepMetrics>> {
        if items.is_empty() {
            return Err(Error::invalid("items", "a GRPO step needs at least one sample"));
        }
        if settings.learning_rates.is_empty() {
            return Err(Error::invalid("learning_rates", "a GRPO step needs the learning rate of at least one optimisation step"));
        }
        let g = settings.grpo;
        if g.beta != 0.0 && self.reference.is_none() {
            return Err(Error::invalid("grpo.beta", "β > 0 needs a reference model: call Teacher::prepare_training before the first step"));
        }
        let loss_fn = GrpoLoss {
            epsilon: g.epsilon,
            epsilon_high: g.epsilon_high.unwrap_or(g.epsilon),
            beta: g.beta,
            loss_type: g.loss_type,
            max_completion_length: g.max_completion_length,
        };
        // Micro-batches bound memory only: every loss type divides by the whole batch's size.
        // Masked (truncated) completions count as sequences but contribute no tokens, as in TRL.
        let masked = |s: &TeacherSample| g.mask_truncated_completions && s.truncated;
        let batch = BatchSize { sequences: items.len(), tokens: items.iter().filter(|i| !masked(i.sample)).map(|i| i.sample.completion_ids.len()).sum() };
        // Per micro-batch: the packed samples, their advantages and, when samples are to be
        // weighted, the sampler's log-probs padded like the completions.
        let cap = settings.importance_sampling_cap;
        let mut micro = Vec::new();
        let mut sampled: Vec<Option<Tensor>> = Vec::new();
        for mb in items.chunks(g.per_device_train_batch_size.max(1)) {
            let samples: Vec<&TeacherSample> = mb.iter().map(|i| i.sample).collect();
            let adv = Tensor::from_vec(mb.iter().map(|i| i.advantage).collect::<Vec<f32>>(), mb.len(), &self.device)?;
            let mut p = self.pack(&samples)?;
            if samples.iter().any(|s| masked(s)) {
                let keep = Tensor::from_vec(samples.iter().map(|s| if masked(s) { 0f32 } else { 1.0 }).collect::<Vec<_>>(), (samples.len(), 1), &self.device)?;
                p.cmask = p.cmask.broadcast_mul(&keep)?;
            }
            sampled.push(cap.map(|_| sampler_logprobs(&samples, p.targets.dim(1)?, &self.device)).transpose()?);
            micro.push((p, adv));
        }
        // Weights are measured once, on the first pass (TRL computes them from the "old"
        // log-probs of the batch), and kept for the passes after.
        let mut weights: Vec<Option<Tensor>> = vec![None; micro.len()];
        let mut importance: Option<crate::grpo::ImportanceStats> = None;
        // The reference's log-probs, once; the first pass's own log-probs are the "old" policy
        // of later passes (TRL's num_iterations), from this same training forward.
        let mut reference: Vec<Option<Tensor>> = Vec::with_capacity(micro.len());
        for (p, _) in &micro {
            reference.push(self.reference_logprobs(p, g.temperature)?);
        }
        let keep_old = settings.learning_rates.len() > 1;
        let mut old: Vec<Option<Tensor>> = vec![None; micro.len()];
        let params = self.optimizer.params().clone();
        let checkpointing = self.options.teacher.gradient_checkpointing;
        let mut metrics = Vec::with_capacity(settings.learning_rates.len());
        for &lr in settings.learning_rates {
            let mut grads: BTreeMap<String, Tensor> = BTreeMap::new();
            let (mut loss_sum, mut tokens, mut kl, mut low, mut high, mut region, mut entropy) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
            // Sums each trainable tensor's gradient over micro-batches (and over the per-layer
            // passes of gradient checkpointing).
            let mut absorb = |store: &GradStore| accumulate_grads(&mut grads, &params, store);
            for (i, (p, adv)) in micro.iter().enumerate() {
                let started = std::time::Instant::now();
                let (old_i, ref_i, kept_w, sampled_i) = (old[i].clone(), reference[i].clone(), weights[i].clone(), sampled[i].clone());
                let loss = |logp: &Tensor| -> Result<_> {
                    let w = match (kept_w, &sampled_i, cap) {
                        (Some(w), _, _) => Some(w),
                        (None, Some(s), Some(cap)) => Some(crate::grpo::importance_weights(logp, s, cap)?),
                        _ => None,
                    };
                    let out = loss_fn.compute(logp, old_i.as_ref(), ref_i.as_ref(), adv, &p.cmask, batch, w.as_ref())?;
                    Ok((out.loss.clone(), (out, logp.detach(), w)))
                };
                let mut ent = None;
                let (out, logp, w) = if checkpointing {
                    self.checkpointed_backward(p, g.temperature, loss, &mut absorb, &mut ent)?
                } else {
                    let mut parts = Vec::new();
                    let (l, out) = loss(&packed_logprobs(&self.decoder, p, g.temperature, Some(&mut parts))?)?;
                    ent = Some(Tensor::cat(&parts, 0)?);
                    absorb(&l.backward()?)?;
                    out
                };
                if let Some(e) = ent {
                    entropy += (e * &p.cmask)?.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
                }
                if weights[i].is_none()
                    && let (Some(w), Some(s)) = (&w, &sampled[i])
                {
                    let stats = crate::grpo::ImportanceStats::measure(w, &logp, s, &p.cmask)?;
                    importance = Some(importance.map_or(stats, |a| a.merge(stats)));
                    weights[i] = Some(w.clone());
                }
                if keep_old && old[i].is_none() {
                    old[i] = Some(logp);
                }
                tracing::debug!(rows = p.targets.dim(0)?, policy_s = started.elapsed().as_secs_f64(), checkpointing, "micro-batch");
                loss_sum += out.loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
                tokens += out.tokens;
                kl += out.kl.unwrap_or(0.0) * out.tokens;
                low += out.clip_ratio_low * out.tokens;
                high += out.clip_ratio_high * out.tokens;
                region += out.clip_ratio_region * out.tokens;
            }
            let grad_norm = self.optimizer.step(&grads, lr, g.max_grad_norm, g.into())?;
            self.inference = None;
            let t = tokens.max(1.0);
            metrics.push(StepMetrics {
                loss: loss_sum,
                kl: kl / t,
                clip_ratio_low_mean: low / t,
                clip_ratio_high_mean: high / t,
                clip_ratio_region_mean: region / t,
                grad_norm,
                learning_rate: lr,
                entropy: entropy / t,
                importance_sampling: importance,
            });
        }
        Ok(metrics)
    }
}

/// The sampler's log-probs of `samples`' completion tokens, [B, `tc`], zero past each completion
/// (as [`LmTeacher::pack`] pads the targets); every token must have one.
fn sampler_logprobs(samples: &[&TeacherSample], tc: usize, device: &candle_core::Device) -> Result<Tensor> {
    let mut rows = Vec::with_capacity(samples.len() * tc);
    for s in samples {
        if s.logprobs.len() != s.completion_ids.len() {
            return Err(Error::invalid(
                "sample.logprobs",
                format!("importance weighting needs the sampler's log-prob of every completion token: {} log-probs for {} tokens", s.logprobs.len(), s.completion_ids.len()),
            ));
        }
        rows.extend(s.logprobs.iter().copied().chain(std::iter::repeat(0.0)).take(tc));
    }
    Ok(Tensor::from_vec(rows, (samples.len(), tc), device)?)
}
