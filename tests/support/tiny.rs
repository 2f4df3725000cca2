//! Tiny random checkpoints written by the tests: a Llama or Qwen2 `config.json`, weights drawn
//! from N(0, 0.02) as `model.safetensors`, a byte-level BPE tokenizer trained in-process with
//! ChatML special tokens, and a `tokenizer_config.json` carrying a ChatML chat template.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::processors::PostProcessorWrapper;
use tokenizers::{AddedToken, TokenizerBuilder};

/// Which architecture to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// `llama`: no q/k/v bias, tied embeddings (like SmolLM2).
    Llama,
    /// `qwen2`: q/k/v biases, untied output projection.
    Qwen2,
}

/// The ChatML template SmolLM2 and Qwen2.5 use.
pub const CHATML: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const CORPUS: &[&str] = &[
    "You are a teacher. Read the problem and write short, specific instructions.",
    "Problem: What is 12 + 30? Write instructions for the student.",
    "Add the numbers carefully, then check the answer. The answer is 42.",
    "Janet has 3 apples and buys 4 more. How many apples does she have now?",
    "Multiply first, then add. Write the final answer after ####.",
    "system user assistant hint think step by step",
];

/// Writes a byte-level BPE tokenizer with `vocab` entries and ChatML specials into `dir`.
pub fn write_tokenizer(dir: &Path, vocab: usize) {
    let specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
    let mut trainer = BpeTrainerBuilder::new()
        .vocab_size(vocab)
        .min_frequency(1)
        .show_progress(false)
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .special_tokens(specials.iter().map(|s| AddedToken::from(*s, true)).collect())
        .build();
    let mut tok = TokenizerBuilder::<BPE, NormalizerWrapper, ByteLevel, PostProcessorWrapper, ByteLevel>::new()
        .with_model(BPE::default())
        .with_pre_tokenizer(Some(ByteLevel::new(false, true, true)))
        .with_decoder(Some(ByteLevel::default()))
        .build()
        .expect("tokenizer");
    let corpus: Vec<String> = CORPUS.iter().cycle().take(CORPUS.len() * 4).map(|s| s.to_string()).collect();
    tok.train(&mut trainer, corpus.into_iter()).expect("train tokenizer");
    tok.save(dir.join("tokenizer.json"), false).expect("save tokenizer");
    let tc = serde_json::json!({
        "chat_template": CHATML, "bos_token": null, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
    });
    std::fs::write(dir.join("tokenizer_config.json"), tc.to_string()).unwrap();
}

/// The tests' usual pair: a Qwen2 Teacher in `dir/teacher` (seed 3) and a Llama Student in
/// `dir/student` (seed 4).
pub fn write_teacher_and_student(dir: &Path) {
    for (name, arch, seed) in [("teacher", Arch::Qwen2, 3), ("student", Arch::Llama, 4)] {
        std::fs::create_dir_all(dir.join(name)).expect("model folder");
        write_model(&dir.join(name), arch, seed);
    }
}

