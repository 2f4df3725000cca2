//! `LmTeacher`: a causal language model from a checkpoint that writes instructions (batched,
//! KV-cached sampling) and trains with GRPO (chunked per-token log-probs, gradient accumulation,
//! global-norm clipping, AdamW, a learning-rate schedule, full fine-tuning or LoRA).
//!
//! One concern per file: loading and options here; `generate` (sampling), `logprobs`
//! (packing and per-token log-probs), `backward` (the checkpointed backward pass), `train` (the
//! GRPO step, as the [`Teacher`] implementation) and `save` (checkpoints, adapters, exports).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, Var};
use minijinja::context;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::chat::ChatTokenizer;
use super::model::linear::Lora;
use super::model::weights::{TensorStore, load_safetensors};
use super::model::{Decoder, ModelConfig};
use super::optimizer::AdamW;
use crate::config::{GrpoConfig, TeacherConfig};
use crate::error::{Error, Result};
use crate::models::hub;
use crate::query::Query;
use crate::template::Template;
use crate::types::ChatMessage;

/// Everything `LmTeacher` needs besides the checkpoint. GRPO settings are not among them: the
/// trainer passes its one [`GrpoConfig`] to every step ([`StepSettings`]).
#[derive(Debug, Clone)]
pub struct TeacherOptions {
    /// Device, dtype, LoRA, prompts, stop strings, gradient checkpointing.
    pub teacher: TeacherConfig,
    /// Seed of the LoRA adapters' random initialisation (`wst` uses the run's `grpo.seed`).
    pub seed: u64,
}

impl Default for TeacherOptions {
    fn default() -> Self {
        TeacherOptions { teacher: TeacherConfig::default(), seed: GrpoConfig::default().seed }
    }
}

impl TeacherOptions {
    /// Options from the `[teacher]` section, LoRA seeded with `seed`.
    pub fn from_config(teacher: &TeacherConfig, seed: u64) -> Self {
        TeacherOptions { teacher: teacher.clone(), seed }
    }
}

/// Parses a device string.
pub fn parse_device(spec: &str) -> Result<Device> {
    match spec {
        "cpu" => Ok(Device::Cpu),
        s if s == "cuda" || s.starts_with("cuda:") => {
            let n = match s.strip_prefix("cuda:") {
                Some(n) => n.parse::<usize>().map_err(|_| Error::invalid("device", format!("expected cuda:N, got `{s}`")))?,
                None => 0,
            };
            Device::new_cuda(n).map_err(|e| Error::invalid("device", format!("`{s}`: {e} (build with the `cuda` feature)")))
        }
        other => Err(Error::invalid("device", format!("expected cpu, cuda or cuda:N, got `{other}`"))),
    }
}

fn parse_dtype(spec: &str, device: &Device) -> Result<DType> {
    Ok(match spec {
        "f32" => DType::F32,
        "bf16" => DType::BF16,
        "f16" => DType::F16,
        "auto" => {
            if device.is_cpu() {
                DType::F32
            } else {
                DType::BF16
            }
        }
        other => return Err(Error::invalid("dtype", format!("expected f32, bf16, f16 or auto, got `{other}`"))),
    })
}

/// A trainable Teacher language model.
pub struct LmTeacher {
    decoder: Decoder,
    /// The frozen model of the KL term (made by `prepare_training` when β > 0).
    reference: Option<Decoder>,
    /// The inference copy sampling runs on, rebuilt after the weights change.
    inference: Option<Decoder>,
    tokenizer: ChatTokenizer,
    optimizer: AdamW,
    /// Every checkpoint tensor by Hugging Face name; trainable ones are their `Var`s.
    base: BTreeMap<String, Tensor>,
    /// LoRA adapters (A, B, alpha / r) by the checkpoint path of their linear layer.
    lora: BTreeMap<String, (Var, Var, f64)>,
    options: TeacherOptions,
    prompt: Template,
    /// What the model was loaded from, as given (a catalog name, hub id or path).
    spec: String,
    source_dir: PathBuf,
    device: Device,
    dtype: DType,
    tokenizer_json: Option<String>,
}

impl std::fmt::Debug for LmTeacher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LmTeacher").field("model", &self.source_dir).field("lora", &self.options.teacher.lora.is_some()).finish()
    }
}

