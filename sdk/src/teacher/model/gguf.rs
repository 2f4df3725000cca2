//! Loading a GGUF file as a trainable Teacher: tensors dequantised to the training dtype and
//! renamed to Hugging Face names, llama.cpp's q/k row permutation undone for llama-architecture
//! files (Qwen2 files are not permuted), the configuration and the byte-level BPE tokenizer
//! rebuilt from the metadata, and the chat template taken from `tokenizer.chat_template`.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::quantized::gguf_file::Content;
use candle_core::{DType, Device, Tensor};

use super::config::{ModelConfig, RopeScaling};
use crate::error::Result;
pub use crate::models::gguf::read_content;
use crate::models::gguf::{err, guarded};
use crate::teacher::chat::ChatTokenizer;

/// What a GGUF file holds, ready for [`crate::teacher::LmTeacher::from_parts`].
pub struct GgufCheckpoint {
    /// The configuration.
    pub config: ModelConfig,
    /// Tensors by Hugging Face name.
    pub tensors: BTreeMap<String, Tensor>,
    /// Tokenizer and chat template.
    pub tokenizer: ChatTokenizer,
    /// The tokenizer as `tokenizer.json` text, for saving.
    pub tokenizer_json: String,
}

/// Undoes llama.cpp's interleaving of q/k rows: GGUF stores each head's rotary pairs
/// interleaved; Hugging Face keeps the two halves apart.
fn unpermute(w: &Tensor, n_heads: usize) -> candle_core::Result<Tensor> {
    let (out, inp) = w.dims2()?;
    let hd = out / n_heads;
    w.reshape((n_heads, hd / 2, 2, inp))?.transpose(1, 2)?.reshape((out, inp))
}

