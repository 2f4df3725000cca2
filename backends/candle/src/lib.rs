//! # wst-candle: a Student run in-process by candle-transformers
//!
//! Quantized GGUF (llama and qwen2 architectures) and Hugging Face safetensors folders or hub
//! ids (llama, qwen2, gemma, gemma2, gemma3), answering with the checkpoint's own chat template.
//! candle-transformers' inference models hold one KV cache each, so answers are decoded one
//! after another (answer i with seed `seed + i`), one request at a time; for many parallel
//! answers on CPU prefer the llama.cpp backend.
//!
//! ```no_run
//! # async fn run() -> wst_sdk::Result<()> {
//! use wst_sdk::{ChatMessage, SamplingParams, Student, StudentRequest};
//! let student = wst_candle::CandleStudent::load("model.gguf", &Default::default())?;
//! let request = StudentRequest { messages: vec![ChatMessage::user("2+2?")], n: 2, params: SamplingParams::default() };
//! let answers = student.generate(&request).await?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod backend;
mod config;
mod model;

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use candle_core::{DType, Device};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use wst_sdk::models::hub::resolve_model_dir;
use wst_sdk::student::{FinishReason, StudentCapabilities, StudentUsage, TokenUsage, UsageMeter};
use wst_sdk::teacher::{ChatTokenizer, parse_device};
use wst_sdk::{Error, Result, SamplingParams, Student, StudentRequest, StudentSample};

pub use backend::CandleBackend;
pub use config::CandleStudentConfig;
pub use model::Model;

struct Loaded {
    model: Model,
    tokenizer: ChatTokenizer,
}

/// A local model answering through candle.
pub struct CandleStudent {
    name: String,
    identity: String,
    /// The files holding the weights (the GGUF, or the folder's config and every shard).
    weight_files: Vec<std::path::PathBuf>,
    device: Device,
    inner: Arc<Mutex<Loaded>>,
    meter: Arc<UsageMeter>,
}

impl std::fmt::Debug for CandleStudent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CandleStudent").field("name", &self.name).field("device", &self.device).finish()
    }
}