impl LmTeacher {
    /// Loads a Teacher from a Hugging Face folder, a hub id, a `.gguf` file or a catalog name
    /// (`smollm2-135m-instruct`, see [`crate::models`]).
    pub fn load(model: &str, mut options: TeacherOptions) -> Result<Self> {
        // A trained Teacher's folder says how it was prompted.
        if let Some(card) = super::TeacherCard::read(Path::new(model))? {
            card.apply_to(&mut options.teacher, Path::new(model));
        }
        let adapter = Path::new(model).join("adapter_config.json");
        if adapter.is_file() && !Path::new(model).join("config.json").is_file() {
            return Self::load_adapter(Path::new(model), options);
        }
        let spec = model.to_string();
        let resolved = crate::models::resolve(model)?;
        let model = resolved.as_str();
        let mut t = Self::load_resolved(model, options)?;
        t.spec = spec;
        Ok(t)
    }

    /// A PEFT LoRA adapter folder (`adapter_config.json`, `adapter_model.safetensors`) on its
    /// base model (`base_model_name_or_path`: a catalog name, hub id or path, relative paths
    /// taken from the adapter folder): the trained Teacher, ready to sample or train on.
    pub fn load_adapter(dir: &Path, mut options: TeacherOptions) -> Result<Self> {
        if let Some(card) = super::TeacherCard::read(dir)? {
            card.apply_to(&mut options.teacher, dir);
        }
        let cfg_path = dir.join("adapter_config.json");
        let text = std::fs::read_to_string(&cfg_path).map_err(|e| Error::io(&cfg_path, e))?;
        let bad = |m: String| Error::Model { path: cfg_path.clone(), message: m };
        let cfg: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if cfg["peft_type"].as_str().is_some_and(|t| t != "LORA") {
            return Err(bad(format!("peft_type `{}`: only LORA adapters are supported", cfg["peft_type"])));
        }
        let base = cfg["base_model_name_or_path"].as_str().ok_or_else(|| bad("no `base_model_name_or_path`".into()))?;
        let base = if dir.join(base).exists() { dir.join(base).display().to_string() } else { base.to_string() };
        let r = cfg["r"].as_u64().ok_or_else(|| bad("no rank `r`".into()))? as usize;
        let lora_alpha = cfg["lora_alpha"].as_f64().ok_or_else(|| bad("no `lora_alpha`".into()))?;
        let target_modules: Vec<String> = match &cfg["target_modules"] {
            serde_json::Value::Array(a) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            serde_json::Value::String(s) => vec![s.clone()],
            _ => return Err(bad("no `target_modules` list".into())),
        };
        options.teacher.lora = Some(crate::config::LoraConfig { r, lora_alpha, target_modules });
        let mut t = Self::load(&base, options)?;
        let weights = dir.join("adapter_model.safetensors");
        let tensors = candle_core::safetensors::load(&weights, &t.device).map_err(|e| Error::Model { path: weights.clone(), message: e.to_string() })?;
        let names: Vec<String> = t.optimizer.params().keys().cloned().collect();
        for name in &names {
            let v = tensors
                .get(name)
                .ok_or_else(|| Error::Model { path: weights.clone(), message: format!("missing `{name}` (the adapter was trained on another model or other target_modules)") })?;
            let want = t.optimizer.params()[name].dims().to_vec();
            if v.dims() != want.as_slice() {
                return Err(Error::Model { path: weights.clone(), message: format!("`{name}` has shape {:?}, the base model needs {want:?}", v.dims()) });
            }
            t.optimizer.set_full_precision(name, v)?;
        }
        t.inference = None;
        Ok(t)
    }

    fn load_resolved(model: &str, options: TeacherOptions) -> Result<Self> {
        if model.ends_with(".gguf") {
            let path = Path::new(model);
            let device = parse_device(&options.teacher.device)?;
            let dtype = parse_dtype(&options.teacher.dtype, &device)?;
            let ck = super::model::gguf::load_gguf(path, dtype, &device)?;
            let mut t = Self::from_parts(ck.config, ck.tensors, ck.tokenizer, path, options)?;
            t.tokenizer_json = Some(ck.tokenizer_json);
            return Ok(t);
        }
        let dir = hub::resolve_model_dir(model, &options.teacher.revision)?;
        let config = ModelConfig::from_file(&dir.join("config.json"))?;
        let device = parse_device(&options.teacher.device)?;
        let dtype = parse_dtype(&options.teacher.dtype, &device)?;
        let tensors = load_safetensors(&dir, dtype, &device)?;
        let tokenizer = ChatTokenizer::from_dir(&dir, config.eos_ids())?;
        Self::from_parts(config, tensors, tokenizer, &dir, options)
    }