fn hf_name(gguf: &str) -> Option<String> {
    let direct = match gguf {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(d) = direct {
        return Some(d.to_string());
    }
    let rest = gguf.strip_prefix("blk.")?;
    let (layer, tail) = rest.split_once('.')?;
    let (module, kind) = tail.rsplit_once('.')?;
    let hf = match module {
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}.{kind}"))
}

/// Reads `path` into a trainable checkpoint on `device` in `dtype`.
pub fn load_gguf(path: &Path, dtype: DType, device: &Device) -> Result<GgufCheckpoint> {
    let (mut file, content) = read_content(path)?;
    let md = &content.metadata;
    let get = |k: &str| md.get(k).ok_or_else(|| err(path, format!("missing metadata `{k}`")));
    let arch = get("general.architecture")?.to_string().map_err(|e| err(path, e.to_string()))?.clone();
    if arch != "llama" && arch != "qwen2" {
        return Err(err(path, format!("architecture `{arch}` is not supported (llama, qwen2)")));
    }
    let num = |k: &str| -> Result<usize> {
        let v = get(&format!("{arch}.{k}"))?;
        v.to_u32().map(|x| x as usize).or_else(|_| v.to_u64().map(|x| x as usize)).map_err(|e| err(path, format!("{arch}.{k}: {e}")))
    };
    let float = |k: &str, default: f64| -> f64 { md.get(&format!("{arch}.{k}")).and_then(|v| v.to_f32().ok()).map(|x| x as f64).unwrap_or(default) };
    let tokens: Vec<String> = get("tokenizer.ggml.tokens")?.to_vec().map_err(|e| err(path, e.to_string()))?.iter().map(|v| v.to_string().cloned().unwrap_or_default()).collect();
    let n_heads = num("attention.head_count")?;
    let n_kv = num("attention.head_count_kv").unwrap_or(n_heads);
    let has_output = content.tensor_infos.contains_key("output.weight");
    let tok_id = |k: &str| md.get(k).and_then(|v| v.to_u32().ok());
    let eos = tok_id("tokenizer.ggml.eos_token_id");
    let rope_scaling = match md.get(&format!("{arch}.rope.scaling.type")).and_then(|v| v.to_string().ok()).map(String::as_str) {
        None | Some("none") => None,
        Some("linear") => Some(RopeScaling {
            rope_type: "linear".into(),
            factor: float("rope.scaling.factor", 1.0),
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: None,
        }),
        Some(other) => return Err(err(path, format!("{arch}.rope.scaling.type `{other}` is not supported (none, linear; Llama 3 scaling comes as rope_freqs.weight)"))),
    };
    // Llama 3.1/3.2 GGUFs carry their RoPE scaling as per-frequency divisors.
    let rope_freq_factors = match content.tensor_infos.get("rope_freqs.weight") {
        Some(_) => {
            let v = guarded(path, "tensor `rope_freqs.weight`", || {
                content.tensor(&mut file, "rope_freqs.weight", &Device::Cpu)?.dequantize(&Device::Cpu)?.flatten_all()?.to_vec1::<f32>()
            })?;
            Some(v.into_iter().map(f64::from).collect())
        }
        None => None,
    };
    let config = ModelConfig {
        model_type: arch.clone(),
        vocab_size: tokens.len(),
        hidden_size: num("embedding_length")?,
        intermediate_size: num("feed_forward_length")?,
        num_hidden_layers: num("block_count")?,
        num_attention_heads: n_heads,
        num_key_value_heads: Some(n_kv),
        head_dim: None,
        rms_norm_eps: float("attention.layer_norm_rms_epsilon", 1e-6),
        rope_theta: float("rope.freq_base", 10_000.0),
        rope_scaling,
        rope_freq_factors,
        max_position_embeddings: num("context_length").unwrap_or(4096),
        tie_word_embeddings: !has_output,
        attention_bias: Some(arch == "qwen2"),
        hidden_act: "silu".into(),
        bos_token_id: tok_id("tokenizer.ggml.bos_token_id").map(Into::into),
        eos_token_id: eos.map(Into::into),
    };
    config.check().map_err(|m| err(path, m))?;

    let mut tensors = BTreeMap::new();
    for name in content.tensor_infos.keys() {
        let Some(hf) = hf_name(name) else { continue };
        let mut t = guarded(path, &format!("tensor `{name}`"), || content.tensor(&mut file, name, device)?.dequantize(device))?;
        if arch == "llama" && name.ends_with(".weight") {
            if name.contains("attn_q") {
                t = unpermute(&t, n_heads)?;
            } else if name.contains("attn_k") {
                t = unpermute(&t, n_kv)?;
            }
        }
        tensors.insert(hf, t.to_dtype(dtype)?);
    }

    let (tokenizer, tokenizer_json) = gguf_tokenizer(&content, path)?;
    Ok(GgufCheckpoint { config, tensors, tokenizer, tokenizer_json })
}

/// Qwen2's pre-tokenizer split (digits one by one), as in its `tokenizer.json`.
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Llama 3's pre-tokenizer split (digits in runs of up to three).
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The Hugging Face pre-tokenizer of a GGUF `tokenizer.ggml.pre` value, as the model's own
/// `tokenizer.json` has it (and llama.cpp's `llama-vocab.cpp` splits): GPT-2's byte-level regex,
/// SmolLM's single digits before it, or Qwen2's / Llama 3's split followed by a byte-level
/// mapping. `None` for values not implemented here.
fn pre_tokenizer(pre: &str) -> Option<serde_json::Value> {
    let split = |pattern: &str| {
        serde_json::json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}
        ]})
    };
    Some(match pre {
        "default" | "gpt2" | "gpt-2" => serde_json::json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}),
        // SmolLM2: every digit on its own, then GPT-2's split.
        "smollm" => serde_json::json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}
        ]}),
        "qwen2" => split(QWEN2_SPLIT),
        "llama-bpe" | "llama3" => split(LLAMA3_SPLIT),
        _ => return None,
    })
}

