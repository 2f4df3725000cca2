//! The candle-transformers inference models a candle Student can run, behind one interface:
//! `forward(ids, offset)` gives the next-token logits and `reset` clears the KV cache.

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::gguf_file::Content;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::{gemma, gemma2, gemma3, llama, quantized_llama, quantized_qwen2, qwen2};
use wst_sdk::teacher::ChatTokenizer;
use wst_sdk::teacher::model::gguf::gguf_tokenizer;
use wst_sdk::teacher::model::weights::load_safetensors;
use wst_sdk::{Error, Result};

/// One loaded model.
pub enum Model {
    /// Quantized llama-architecture GGUF (Llama, SmolLM2, Mistral...).
    QuantLlama(quantized_llama::ModelWeights),
    /// Quantized Qwen2 GGUF.
    QuantQwen2(quantized_qwen2::ModelWeights),
    /// Llama safetensors; the cache is rebuilt per answer.
    Llama {
        /// The weights.
        model: llama::Llama,
        /// Its configuration (to rebuild the cache).
        config: llama::Config,
        /// The KV cache of the answer being decoded.
        cache: llama::Cache,
        /// The cache's dtype.
        dtype: DType,
        /// Where it runs.
        device: Device,
    },
    /// Qwen2 safetensors.
    Qwen2(qwen2::ModelForCausalLM),
    /// Gemma safetensors.
    Gemma(gemma::Model),
    /// Gemma 2 safetensors.
    Gemma2(gemma2::Model),
    /// Gemma 3 safetensors.
    Gemma3(gemma3::Model),
}

fn err(path: &Path, message: impl Into<String>) -> Error {
    Error::Model { path: path.to_path_buf(), message: message.into() }
}

impl Model {
    /// Next-token logits (1-D, f32) after feeding `ids` at position `offset`.
    pub fn forward(&mut self, ids: &[u32], offset: usize, device: &Device) -> candle_core::Result<Tensor> {
        let input = Tensor::new(ids, device)?.unsqueeze(0)?;
        let logits = match self {
            Model::QuantLlama(m) => m.forward(&input, offset)?,
            Model::QuantQwen2(m) => m.forward(&input, offset)?,
            Model::Llama { model, cache, .. } => model.forward(&input, offset, cache)?,
            Model::Qwen2(m) => m.forward(&input, offset)?,
            Model::Gemma(m) => m.forward(&input, offset)?,
            Model::Gemma2(m) => m.forward(&input, offset)?,
            Model::Gemma3(m) => m.forward(&input, offset)?,
        };
        // Models return [1, vocab] or [1, 1, vocab]: keep the last position's row.
        logits.flatten_all()?.to_dtype(DType::F32)
    }

    /// Clears the KV cache before a new answer.
    pub fn reset(&mut self) -> candle_core::Result<()> {
        match self {
            Model::QuantLlama(m) => m.clear_kv_cache(),
            Model::QuantQwen2(m) => m.clear_kv_cache(),
            Model::Llama { config, cache, dtype, device, .. } => *cache = llama::Cache::new(true, *dtype, config, device)?,
            Model::Qwen2(m) => m.clear_kv_cache(),
            Model::Gemma(m) => m.clear_kv_cache(),
            Model::Gemma2(m) => m.clear_kv_cache(),
            Model::Gemma3(m) => m.clear_kv_cache(),
        }
        Ok(())
    }
}

/// Rewrites a GGUF with every tensor dequantized to f32, into a temporary file (deleted when
/// dropped), so candle multiplies by plain tensors (see [`load_gguf`]). A file, not a buffer:
/// the f32 copy is never in memory beside the tensors built from it.
fn dequantized_copy(path: &Path, content: &Content, file: &mut std::fs::File, device: &Device) -> Result<tempfile::NamedTempFile> {
    use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
    let mut tensors = Vec::with_capacity(content.tensor_infos.len());
    for name in content.tensor_infos.keys() {
        let q = content.tensor(file, name, device).map_err(|e| err(path, format!("tensor `{name}`: {e}")))?;
        let t = q.dequantize(device).map_err(|e| err(path, format!("dequantising `{name}`: {e}")))?;
        tensors.push((name.clone(), QTensor::quantize(&t, GgmlDType::F32).map_err(|e| err(path, e.to_string()))?));
    }
    let md: Vec<(&str, &gguf_file::Value)> = content.metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut tmp = tempfile::NamedTempFile::new().map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let tmp_path = tmp.path().to_path_buf();
    {
        let mut w = std::io::BufWriter::new(tmp.as_file_mut());
        gguf_file::write(&mut w, &md, &ts).map_err(|e| err(path, format!("re-encoding: {e}")))?;
        std::io::Write::flush(&mut w).map_err(|e| Error::io(&tmp_path, e))?;
    }
    drop(ts);
    drop(tensors);
    std::io::Seek::seek(tmp.as_file_mut(), std::io::SeekFrom::Start(0)).map_err(|e| Error::io(tmp.path(), e))?;
    Ok(tmp)
}