/// Writes a tiny random `arch` checkpoint into `dir` and returns its vocabulary size.
pub fn write_model(dir: &Path, arch: Arch, seed: u64) -> usize {
    write_tokenizer(dir, 300);
    let vocab = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap().get_vocab_size(true);
    let (h, inter, layers, heads, kv) = (32usize, 64usize, 2usize, 4usize, 2usize);
    let hd = h / heads;
    let device = Device::Cpu;
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut normal = |shape: &[usize], std: f64| -> Tensor {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| {
                // Box–Muller from a xorshift stream: deterministic, no extra crates.
                let mut u = || {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
                };
                let (a, b) = (u(), u());
                ((-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos() * std) as f32
            })
            .collect();
        Tensor::from_vec(v, shape, &device).unwrap()
    };
    let mut t: HashMap<String, Tensor> = HashMap::new();
    t.insert("model.embed_tokens.weight".into(), normal(&[vocab, h], 0.5));
    for i in 0..layers {
        let p = format!("model.layers.{i}");
        t.insert(format!("{p}.input_layernorm.weight"), (normal(&[h], 0.1) + 1.0).unwrap());
        t.insert(format!("{p}.post_attention_layernorm.weight"), (normal(&[h], 0.1) + 1.0).unwrap());
        t.insert(format!("{p}.self_attn.q_proj.weight"), normal(&[heads * hd, h], 0.2));
        t.insert(format!("{p}.self_attn.k_proj.weight"), normal(&[kv * hd, h], 0.2));
        t.insert(format!("{p}.self_attn.v_proj.weight"), normal(&[kv * hd, h], 0.2));
        t.insert(format!("{p}.self_attn.o_proj.weight"), normal(&[h, heads * hd], 0.2));
        if arch == Arch::Qwen2 {
            t.insert(format!("{p}.self_attn.q_proj.bias"), normal(&[heads * hd], 0.1));
            t.insert(format!("{p}.self_attn.k_proj.bias"), normal(&[kv * hd], 0.1));
            t.insert(format!("{p}.self_attn.v_proj.bias"), normal(&[kv * hd], 0.1));
        }
        t.insert(format!("{p}.mlp.gate_proj.weight"), normal(&[inter, h], 0.2));
        t.insert(format!("{p}.mlp.up_proj.weight"), normal(&[inter, h], 0.2));
        t.insert(format!("{p}.mlp.down_proj.weight"), normal(&[h, inter], 0.2));
    }
    t.insert("model.norm.weight".into(), (normal(&[h], 0.1) + 1.0).unwrap());
    let tied = arch == Arch::Llama;
    if !tied {
        t.insert("lm_head.weight".into(), normal(&[vocab, h], 0.5));
    }
    for v in t.values_mut() {
        *v = v.to_dtype(DType::F32).unwrap();
    }
    candle_core::safetensors::save(&t, dir.join("model.safetensors")).unwrap();
    let im_end = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap().token_to_id("<|im_end|>").unwrap();
    let mut cfg = serde_json::json!({
        "model_type": if tied { "llama" } else { "qwen2" },
        "vocab_size": vocab, "hidden_size": h, "intermediate_size": inter, "num_hidden_layers": layers,
        "num_attention_heads": heads, "num_key_value_heads": kv, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
        "max_position_embeddings": 512, "tie_word_embeddings": tied, "hidden_act": "silu", "eos_token_id": im_end,
    });
    if arch == Arch::Qwen2 {
        cfg["sliding_window"] = 512.into();
        cfg["max_window_layers"] = layers.into();
        cfg["use_sliding_window"] = false.into();
    }
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    vocab
}

/// Converts the tiny **llama** checkpoint in `dir` into `dir/model.gguf` as llama.cpp's converter
/// would: GGUF names, q/k rows permuted, the tokenizer as `tokenizer.ggml.*` metadata.
pub fn write_gguf(dir: &Path) -> std::path::PathBuf {
    write_gguf_with_template(dir, Some(CHATML))
}