/// The tokenizer and chat template a GGUF file carries, rebuilt as a Hugging Face tokenizer
/// (byte-level BPE), with the `tokenizer.json` text for saving.
pub fn gguf_tokenizer(content: &Content, path: &Path) -> Result<(ChatTokenizer, String)> {
    let md = &content.metadata;
    let tokens: Vec<String> = md
        .get("tokenizer.ggml.tokens")
        .ok_or_else(|| err(path, "missing metadata `tokenizer.ggml.tokens`"))?
        .to_vec()
        .map_err(|e| err(path, e.to_string()))?
        .iter()
        .map(|v| v.to_string().cloned().unwrap_or_default())
        .collect();
    let tok_id = |k: &str| md.get(k).and_then(|v| v.to_u32().ok());
    let eos = tok_id("tokenizer.ggml.eos_token_id");
    let model = md.get("tokenizer.ggml.model").and_then(|v| v.to_string().ok()).cloned().unwrap_or_default();
    if model != "gpt2" {
        return Err(err(path, format!("tokenizer model `{model}` is not supported (gpt2 byte-level BPE)")));
    }
    let merges: Vec<String> =
        md.get("tokenizer.ggml.merges").and_then(|v| v.to_vec().ok()).map(|v| v.iter().filter_map(|m| m.to_string().ok().cloned()).collect()).unwrap_or_default();
    let types: Vec<i64> =
        md.get("tokenizer.ggml.token_type").and_then(|v| v.to_vec().ok()).map(|v| v.iter().map(|t| t.to_i32().map(|x| x as i64).unwrap_or(1)).collect()).unwrap_or_default();
    if !types.is_empty() && types.len() != tokens.len() {
        return Err(err(path, format!("tokenizer.ggml.token_type has {} entries for {} tokens in tokenizer.ggml.tokens", types.len(), tokens.len())));
    }
    for (k, id) in [("bos", tok_id("tokenizer.ggml.bos_token_id")), ("eos", eos)] {
        if let Some(id) = id.filter(|&i| i as usize >= tokens.len()) {
            return Err(err(path, format!("tokenizer.ggml.{k}_token_id is {id}, but there are {} tokens", tokens.len())));
        }
    }
    let pre = md.get("tokenizer.ggml.pre").and_then(|v| v.to_string().ok()).cloned().unwrap_or_else(|| "default".into());
    let pre_tokenizer = pre_tokenizer(&pre).ok_or_else(|| {
        err(path, format!("tokenizer.ggml.pre `{pre}` is not supported (default, gpt2, smollm, qwen2, llama-bpe, llama3); its digits and spaces would be split differently from the model's own tokenizer"))
    })?;
    let vocab: serde_json::Map<String, serde_json::Value> = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i.into())).collect();
    // Control (3) and user-defined (4) tokens are matched whole, as in llama.cpp.
    let added: Vec<serde_json::Value> = types
        .iter()
        .enumerate()
        .filter(|(_, t)| **t == 3 || **t == 4)
        .map(|(i, t)| {
            serde_json::json!({"id": i, "content": tokens[i], "single_word": false, "lstrip": false, "rstrip": false,
                               "normalized": false, "special": *t == 3})
        })
        .collect();
    let tokenizer_json = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added, "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": vocab, "merges": merges},
    })
    .to_string();
    let tok: tokenizers::Tokenizer = tokenizer_json.parse().map_err(|e| err(path, format!("rebuilding the tokenizer: {e}")))?;
    let chat_template = md.get("tokenizer.chat_template").and_then(|v| v.to_string().ok()).cloned();
    let name_of = |id: Option<u32>| id.and_then(|i| tokens.get(i as usize)).cloned().unwrap_or_default();
    let tokenizer =
        ChatTokenizer::new(tok, chat_template.as_deref(), &name_of(tok_id("tokenizer.ggml.bos_token_id")), &name_of(eos), eos.into_iter().collect(), &path.display().to_string())?;
    Ok((tokenizer, tokenizer_json))
}
