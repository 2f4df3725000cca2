//! AdamW with decoupled weight decay, global-norm gradient clipping, and a state that can be
//! saved and restored for resuming (moments, step count and master weights, as safetensors).
//!
//! Mixed precision: parameters held in bf16 or f16 get an f32 master copy. Updates land on the
//! master (at lr 1e-6 an update is far below bf16's resolution of about 0.4% and would be
//! rounded away), and the parameter receives the rounded master after each step. Moments are
//! f32 too. Norm weights and biases get no weight decay, as in transformers.
//!
//! On the CPU with f32 parameters the update runs in place: three passes over each parameter
//! (first moment, second moment, the weight itself) with no allocation, where candle's
//! composed ops made about fourteen passes and as many parameter-sized tensors (two seconds of
//! a short SmolLM2 step).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use candle_core::{CpuStorage, DType, Device, InplaceOp2, InplaceOp3, Layout, Tensor, Var};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::teacher::model::cpu_slice::{f32_slice, f32_slice_mut};

/// AdamW settings, named as in transformers' `TrainingArguments`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWSettings {
    /// β1.
    pub beta1: f64,
    /// β2.
    pub beta2: f64,
    /// ε.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

impl From<&crate::config::GrpoConfig> for AdamWSettings {
    fn from(g: &crate::config::GrpoConfig) -> Self {
        AdamWSettings { beta1: g.adam_beta1, beta2: g.adam_beta2, eps: g.adam_epsilon, weight_decay: g.weight_decay }
    }
}

/// Whether a parameter is exempt from weight decay: biases and normalisation weights, which
/// transformers' Trainer also leaves out (decaying a norm's scale towards 0 only hurts).
pub fn exempt_from_decay(name: &str) -> bool {
    name.ends_with(".bias") || name.rsplit('.').nth(1).is_some_and(|module| module.contains("norm"))
}

/// AdamW over named parameters.
pub struct AdamW {
    params: BTreeMap<String, Var>,
    /// f32 master copies of the parameters stored in lower precision.
    master: HashMap<String, Tensor>,
    no_decay: BTreeSet<String>,
    m: HashMap<String, Tensor>,
    v: HashMap<String, Tensor>,
    /// Optimisation steps taken.
    pub step: usize,
}

impl AdamW {
    /// An optimiser for `params` (moments start at zero, allocated lazily; f32 master copies of
    /// low-precision parameters are made now).
    pub fn new(params: BTreeMap<String, Var>) -> Result<Self> {
        let mut master = HashMap::new();
        for (name, var) in &params {
            if var.dtype() != DType::F32 {
                master.insert(name.clone(), var.as_tensor().to_dtype(DType::F32)?);
            }
        }
        let no_decay = params.keys().filter(|n| exempt_from_decay(n)).cloned().collect();
        Ok(AdamW { params, master, no_decay, m: HashMap::new(), v: HashMap::new(), step: 0 })
    }

    /// The parameters, by name.
    pub fn params(&self) -> &BTreeMap<String, Var> {
        &self.params
    }

    /// A parameter's value at full precision: its f32 master when it has one, else itself.
    pub fn full_precision(&self, name: &str) -> Option<Tensor> {
        self.master.get(name).cloned().or_else(|| self.params.get(name).map(|v| v.as_tensor().clone()))
    }

    /// Sets a parameter (and its master) from a full-precision value, e.g. when resuming.
    pub fn set_full_precision(&mut self, name: &str, value: &Tensor) -> Result<()> {
        let Some(var) = self.params.get(name) else { return Err(Error::Teacher(format!("no parameter `{name}`"))) };
        let value = value.to_dtype(DType::F32)?.to_device(var.device())?;
        var.set(&value.to_dtype(var.dtype())?)?;
        if var.dtype() != DType::F32 {
            self.master.insert(name.to_string(), value);
        }
        Ok(())
    }

    /// Global L2 norm of `grads`.
    pub fn grad_norm(grads: &BTreeMap<String, Tensor>) -> Result<f64> {
        let mut sq = 0.0f64;
        for g in grads.values() {
            sq += g.to_dtype(DType::F32)?.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
        }
        Ok(sq.sqrt())
    }