/// [`write_gguf`] with another chat template (`None`: the GGUF carries none).
pub fn write_gguf_with_template(dir: &Path, chat_template: Option<&str>) -> std::path::PathBuf {
    use candle_core::quantized::gguf_file::{self, Value};
    use candle_core::quantized::{GgmlDType, QTensor};

    let cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["model_type"], "llama", "write_gguf converts llama checkpoints");
    let n = |k: &str| cfg[k].as_u64().unwrap() as usize;
    let (heads, kv) = (n("num_attention_heads"), n("num_key_value_heads"));
    let tensors = candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
    let permute = |w: &Tensor, h: usize| -> Tensor {
        let (out, inp) = w.dims2().unwrap();
        w.reshape((h, 2, out / h / 2, inp)).unwrap().transpose(1, 2).unwrap().reshape((out, inp)).unwrap()
    };
    let mut q: Vec<(String, QTensor)> = Vec::new();
    for (name, t) in &tensors {
        let (gname, t) = match name.as_str() {
            "model.embed_tokens.weight" => ("token_embd.weight".to_string(), t.clone()),
            "model.norm.weight" => ("output_norm.weight".to_string(), t.clone()),
            "lm_head.weight" => ("output.weight".to_string(), t.clone()),
            other => {
                let rest = other.strip_prefix("model.layers.").unwrap();
                let (layer, tail) = rest.split_once('.').unwrap();
                let (module, kind) = tail.rsplit_once('.').unwrap();
                let g = match module {
                    "input_layernorm" => "attn_norm",
                    "post_attention_layernorm" => "ffn_norm",
                    "self_attn.q_proj" => "attn_q",
                    "self_attn.k_proj" => "attn_k",
                    "self_attn.v_proj" => "attn_v",
                    "self_attn.o_proj" => "attn_output",
                    "mlp.gate_proj" => "ffn_gate",
                    "mlp.up_proj" => "ffn_up",
                    "mlp.down_proj" => "ffn_down",
                    m => panic!("unexpected module {m}"),
                };
                let t = match g {
                    "attn_q" => permute(t, heads),
                    "attn_k" => permute(t, kv),
                    _ => t.clone(),
                };
                (format!("blk.{layer}.{g}.{kind}"), t)
            }
        };
        q.push((gname, QTensor::quantize(&t, GgmlDType::F32).unwrap()));
    }
    let tj: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("tokenizer.json")).unwrap()).unwrap();
    let mut vocab: Vec<(String, u64)> = tj["model"]["vocab"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap())).collect();
    vocab.sort_by_key(|(_, i)| *i);
    let specials: Vec<u64> = tj["added_tokens"].as_array().unwrap().iter().map(|t| t["id"].as_u64().unwrap()).collect();
    let merges: Vec<Value> = tj["model"]["merges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| match m {
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(a) => Value::String(format!("{} {}", a[0].as_str().unwrap(), a[1].as_str().unwrap())),
            _ => panic!("merge"),
        })
        .collect();
    let tok = |s: &str| vocab.iter().find(|(t, _)| t == s).unwrap().1 as u32;
    let mut md: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String("llama".into())),
        ("llama.block_count", Value::U32(n("num_hidden_layers") as u32)),
        ("llama.embedding_length", Value::U32(n("hidden_size") as u32)),
        ("llama.feed_forward_length", Value::U32(n("intermediate_size") as u32)),
        ("llama.attention.head_count", Value::U32(heads as u32)),
        ("llama.attention.head_count_kv", Value::U32(kv as u32)),
        ("llama.rope.freq_base", Value::F32(cfg["rope_theta"].as_f64().unwrap() as f32)),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(cfg["rms_norm_eps"].as_f64().unwrap() as f32)),
        ("llama.context_length", Value::U32(n("max_position_embeddings") as u32)),
        ("llama.rope.dimension_count", Value::U32((n("hidden_size") / heads) as u32)),
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        ("tokenizer.ggml.pre", Value::String("default".into())),
        ("tokenizer.ggml.add_bos_token", Value::Bool(false)),
        ("tokenizer.ggml.tokens", Value::Array(vocab.iter().map(|(t, _)| Value::String(t.clone())).collect())),
        ("tokenizer.ggml.token_type", Value::Array(vocab.iter().map(|(_, i)| Value::I32(if specials.contains(i) { 3 } else { 1 })).collect())),
        ("tokenizer.ggml.merges", Value::Array(merges)),
        ("tokenizer.ggml.eos_token_id", Value::U32(tok("<|im_end|>"))),
        ("tokenizer.ggml.bos_token_id", Value::U32(tok("<|im_start|>"))),
    ];
    if let Some(t) = chat_template {
        md.push(("tokenizer.chat_template", Value::String(t.into())));
    }
    let path = dir.join("model.gguf");
    let mut f = std::fs::File::create(&path).unwrap();
    let md_refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (*k, v)).collect();
    let t_refs: Vec<(&str, &QTensor)> = q.iter().map(|(k, v)| (k.as_str(), v)).collect();
    gguf_file::write(&mut f, &md_refs, &t_refs).unwrap();
    path
}