/// Loads a GGUF (llama or qwen2 architecture) with its tokenizer and chat template. With
/// `dequantize`, weights are expanded to f32 first, so the model computes what the f32 weights
/// compute. Quantized matmuls also quantize activations to 8 bits (as llama.cpp does): on
/// SmolLM2-135M Q4_1 that path's greedy answer to "What is the capital of France?" begins
/// "L'Étoile, la Marseillaise. Paris is..." exactly as llama-cpp-python's server does, while
/// the f32 path answers "The capital of France is Paris." (the kernels are checked in
/// `tests/qmatmul.rs`).
pub fn load_gguf(path: &Path, device: &Device, dequantize: bool) -> Result<(Model, ChatTokenizer)> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let content = Content::read(&mut file).map_err(|e| err(path, format!("not a GGUF file: {e}")))?;
    if dequantize {
        let mut copy = dequantized_copy(path, &content, &mut file, device)?;
        let content = Content::read(copy.as_file_mut()).map_err(|e| err(path, format!("re-reading: {e}")))?;
        return build_gguf(path, content, copy.as_file_mut(), device);
    }
    build_gguf(path, content, &mut file, device)
}

fn build_gguf<R: std::io::Read + std::io::Seek>(path: &Path, content: Content, file: &mut R, device: &Device) -> Result<(Model, ChatTokenizer)> {
    let arch = content.metadata.get("general.architecture").and_then(|v| v.to_string().ok()).cloned().ok_or_else(|| err(path, "missing metadata `general.architecture`"))?;
    let (tokenizer, _) = gguf_tokenizer(&content, path)?;
    let model = match arch.as_str() {
        "llama" => Model::QuantLlama(quantized_llama::ModelWeights::from_gguf(content, file, device).map_err(|e| err(path, e.to_string()))?),
        "qwen2" => Model::QuantQwen2(quantized_qwen2::ModelWeights::from_gguf(content, file, device).map_err(|e| err(path, e.to_string()))?),
        other => return Err(err(path, format!("GGUF architecture `{other}` is not supported by the candle Student (llama, qwen2); use the llamacpp backend"))),
    };
    Ok((model, tokenizer))
}

/// Loads a Hugging Face folder (llama, qwen2, gemma, gemma2, gemma3) with its tokenizer.
pub fn load_folder(dir: &Path, dtype: DType, device: &Device) -> Result<(Model, ChatTokenizer)> {
    let config_path = dir.join("config.json");
    let text = std::fs::read_to_string(&config_path).map_err(|e| Error::io(&config_path, e))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| err(&config_path, format!("invalid JSON: {e}")))?;
    let model_type = json.get("model_type").and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let parse = |what: &str, e: serde_json::Error| err(&config_path, format!("not a valid {what} config: {e}"));
    let eos: Vec<u32> = match json.get("eos_token_id") {
        Some(serde_json::Value::Number(n)) => n.as_u64().map(|x| vec![x as u32]).unwrap_or_default(),
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_u64()).map(|x| x as u32).collect(),
        _ => Vec::new(),
    };
    let tensors: HashMap<String, Tensor> = load_safetensors(dir, dtype, device)?.into_iter().collect();
    let vb = VarBuilder::from_tensors(tensors, dtype, device);
    let load = |e: candle_core::Error| err(dir, format!("building the {model_type} model: {e}"));
    let model = match model_type.as_str() {
        "llama" => {
            let cfg: llama::LlamaConfig = serde_json::from_value(json.clone()).map_err(|e| parse("llama", e))?;
            let config = cfg.into_config(false);
            let model = llama::Llama::load(vb, &config).map_err(load)?;
            let cache = llama::Cache::new(true, dtype, &config, device).map_err(load)?;
            Model::Llama { model, config, cache, dtype, device: device.clone() }
        }
        "qwen2" => {
            let cfg: qwen2::Config = serde_json::from_value(json.clone()).map_err(|e| parse("qwen2", e))?;
            Model::Qwen2(qwen2::ModelForCausalLM::new(&cfg, vb).map_err(load)?)
        }
        "gemma" => {
            let cfg: gemma::Config = serde_json::from_value(json.clone()).map_err(|e| parse("gemma", e))?;
            Model::Gemma(gemma::Model::new(false, &cfg, vb).map_err(load)?)
        }
        "gemma2" => {
            let cfg: gemma2::Config = serde_json::from_value(json.clone()).map_err(|e| parse("gemma2", e))?;
            Model::Gemma2(gemma2::Model::new(false, &cfg, vb).map_err(load)?)
        }
        "gemma3" | "gemma3_text" => {
            let cfg: gemma3::Config = serde_json::from_value(json.clone()).map_err(|e| parse("gemma3", e))?;
            Model::Gemma3(gemma3::Model::new(false, &cfg, vb).map_err(load)?)
        }
        other => return Err(err(&config_path, format!("model_type `{other}` is not supported by the candle Student (llama, qwen2, gemma, gemma2, gemma3)"))),
    };
    let tokenizer = ChatTokenizer::from_dir(dir, eos)?;
    Ok((model, tokenizer))
}