    /// One update with `grads` (by parameter name) at learning rate `lr`, after clipping the
    /// global norm to `max_norm` (0 = no clipping). Returns the norm before clipping.
    pub fn step(&mut self, grads: &BTreeMap<String, Tensor>, lr: f64, max_norm: f64, s: AdamWSettings) -> Result<f64> {
        let norm = Self::grad_norm(grads)?;
        if !norm.is_finite() {
            return Err(Error::Teacher(format!("gradient norm is {norm}; skipping would hide a bug, so training stops")));
        }
        let clip = if max_norm > 0.0 && norm > max_norm { max_norm / (norm + 1e-6) } else { 1.0 };
        self.step += 1;
        let bc1 = 1.0 - s.beta1.powi(self.step as i32);
        let bc2 = 1.0 - s.beta2.powi(self.step as i32);
        for (name, var) in &self.params {
            let Some(g) = grads.get(name) else { continue };
            let decay = if self.no_decay.contains(name) { 0.0 } else { s.weight_decay };
            let theta = var.as_tensor();
            if theta.device().is_cpu() && theta.dtype() == DType::F32 && g.dtype() == DType::F32 && theta.is_contiguous() {
                let g = g.contiguous()?;
                let zeros = || Tensor::zeros(theta.shape(), DType::F32, theta.device());
                let m = match self.m.remove(name) {
                    Some(m) => m,
                    None => zeros()?,
                };
                let v = match self.v.remove(name) {
                    Some(v) => v,
                    None => zeros()?,
                };
                m.inplace_op2(&g, &Moment { beta: s.beta1 as f32, clip: clip as f32, squared: false })?;
                v.inplace_op2(&g, &Moment { beta: s.beta2 as f32, clip: clip as f32, squared: true })?;
                theta.inplace_op3(&m, &v, &Update { lr: lr as f32, keep: (1.0 - lr * decay) as f32, bc1: bc1 as f32, bc2: bc2 as f32, eps: s.eps as f32 })?;
                self.m.insert(name.clone(), m);
                self.v.insert(name.clone(), v);
                continue;
            }
            let g = (g.to_dtype(DType::F32)? * clip)?;
            let theta = match self.master.get(name) {
                Some(m) => m.clone(),
                None => var.as_tensor().to_dtype(DType::F32)?,
            };
            let m = match self.m.get(name) {
                Some(m) => ((m * s.beta1)? + (&g * (1.0 - s.beta1))?)?,
                None => (&g * (1.0 - s.beta1))?,
            };
            let v = match self.v.get(name) {
                Some(v) => ((v * s.beta2)? + (g.sqr()? * (1.0 - s.beta2))?)?,
                None => (g.sqr()? * (1.0 - s.beta2))?,
            };
            let update = ((&m / bc1)? / ((&v / bc2)?.sqrt()? + s.eps)?)?;
            let decayed = (&theta * (1.0 - lr * decay))?;
            let new = (decayed - (update * lr)?)?;
            var.set(&new.to_dtype(var.dtype())?)?;
            if var.dtype() != DType::F32 {
                self.master.insert(name.clone(), new);
            }
            self.m.insert(name.clone(), m);
            self.v.insert(name.clone(), v);
        }
        Ok(norm)
    }

