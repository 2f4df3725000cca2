//! AdamW with decoupled weight decay, global-norm gradient clipping, and a state that can be
//! saved and restored for resuming (moments + step count, as safetensors).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};

use crate::error::{Error, Result};

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

/// AdamW over named parameters.
pub struct AdamW {
    params: BTreeMap<String, Var>,
    m: HashMap<String, Tensor>,
    v: HashMap<String, Tensor>,
    /// Optimisation steps taken.
    pub step: usize,
    settings: AdamWSettings,
}

impl AdamW {
    /// An optimiser for `params` (moments start at zero, allocated lazily).
    pub fn new(params: BTreeMap<String, Var>, settings: AdamWSettings) -> Self {
        AdamW { params, m: HashMap::new(), v: HashMap::new(), step: 0, settings }
    }

    /// The parameters, by name.
    pub fn params(&self) -> &BTreeMap<String, Var> {
        &self.params
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
    pub fn step(&mut self, grads: &BTreeMap<String, Tensor>, lr: f64, max_norm: f64) -> Result<f64> {
        let norm = Self::grad_norm(grads)?;
        if !norm.is_finite() {
            return Err(Error::Teacher(format!("gradient norm is {norm}; skipping would hide a bug, so training stops")));
        }
        let clip = if max_norm > 0.0 && norm > max_norm { max_norm / (norm + 1e-6) } else { 1.0 };
        self.step += 1;
        let s = self.settings;
        let bc1 = 1.0 - s.beta1.powi(self.step as i32);
        let bc2 = 1.0 - s.beta2.powi(self.step as i32);
        for (name, var) in &self.params {
            let Some(g) = grads.get(name) else { continue };
            let g = (g.to_dtype(DType::F32)? * clip)?;
            let theta = var.as_tensor().to_dtype(DType::F32)?;
            let m = match self.m.get(name) {
                Some(m) => ((m * s.beta1)? + (&g * (1.0 - s.beta1))?)?,
                None => (&g * (1.0 - s.beta1))?,
            };
            let v = match self.v.get(name) {
                Some(v) => ((v * s.beta2)? + (g.sqr()? * (1.0 - s.beta2))?)?,
                None => (g.sqr()? * (1.0 - s.beta2))?,
            };
            let update = ((&m / bc1)? / ((&v / bc2)?.sqrt()? + s.eps)?)?;
            let decayed = (&theta * (1.0 - lr * s.weight_decay))?;
            let new = (decayed - (update * lr)?)?;
            var.set(&new.to_dtype(var.dtype())?)?;
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
            }
        }
        Ok(())
    }

    fn check(&self, name: &str, path: &Path) -> Result<()> {
        if self.params.contains_key(name) {
            Ok(())
        } else {
            Err(Error::Model { path: path.to_path_buf(), message: format!("optimizer state for unknown parameter `{name}`") })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_adamw_step_by_hand() {
        // Step 1: m̂ = g, v̂ = g², update = g / (|g| + ε) ≈ sign(g). θ = 1·(1 − lr·wd) − lr·sign(g).
        let v = Var::new(&[1.0f32, -2.0], &Device::Cpu).unwrap();
        let mut opt = AdamW::new(BTreeMap::from([("w".to_string(), v.clone())]), AdamWSettings { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.1 });
        let g = BTreeMap::from([("w".to_string(), Tensor::new(&[0.5f32, -3.0], &Device::Cpu).unwrap())]);
        let norm = opt.step(&g, 0.01, 0.0).unwrap();
        assert!((norm - (0.25f64 + 9.0).sqrt()).abs() < 1e-6);
        let w = v.as_tensor().to_vec1::<f32>().unwrap();
        assert!((w[0] - (1.0 * (1.0 - 0.001) - 0.01)).abs() < 1e-6, "{w:?}");
        assert!((w[1] - (-2.0 * (1.0 - 0.001) + 0.01)).abs() < 1e-6, "{w:?}");
    }

    #[test]
    fn clipping_scales_to_max_norm() {
        let v = Var::new(&[0.0f32], &Device::Cpu).unwrap();
        let mut opt = AdamW::new(BTreeMap::from([("w".to_string(), v)]), AdamWSettings { beta1: 0.0, beta2: 0.0, eps: 0.0, weight_decay: 0.0 });
        let g = BTreeMap::from([("w".to_string(), Tensor::new(&[10.0f32], &Device::Cpu).unwrap())]);
        assert!((opt.step(&g, 1.0, 1.0).unwrap() - 10.0).abs() < 1e-6);
        // With β = 0 the moments are the clipped gradient itself.
        assert!((opt.m["w"].to_vec1::<f32>().unwrap()[0] - 1.0).abs() < 1e-5);
    }
}
