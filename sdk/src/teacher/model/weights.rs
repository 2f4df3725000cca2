//! Loading checkpoint tensors (single or sharded safetensors) and deciding which become
//! trainable `Var`s. Frozen weights stay plain tensors so backward never computes their grads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Result as CResult, Tensor, Var};

use super::transformer::WeightSource;
use crate::error::{Error, Result};

/// Reads every tensor of a checkpoint folder: `model.safetensors`, or the shards listed in
/// `model.safetensors.index.json`, converted to `dtype` on `device`.
pub fn load_safetensors(dir: &Path, dtype: DType, device: &Device) -> Result<BTreeMap<String, Tensor>> {
    let single = dir.join("model.safetensors");
    let index = dir.join("model.safetensors.index.json");
    let files: Vec<PathBuf> = if single.is_file() {
        vec![single]
    } else if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(|e| Error::io(&index, e))?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Model { path: index.clone(), message: e.to_string() })?;
        let map = v.get("weight_map").and_then(|m| m.as_object()).ok_or_else(|| Error::Model { path: index.clone(), message: "expected a `weight_map` object".into() })?;
        let mut files: Vec<PathBuf> = map.values().filter_map(|f| f.as_str()).map(|f| dir.join(f)).collect();
        files.sort();
        files.dedup();
        files
    } else {
        return Err(Error::Model { path: dir.to_path_buf(), message: "no model.safetensors or model.safetensors.index.json".into() });
    };
    let mut out = BTreeMap::new();
    for f in files {
        let bad = |e: candle_core::Error| Error::Model { path: f.clone(), message: e.to_string() };
        // Memory-mapped, so a tensor is copied once from the page cache into its own storage,
        // instead of the whole file first being read into a buffer beside the tensors.
        // SAFETY: the file must not be modified while it is mapped; checkpoints are not
        // written in place (they are renamed into place), and the map lives only in this loop.
        let mapped = unsafe { candle_core::safetensors::MmapedSafetensors::new(&f) }.map_err(bad)?;
        for (k, _) in mapped.tensors() {
            let t = mapped.load(&k, device).map_err(bad)?;
            out.insert(k, t.to_dtype(dtype)?);
        }
    }
    Ok(out)
}

/// A [`WeightSource`] over loaded tensors that turns the tensors it hands out into `Var`s
/// when `trainable` is set, remembering them by name.
pub struct TensorStore {
    tensors: BTreeMap<String, Tensor>,
    trainable: bool,
    /// Trainable parameters handed out so far, by checkpoint name.
    pub vars: BTreeMap<String, Var>,
    origin: PathBuf,
}

impl TensorStore {
    /// A store over `tensors` (from `origin`, used in errors).
    pub fn new(tensors: BTreeMap<String, Tensor>, trainable: bool, origin: &Path) -> Self {
        TensorStore { tensors, trainable, vars: BTreeMap::new(), origin: origin.to_path_buf() }
    }

    /// The tensors, for building a second (reference) model.
    pub fn tensors(&self) -> &BTreeMap<String, Tensor> {
        &self.tensors
    }
}

impl WeightSource for TensorStore {
    fn get(&mut self, name: &str) -> CResult<Tensor> {
        if let Some(v) = self.vars.get(name) {
            return Ok(v.as_tensor().clone());
        }
        let t = self.tensors.get(name).ok_or_else(|| candle_core::Error::Msg(format!("{}: missing tensor `{name}`", self.origin.display())))?.clone();
        if self.trainable {
            let v = Var::from_tensor(&t)?;
            self.vars.insert(name.to_string(), v.clone());
            return Ok(v.as_tensor().clone());
        }
        Ok(t)
    }

    fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }
}