    /// Writes moments and step count to `path` (safetensors).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut t: HashMap<String, Tensor> = HashMap::new();
        for (k, m) in &self.m {
            t.insert(format!("m.{k}"), m.clone());
        }
        for (k, v) in &self.v {
            t.insert(format!("v.{k}"), v.clone());
        }
        for (k, w) in &self.master {
            t.insert(format!("master.{k}"), w.clone());
        }
        t.insert("step".into(), Tensor::new(&[self.step as u32], &Device::Cpu)?);
        candle_core::safetensors::save(&t, path).map_err(|e| Error::Model { path: path.to_path_buf(), message: e.to_string() })
    }

    /// Restores moments and step count written by [`AdamW::save`].
    pub fn load(&mut self, path: &Path, device: &Device) -> Result<()> {
        let t = candle_core::safetensors::load(path, device).map_err(|e| Error::Model { path: path.to_path_buf(), message: e.to_string() })?;
        for (k, v) in t {
            if k == "step" {
                self.step = v.to_vec1::<u32>()?.first().copied().unwrap_or(0) as usize;
            } else if let Some(n) = k.strip_prefix("m.") {
                self.check(n, path)?;
                self.m.insert(n.to_string(), v);
            } else if let Some(n) = k.strip_prefix("v.") {
                self.check(n, path)?;
                self.v.insert(n.to_string(), v);
            } else if let Some(n) = k.strip_prefix("master.") {
                self.check(n, path)?;
                self.set_full_precision(n, &v)?;
            }
        }
        Ok(())
    }

    fn check(&self, name: &str, path: &Path) -> Result<()> {
        if self.params.contains_key(name) { Ok(()) } else { Err(Error::Model { path: path.to_path_buf(), message: format!("optimizer state for unknown parameter `{name}`") }) }
    }
}

/// Elements per parallel chunk of the in-place updates.
const CHUNK: usize = 1 << 14;

/// A moment in place: m ← β·m + (1 − β)·(c·g), or with `squared` v ← β·v + (1 − β)·(c·g)².
struct Moment {
    beta: f32,
    clip: f32,
    squared: bool,
}

impl InplaceOp2 for Moment {
    fn name(&self) -> &'static str {
        "adamw-moment"
    }

    fn cpu_fwd(&self, ms: &mut CpuStorage, ml: &Layout, gs: &CpuStorage, gl: &Layout) -> candle_core::Result<()> {
        let (m, g) = (f32_slice_mut(ms, ml, self.name())?, f32_slice(gs, gl, self.name())?);
        if m.len() != g.len() {
            candle_core::bail!("adamw-moment: {} moments for {} gradients", m.len(), g.len());
        }
        let (beta, rest, clip, squared) = (self.beta, 1.0 - self.beta, self.clip, self.squared);
        m.par_chunks_mut(CHUNK).zip(g.par_chunks(CHUNK)).for_each(|(m, g)| {
            for (m, &g) in m.iter_mut().zip(g) {
                let g = g * clip;
                *m = *m * beta + if squared { g * g } else { g } * rest;
            }
        });
        Ok(())
    }
}

/// The weight in place: θ ← θ·(1 − lr·λ) − lr·(m / bc1) / (√(v / bc2) + ε).
struct Update {
    lr: f32,
    keep: f32,
    bc1: f32,
    bc2: f32,
    eps: f32,
}

