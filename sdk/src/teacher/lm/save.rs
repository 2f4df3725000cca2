//! Saving: Hugging Face exports, PEFT adapters, optimiser and training state.

use std::path::Path;

use candle_core::Tensor;

use super::LmTeacher;
use crate::error::{Error, Result};

impl LmTeacher {
    /// Saves the model for inference: `model.safetensors` with Hugging Face names (LoRA merged
    /// into the weights) plus the checkpoint's config and tokenizer files.
    pub fn save_pretrained(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let mut out: std::collections::HashMap<String, Tensor> = self.base.iter().map(|(k, t)| (k.clone(), t.clone())).collect();
        for (path, (a, b, scale)) in &self.lora {
            let name = format!("{path}.weight");
            if let Some(w) = out.get(&name) {
                let delta = (b.as_tensor().matmul(a.as_tensor())? * *scale)?;
                out.insert(name, (w + delta)?);
            }
        }
        let path = dir.join("model.safetensors");
        write_safetensors(&out, &path)?;
        // A file the source has must arrive: a failed copy is an error, not a file left out.
        let mut copied: Vec<&str> = Vec::new();
        for f in ["config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"] {
            let src = self.source_dir.join(f);
            if !src.is_file() {
                continue;
            }
            if src != dir.join(f) {
                std::fs::copy(&src, dir.join(f)).map_err(|e| Error::io(dir.join(f), e))?;
            }
            copied.push(f);
        }
        // A GGUF source has no such files: write them from what was read.
        let write = |name: &str, text: String| -> Result<()> {
            let p = dir.join(name);
            std::fs::write(&p, text).map_err(|e| Error::io(&p, e))
        };
        if !copied.contains(&"config.json") {
            let c = &self.decoder.config;
            let arch = if c.model_type == "qwen2" { "Qwen2ForCausalLM" } else { "LlamaForCausalLM" };
            let mut v = serde_json::to_value(c).map_err(|e| Error::serialize("config.json", e))?;
            v["architectures"] = serde_json::json!([arch]);
            v["torch_dtype"] = "float32".into();
            write("config.json", serde_json::to_string_pretty(&v).map_err(|e| Error::serialize("config.json", e))?)?;
        }
        if !copied.contains(&"tokenizer.json")
            && let Some(tj) = &self.tokenizer_json
        {
            write("tokenizer.json", tj.clone())?;
        }
        if !copied.contains(&"tokenizer_config.json") {
            write("tokenizer_config.json", self.tokenizer.config_json().to_string())?;
        }
        crate::teacher::TeacherCard::of(&self.options.teacher).write(dir)
    }

    /// Saves only the LoRA adapter in PEFT's format (`adapter_model.safetensors`,
    /// `adapter_config.json`).
    pub fn save_adapter(&self, dir: &Path) -> Result<()> {
        let l = self.options.teacher.lora.as_ref().ok_or_else(|| Error::invalid("lora", "this Teacher has no LoRA adapter"))?;
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let tensors: std::collections::HashMap<String, Tensor> = self.optimizer.params().iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
        write_safetensors(&tensors, &dir.join("adapter_model.safetensors"))?;
        let cfg = serde_json::json!({
            "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": l.r, "lora_alpha": l.lora_alpha,
            "target_modules": l.target_modules, "lora_dropout": 0.0, "bias": "none",
            "base_model_name_or_path": self.spec,
        });
        let p = dir.join("adapter_config.json");
        let text = serde_json::to_string_pretty(&cfg).map_err(|e| Error::serialize("adapter_config.json", e))?;
        std::fs::write(&p, text).map_err(|e| Error::io(&p, e))?;
        crate::teacher::TeacherCard::of(&self.options.teacher).write(dir)
    }

    /// Saves what resuming training needs: trainable weights (at full precision: the f32
    /// masters of bf16 weights) and optimiser state.
    pub fn save_training_state(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let tensors: std::collections::HashMap<String, Tensor> = self.optimizer.params().keys().filter_map(|k| Some((k.clone(), self.optimizer.full_precision(k)?))).collect();
        write_safetensors(&tensors, &dir.join("trainable.safetensors"))?;
        let opt = dir.join("optimizer.safetensors");
        let tmp = dir.join("optimizer.safetensors.tmp");
        self.optimizer.save(&tmp)?;
        std::fs::rename(&tmp, &opt).map_err(|e| Error::io(&opt, e))
    }

    /// Restores what [`LmTeacher::save_training_state`] wrote.
    pub fn load_training_state(&mut self, dir: &Path) -> Result<()> {
        let p = dir.join("trainable.safetensors");
        let t = candle_core::safetensors::load(&p, &self.device).map_err(|e| Error::Model { path: p.clone(), message: e.to_string() })?;
        let names: Vec<String> = self.optimizer.params().keys().cloned().collect();
        for name in &names {
            let v = t.get(name).ok_or_else(|| Error::Model { path: p.clone(), message: format!("missing `{name}`") })?;
            self.optimizer.set_full_precision(name, v)?;
        }
        self.inference = None;
        self.optimizer.load(&dir.join("optimizer.safetensors"), &self.device)
    }
}

/// Writes tensors atomically (temporary file, then rename).
pub(super) fn write_safetensors(tensors: &std::collections::HashMap<String, Tensor>, path: &Path) -> Result<()> {
    let tmp = path.with_extension("safetensors.tmp");
    candle_core::safetensors::save(tensors, &tmp).map_err(|e| Error::Model { path: tmp.clone(), message: e.to_string() })?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}