impl CandleStudent {
    /// Loads a `.gguf` file, a Hugging Face folder, or a hub id (`org/name`, when online).
    pub fn load(model: &str, config: &CandleStudentConfig) -> Result<Self> {
        let resolved = wst_sdk::models::resolve(model)?;
        let model = resolved.as_str();
        let device = parse_device(&config.device)?;
        let mut weight_files = Vec::new();
        let (loaded, stem, content) = if model.ends_with(".gguf") {
            let path = Path::new(model);
            if !path.is_file() {
                return Err(Error::Model { path: path.into(), message: "no such GGUF file".into() });
            }
            let content = wst_sdk::student::file_fingerprint(path)?;
            weight_files.push(path.to_path_buf());
            let (model, tokenizer) = model::load_gguf(path, &device, config.dequantize_gguf)?;
            (Loaded { model, tokenizer }, path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(), content)
        } else {
            let dir = resolve_model_dir(model, "main")?;
            let dtype = match (config.dtype.as_str(), &device) {
                ("f32", _) => DType::F32,
                ("bf16", _) => DType::BF16,
                ("f16", _) => DType::F16,
                ("auto", Device::Cpu) => DType::F32,
                ("auto", _) => DType::BF16,
                (other, _) => return Err(Error::invalid("student.candle.dtype", format!("expected f32, bf16, f16 or auto, got `{other}`"))),
            };
            let (model, tokenizer) = model::load_folder(&dir, dtype, &device)?;
            // The folder's weights and config: their fingerprints change with any new version.
            let mut content = format!("dtype={dtype:?}");
            for f in ["config.json", "model.safetensors", "model.safetensors.index.json", "tokenizer.json", "tokenizer_config.json"] {
                let p = dir.join(f);
                if p.is_file() {
                    content.push_str(&format!("|{f}={}", wst_sdk::student::file_fingerprint(&p)?));
                }
            }
            // Sharded weights: the index names them; every shard's content is checked by the cache.
            let mut shards: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
                .map_err(|e| Error::io(&dir, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
                .collect();
            shards.sort();
            weight_files.push(dir.join("config.json"));
            weight_files.extend(shards);
            (Loaded { model, tokenizer }, dir.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(), content)
        };
        let identity = format!("candle|{content}|device={}|dequantize_gguf={}", config.device, config.dequantize_gguf);
        Ok(CandleStudent { name: format!("candle:{stem}"), identity, weight_files, device, inner: Arc::new(Mutex::new(loaded)), meter: Arc::new(UsageMeter::default()) })
    }

    /// The prompt text the model sees for `messages` (its chat template, assistant turn open).
    pub fn render(&self, messages: &[wst_sdk::ChatMessage]) -> Result<String> {
        let loaded = self.inner.lock().map_err(|_| Error::Student { student: self.name.clone(), message: "a decoding thread panicked".into() })?;
        loaded.tokenizer.render(messages)
    }
}

fn sampling(p: &SamplingParams) -> Sampling {
    if p.temperature <= 0.0 {
        return Sampling::ArgMax;
    }
    let temperature = p.temperature;
    match (p.top_k, p.top_p < 1.0) {
        (Some(k), true) => Sampling::TopKThenTopP { k, p: p.top_p, temperature },
        (Some(k), false) => Sampling::TopK { k, temperature },
        (None, true) => Sampling::TopP { p: p.top_p, temperature },
        (None, false) => Sampling::All { temperature },
    }
}

/// Decodes `n` answers one after another.
fn decode(loaded: &mut Loaded, device: &Device, prompt: &str, n: usize, params: &SamplingParams, name: &str) -> Result<Vec<StudentSample>> {
    let err = |e: candle_core::Error| Error::Student { student: name.into(), message: format!("decoding failed: {e}") };
    let ids = loaded.tokenizer.encode(prompt)?;
    if ids.is_empty() {
        return Err(Error::Student { student: name.into(), message: "the prompt encodes to no tokens".into() });
    }
    let base_seed = params.seed.unwrap_or_else(rand::random);
    let mut answers = Vec::with_capacity(n);
    for i in 0..n {
        loaded.model.reset().map_err(err)?;
        let mut sampler = LogitsProcessor::from_sampling(base_seed.wrapping_add(i as u64), sampling(params));
        let mut logits = loaded.model.forward(&ids, 0, device).map_err(err)?;
        let mut out: Vec<u32> = Vec::new();
        let mut finish = FinishReason::Length;
        let mut text = String::new();
        while out.len() < params.max_tokens {
            let next = sampler.sample(&logits).map_err(err)?;
            if loaded.tokenizer.eos_ids.contains(&next) {
                finish = FinishReason::Stop;
                break;
            }
            out.push(next);
            text = loaded.tokenizer.decode(&out)?;
            if let Some(at) = params.stop.iter().filter(|s| !s.is_empty()).filter_map(|s| text.find(s.as_str())).min() {
                text.truncate(at);
                finish = FinishReason::Stop;
                break;
            }
            if out.len() == params.max_tokens {
                break;
            }
            logits = loaded.model.forward(&[next], ids.len() + out.len() - 1, device).map_err(err)?;
        }
        answers.push(StudentSample {
            text,
            finish_reason: finish,
            usage: TokenUsage { prompt_tokens: if i == 0 { ids.len() as u64 } else { 0 }, completion_tokens: out.len() as u64 },
        });
    }
    Ok(answers)
}

#[async_trait]
impl Student for CandleStudent {
    fn name(&self) -> &str {
        &self.name
    }

    fn identity(&self) -> String {
        self.identity.clone()
    }

    fn weight_files(&self) -> Vec<std::path::PathBuf> {
        self.weight_files.iter().filter(|p| p.is_file()).cloned().collect()
    }

    fn capabilities(&self) -> StudentCapabilities {
        StudentCapabilities { native_n: true, max_concurrency: 1 }
    }

    fn usage(&self) -> StudentUsage {
        self.meter.snapshot()
    }

    async fn generate(&self, request: &StudentRequest) -> Result<Vec<StudentSample>> {
        if request.n == 0 {
            return Ok(Vec::new());
        }
        let inner = self.inner.clone();
        let device = self.device.clone();
        let request = request.clone();
        let name = self.name.clone();
        let answers = tokio::task::spawn_blocking(move || {
            let mut loaded = inner.lock().map_err(|_| Error::Student { student: name.clone(), message: "an earlier request panicked".into() })?;
            let prompt = loaded.tokenizer.render(&request.messages)?;
            decode(&mut loaded, &device, &prompt, request.n, &request.params, &name)
        })
        .await
        .map_err(|e| Error::Student { student: self.name.clone(), message: format!("the decoding task failed: {e}") })??;
        let mut usage = TokenUsage::default();
        for a in &answers {
            usage += a.usage;
        }
        self.meter.record(answers.len(), usage);
        Ok(answers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_settings_map_to_candle_samplers() {
        let p = |temperature, top_p, top_k| SamplingParams { temperature, top_p, top_k, ..Default::default() };
        assert!(matches!(sampling(&p(0.0, 0.9, Some(5))), Sampling::ArgMax));
        assert!(matches!(sampling(&p(0.7, 1.0, None)), Sampling::All { .. }));
        assert!(matches!(sampling(&p(0.7, 0.9, None)), Sampling::TopP { .. }));
        assert!(matches!(sampling(&p(0.7, 1.0, Some(5))), Sampling::TopK { k: 5, .. }));
        assert!(matches!(sampling(&p(0.7, 0.9, Some(5))), Sampling::TopKThenTopP { k: 5, .. }));
    }
}