impl InplaceOp3 for Update {
    fn name(&self) -> &'static str {
        "adamw-update"
    }

    fn cpu_fwd(&self, ts: &mut CpuStorage, tl: &Layout, ms: &CpuStorage, ml: &Layout, vs: &CpuStorage, vl: &Layout) -> candle_core::Result<()> {
        let theta = f32_slice_mut(ts, tl, self.name())?;
        let (m, v) = (f32_slice(ms, ml, self.name())?, f32_slice(vs, vl, self.name())?);
        if theta.len() != m.len() || theta.len() != v.len() {
            candle_core::bail!("adamw-update: {} weights, {} and {} moments", theta.len(), m.len(), v.len());
        }
        theta.par_chunks_mut(CHUNK).zip(m.par_chunks(CHUNK).zip(v.par_chunks(CHUNK))).for_each(|(t, (m, v))| {
            for ((t, &m), &v) in t.iter_mut().zip(m).zip(v) {
                let update = (m / self.bc1) / ((v / self.bc2).sqrt() + self.eps);
                *t = *t * self.keep - update * self.lr;
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_adamw_step_by_hand() {
        // Step 1: m̂ = g, v̂ = g², update = g / (|g| + ε) ≈ sign(g). θ = 1·(1 − lr·wd) − lr·sign(g).
        let v = Var::new(&[1.0f32, -2.0], &Device::Cpu).unwrap();
        let mut opt = AdamW::new(BTreeMap::from([("w".to_string(), v.clone())])).unwrap();
        let g = BTreeMap::from([("w".to_string(), Tensor::new(&[0.5f32, -3.0], &Device::Cpu).unwrap())]);
        let norm = opt.step(&g, 0.01, 0.0, AdamWSettings { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.1 }).unwrap();
        assert!((norm - (0.25f64 + 9.0).sqrt()).abs() < 1e-6);
        let w = v.as_tensor().to_vec1::<f32>().unwrap();
        assert!((w[0] - (1.0 * (1.0 - 0.001) - 0.01)).abs() < 1e-6, "{w:?}");
        assert!((w[1] - (-2.0 * (1.0 - 0.001) + 0.01)).abs() < 1e-6, "{w:?}");
    }

    /// Three steps with clipping, weight decay and a decay-exempt bias, against AdamW written
    /// out in f64: the in-place CPU path (f32 parameters) follows the formulas.
    #[test]
    fn in_place_steps_follow_adamw_written_out() {
        let d = Device::Cpu;
        let (w0, b0) = (vec![0.5f32, -1.0, 2.0, 0.0], vec![0.1f32]);
        let (w, b) = (Var::new(w0.as_slice(), &d).unwrap(), Var::new(b0.as_slice(), &d).unwrap());
        let mut opt = AdamW::new(BTreeMap::from([("l.weight".to_string(), w.clone()), ("l.bias".to_string(), b.clone())])).unwrap();
        let s = AdamWSettings { beta1: 0.9, beta2: 0.99, eps: 1e-8, weight_decay: 0.1 };
        let grads = [vec![3.0f32, -4.0, 0.5, 1.0, 2.0], vec![-1.0, 0.25, 0.0, 2.0, -0.5], vec![0.1, 0.1, -0.1, 0.3, 0.0]];
        let (lr, max_norm) = (0.05, 2.0);
        // The reference, in f64: five values, the last the bias (no decay).
        let mut theta: Vec<f64> = w0.iter().chain(&b0).map(|&x| x as f64).collect();
        let (mut m, mut v) = (vec![0.0f64; 5], vec![0.0f64; 5]);
        for (t, g) in grads.iter().enumerate() {
            let gt = BTreeMap::from([("l.weight".to_string(), Tensor::new(&g[..4], &d).unwrap()), ("l.bias".to_string(), Tensor::new(&g[4..], &d).unwrap())]);
            opt.step(&gt, lr, max_norm, s).unwrap();
            let norm = g.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
            let clip = if norm > max_norm { max_norm / (norm + 1e-6) } else { 1.0 };
            let step = t as i32 + 1;
            for i in 0..5 {
                let gi = g[i] as f64 * clip;
                m[i] = 0.9 * m[i] + 0.1 * gi;
                v[i] = 0.99 * v[i] + 0.01 * gi * gi;
                let update = (m[i] / (1.0 - 0.9f64.powi(step))) / ((v[i] / (1.0 - 0.99f64.powi(step))).sqrt() + 1e-8);
                let decay = if i == 4 { 0.0 } else { 0.1 };
                theta[i] = theta[i] * (1.0 - lr * decay) - lr * update;
            }
        }
        let got: Vec<f32> = w.as_tensor().to_vec1::<f32>().unwrap().into_iter().chain(b.as_tensor().to_vec1::<f32>().unwrap()).collect();
        for (i, (&g, &want)) in got.iter().zip(&theta).enumerate() {
            assert!((g as f64 - want).abs() < 1e-5, "value {i}: {g} against {want}");
        }
        // The moments saved for resuming are the ones the steps used.
        let saved_m = opt.m["l.weight"].to_vec1::<f32>().unwrap();
        assert!(saved_m.iter().zip(&m).all(|(&a, &b)| (a as f64 - b).abs() < 1e-6), "{saved_m:?} against {m:?}");
    }

    #[test]
    fn clipping_scales_to_max_norm() {
        let v = Var::new(&[0.0f32], &Device::Cpu).unwrap();
        let mut opt = AdamW::new(BTreeMap::from([("w".to_string(), v)])).unwrap();
        let g = BTreeMap::from([("w".to_string(), Tensor::new(&[10.0f32], &Device::Cpu).unwrap())]);
        assert!((opt.step(&g, 1.0, 1.0, AdamWSettings { beta1: 0.0, beta2: 0.0, eps: 0.0, weight_decay: 0.0 }).unwrap() - 10.0).abs() < 1e-6);
        // With β = 0 the moments are the clipped gradient itself.
        assert!((opt.m["w"].to_vec1::<f32>().unwrap()[0] - 1.0).abs() < 1e-5);
    }

    const ADAM: AdamWSettings = AdamWSettings { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 };

    #[test]
    fn bf16_parameters_move_through_their_f32_master() {
        // 1000 steps of lr 1e-5 move an f32 weight by ≈ 0.01 (each Adam update ≈ lr · sign(g)).
        // Each is ~200× below bf16's half-step at 1.0 (2⁻⁹): without a master copy the bf16
        // weight would round back to 1.0 every time and never move.
        let d = Device::Cpu;
        let w = Var::from_tensor(&Tensor::new(&[1.0f32], &d).unwrap().to_dtype(DType::BF16).unwrap()).unwrap();
        let mut opt = AdamW::new(BTreeMap::from([("w".to_string(), w.clone())])).unwrap();
        let g = BTreeMap::from([("w".to_string(), Tensor::new(&[0.3f32], &d).unwrap().to_dtype(DType::BF16).unwrap())]);
        for _ in 0..1000 {
            opt.step(&g, 1e-5, 0.0, ADAM).unwrap();
        }
        let master = opt.full_precision("w").unwrap().to_vec1::<f32>().unwrap()[0];
        assert!((master - 0.99).abs() < 2e-4, "master {master}");
        let param = w.as_tensor().to_dtype(DType::F32).unwrap().to_vec1::<f32>().unwrap()[0];
        assert!((param - master).abs() <= 0.004 && param < 1.0, "bf16 parameter {param}");
        // Saved and restored, the master survives at full precision.
        let dir = tempfile::tempdir().unwrap();
        opt.save(&dir.path().join("o.safetensors")).unwrap();
        let w2 = Var::from_tensor(&Tensor::new(&[1.0f32], &d).unwrap().to_dtype(DType::BF16).unwrap()).unwrap();
        let mut again = AdamW::new(BTreeMap::from([("w".to_string(), w2)])).unwrap();
        again.load(&dir.path().join("o.safetensors"), &d).unwrap();
        assert_eq!(again.full_precision("w").unwrap().to_vec1::<f32>().unwrap()[0], master);
    }

    #[test]
    fn norms_and_biases_get_no_weight_decay() {
        assert!(exempt_from_decay("model.layers.0.input_layernorm.weight"));
        assert!(exempt_from_decay("model.layers.3.post_attention_layernorm.weight"));
        assert!(exempt_from_decay("model.norm.weight"));
        assert!(exempt_from_decay("model.layers.0.self_attn.q_proj.bias"));
        assert!(!exempt_from_decay("model.layers.0.self_attn.q_proj.weight"));
        assert!(!exempt_from_decay("model.embed_tokens.weight"));
        // With a zero gradient only decay moves a weight: the norm stays, the projection shrinks.
        let d = Device::Cpu;
        let norm = Var::new(&[2.0f32], &d).unwrap();
        let proj = Var::new(&[2.0f32], &d).unwrap();
        let mut opt = AdamW::new(BTreeMap::from([("model.norm.weight".to_string(), norm.clone()), ("model.layers.0.mlp.up_proj.weight".to_string(), proj.clone())])).unwrap();
        let zero = Tensor::new(&[0.0f32], &d).unwrap();
        let g = BTreeMap::from([("model.norm.weight".to_string(), zero.clone()), ("model.layers.0.mlp.up_proj.weight".to_string(), zero)]);
        opt.step(&g, 0.1, 0.0, AdamWSettings { weight_decay: 0.5, ..ADAM }).unwrap();
        assert_eq!(norm.as_tensor().to_vec1::<f32>().unwrap(), [2.0]);
        assert!((proj.as_tensor().to_vec1::<f32>().unwrap()[0] - 2.0 * (1.0 - 0.05)).abs() < 1e-6);
    }
}