    /// Builds a Teacher from a config, tensors by Hugging Face name and a tokenizer.
    pub fn from_parts(config: ModelConfig, tensors: BTreeMap<String, Tensor>, tokenizer: ChatTokenizer, source_dir: &Path, options: TeacherOptions) -> Result<Self> {
        config.check().map_err(|message| Error::Model { path: source_dir.join("config.json"), message })?;
        let device = tensors.values().next().map(|t| t.device().clone()).unwrap_or(Device::Cpu);
        let dtype = tensors.values().next().map(|t| t.dtype()).unwrap_or(DType::F32);
        let full = options.teacher.lora.is_none();
        let mut store = TensorStore::new(tensors, full, source_dir);
        let model_err = |e: candle_core::Error| Error::Model { path: source_dir.to_path_buf(), message: e.to_string() };
        let mut decoder = Decoder::new(&config, &mut store, dtype, &device).map_err(model_err)?;
        let mut lora = BTreeMap::new();
        if let Some(l) = &options.teacher.lora {
            let scale = l.lora_alpha / l.r as f64;
            let mut rng = StdRng::seed_from_u64(options.seed);
            decoder
                .attach_lora(|path, lin| {
                    let module = path.rsplit('.').next().unwrap_or(path);
                    if !l.target_modules.iter().any(|t| t == module) {
                        return Ok(None);
                    }
                    let (out_f, in_f) = lin.weight.dims2()?;
                    // PEFT's init: A ~ U(−1/√in, 1/√in) (kaiming-uniform, a = √5), B = 0.
                    let bound = 1.0 / (in_f as f64).sqrt();
                    let a: Vec<f32> = (0..l.r * in_f).map(|_| ((rand::Rng::random::<f64>(&mut rng) * 2.0 - 1.0) * bound) as f32).collect();
                    let a = Var::from_tensor(&Tensor::from_vec(a, (l.r, in_f), &device)?.to_dtype(dtype)?)?;
                    let b = Var::from_tensor(&Tensor::zeros((out_f, l.r), dtype, &device)?)?;
                    lora.insert(path.to_string(), (a.clone(), b.clone(), scale));
                    Ok(Some(Lora { a: a.as_tensor().clone(), b: b.as_tensor().clone(), scale }))
                })
                .map_err(model_err)?;
            if lora.is_empty() {
                return Err(Error::Config { location: "teacher.lora.target_modules".into(), message: format!("none of {:?} is a linear layer of this model", l.target_modules) });
            }
        }
        let params: BTreeMap<String, Var> = if full {
            store.vars.clone()
        } else {
            // PEFT's names: base_model.model.<layer path>.lora_{A,B}.weight.
            lora.iter()
                .flat_map(|(path, (a, b, _))| [(format!("base_model.model.{path}.lora_A.weight"), a.clone()), (format!("base_model.model.{path}.lora_B.weight"), b.clone())])
                .collect()
        };
        let optimizer = AdamW::new(params)?;
        // Every checkpoint tensor by name, trainable ones as their `Var` (which shares storage and
        // sees every update), so the frozen originals are not kept alive unless the reference uses them.
        let base: BTreeMap<String, Tensor> =
            store.tensors().iter().map(|(k, t)| (k.clone(), store.vars.get(k).map(|v| v.as_tensor().clone()).unwrap_or_else(|| t.clone()))).collect();
        let prompt = Template::strict("teacher.prompt_template", options.teacher.prompt_template.clone())?;
        Ok(LmTeacher {
            decoder,
            reference: None,
            inference: None,
            tokenizer,
            optimizer,
            base,
            lora,
            options,
            prompt,
            spec: source_dir.display().to_string(),
            source_dir: source_dir.to_path_buf(),
            device,
            dtype,
            tokenizer_json: None,
        })
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &ChatTokenizer {
        &self.tokenizer
    }

    /// The decoder (for inspection and tests).
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// Trainable parameters by name (Hugging Face names, or PEFT names for LoRA).
    pub fn trainable(&self) -> &BTreeMap<String, Var> {
        self.optimizer.params()
    }

    /// A trainable weight at full precision (the f32 master of a bf16/f16 weight).
    pub fn full_precision_weight(&self, name: &str) -> Option<Tensor> {
        self.optimizer.full_precision(name)
    }

    /// Optimisation steps taken.
    pub fn steps_taken(&self) -> usize {
        self.optimizer.step
    }

    /// The Teacher's chat for a query.
    pub fn messages(&self, query: &Query) -> Result<Vec<ChatMessage>> {
        let user = self.prompt.render(context! { query => query.text.as_str() })?;
        let mut m = Vec::with_capacity(2);
        if !self.options.teacher.system_prompt.is_empty() {
            m.push(ChatMessage::system(self.options.teacher.system_prompt.clone()));
        }
        m.push(ChatMessage::user(user));
        Ok(m)
    }
}

mod backward;
mod generate;
mod logprobs;
mod save;
mod train;
