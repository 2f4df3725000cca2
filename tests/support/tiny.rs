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
