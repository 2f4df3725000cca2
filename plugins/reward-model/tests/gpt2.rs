//! The GPT-2 reward model on a tiny random checkpoint the test writes (safetensors, config.json
//! and an in-process tokenizer), against a plain f64 forward pass written independently here.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use wst_plugin_abi::{RewardInput, RewardPlugin};
use wst_reward_reward_model::{RewardModel, RewardModelConfig};

const VOCAB: &[&str] = &["[UNK]", "Human:", "Assistant:", "hello", "world", "help", "me", "please", "no", "yes", "kill", "bake", "a", "cake"];
const E: usize = 16;
const L: usize = 2;
const H: usize = 4;
const P: usize = 32;

/// Deterministic pseudo-random weights in [-0.5, 0.5) · scale.
struct Rng(u64);
impl Rng {
    fn vec(&mut self, n: usize, scale: f64) -> Vec<f32> {
        (0..n)
            .map(|_| {
                self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (((self.0 >> 33) as f64 / (1u64 << 31) as f64) - 0.5) as f32 * scale as f32
            })
            .collect()
    }
}

fn write_checkpoint(dir: &Path) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    let mut rng = Rng(7);
    let v = VOCAB.len();
    let mut w: HashMap<String, (Vec<usize>, Vec<f32>)> = HashMap::new();
    let mut put = |name: &str, shape: &[usize], scale: f64, rng: &mut Rng| {
        let n = shape.iter().product();
        w.insert(name.to_string(), (shape.to_vec(), rng.vec(n, scale)));
    };
    put("transformer.wte.weight", &[v, E], 1.0, &mut rng);
    put("transformer.wpe.weight", &[P, E], 0.5, &mut rng);
    for i in 0..L {
        let p = format!("transformer.h.{i}");
        put(&format!("{p}.ln_1.weight"), &[E], 0.4, &mut rng);
        put(&format!("{p}.ln_1.bias"), &[E], 0.2, &mut rng);
        put(&format!("{p}.attn.c_attn.weight"), &[E, 3 * E], 0.6, &mut rng);
        put(&format!("{p}.attn.c_attn.bias"), &[3 * E], 0.2, &mut rng);
        put(&format!("{p}.attn.c_proj.weight"), &[E, E], 0.6, &mut rng);
        put(&format!("{p}.attn.c_proj.bias"), &[E], 0.2, &mut rng);
        put(&format!("{p}.ln_2.weight"), &[E], 0.4, &mut rng);
        put(&format!("{p}.ln_2.bias"), &[E], 0.2, &mut rng);
        put(&format!("{p}.mlp.c_fc.weight"), &[E, 4 * E], 0.6, &mut rng);
        put(&format!("{p}.mlp.c_fc.bias"), &[4 * E], 0.2, &mut rng);
        put(&format!("{p}.mlp.c_proj.weight"), &[4 * E, E], 0.6, &mut rng);
        put(&format!("{p}.mlp.c_proj.bias"), &[E], 0.2, &mut rng);
    }
    put("transformer.ln_f.weight", &[E], 0.4, &mut rng);
    put("transformer.ln_f.bias", &[E], 0.2, &mut rng);
    put("score.weight", &[1, E], 1.0, &mut rng);
    // LayerNorm gains near 1, as in trained models.
    for (k, (_, data)) in w.iter_mut() {
        if k.ends_with("ln_1.weight") || k.ends_with("ln_2.weight") || k.ends_with("ln_f.weight") {
            data.iter_mut().for_each(|x| *x += 1.0);
        }
    }
    let tensors: HashMap<String, Tensor> = w.iter().map(|(k, (s, d))| (k.clone(), Tensor::from_vec(d.clone(), s.as_slice(), &Device::Cpu).unwrap())).collect();
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();
    let config = serde_json::json!({
        "model_type": "gpt2", "vocab_size": v, "n_positions": P, "n_embd": E, "n_layer": L, "n_head": H,
        "layer_norm_epsilon": 1e-5, "num_labels": 1, "pad_token_id": 0
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let vocab: HashMap<String, u32> = VOCAB.iter().enumerate().map(|(i, t)| (t.to_string(), i as u32)).collect();
    let model = tokenizers::models::wordlevel::WordLevel::builder().vocab(vocab.into_iter().collect()).unk_token("[UNK]".into()).build().unwrap();
    let mut tok = tokenizers::Tokenizer::new(model);
    tok.with_pre_tokenizer(Some(tokenizers::pre_tokenizers::whitespace::WhitespaceSplit));
    tok.save(dir.join("tokenizer.json"), false).unwrap();
    w
}

/// Independent f64 GPT-2 forward: the reward at the last token of `ids`.
fn reference(w: &HashMap<String, (Vec<usize>, Vec<f32>)>, ids: &[usize]) -> f64 {
    let get = |k: &str| w[k].1.iter().map(|x| *x as f64).collect::<Vec<f64>>();
    let t = ids.len();
    let ln = |x: &[f64], g: &[f64], b: &[f64]| -> Vec<f64> {
        let m = x.iter().sum::<f64>() / x.len() as f64;
        let var = x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / x.len() as f64;
        x.iter().enumerate().map(|(i, v)| (v - m) / (var + 1e-5).sqrt() * g[i] + b[i]).collect()
    };
    // x @ W + b with W stored [in, out].
    let lin = |x: &[f64], wt: &[f64], b: &[f64], n_out: usize| -> Vec<f64> {
        (0..n_out).map(|o| b[o] + x.iter().enumerate().map(|(i, xi)| xi * wt[i * n_out + o]).sum::<f64>()).collect()
    };
    let gelu = |x: f64| 0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh());
    let (wte, wpe) = (get("transformer.wte.weight"), get("transformer.wpe.weight"));
    let mut xs: Vec<Vec<f64>> = ids.iter().enumerate().map(|(p, &id)| (0..E).map(|j| wte[id * E + j] + wpe[p * E + j]).collect()).collect();
    let hd = E / H;
    for l in 0..L {
        let p = |s: &str| get(&format!("transformer.h.{l}.{s}"));
        let h1: Vec<Vec<f64>> = xs.iter().map(|x| ln(x, &p("ln_1.weight"), &p("ln_1.bias"))).collect();
        let qkv: Vec<Vec<f64>> = h1.iter().map(|x| lin(x, &p("attn.c_attn.weight"), &p("attn.c_attn.bias"), 3 * E)).collect();
        let mut att_out = vec![vec![0.0; E]; t];
        for h in 0..H {
            for i in 0..t {
                let q = &qkv[i][h * hd..(h + 1) * hd];
                let scores: Vec<f64> = (0..=i).map(|j| q.iter().zip(&qkv[j][E + h * hd..E + (h + 1) * hd]).map(|(a, b)| a * b).sum::<f64>() / (hd as f64).sqrt()).collect();
                let mx = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = scores.iter().map(|s| (s - mx).exp()).sum();
                for (j, s) in scores.iter().enumerate() {
                    let a = (s - mx).exp() / z;
                    for d in 0..hd {
                        att_out[i][h * hd + d] += a * qkv[j][2 * E + h * hd + d];
                    }
                }
            }
        }
        for i in 0..t {
            let proj = lin(&att_out[i], &p("attn.c_proj.weight"), &p("attn.c_proj.bias"), E);
            for j in 0..E {
                xs[i][j] += proj[j];
            }
            let h2 = ln(&xs[i], &p("ln_2.weight"), &p("ln_2.bias"));
            let fc: Vec<f64> = lin(&h2, &p("mlp.c_fc.weight"), &p("mlp.c_fc.bias"), 4 * E).into_iter().map(gelu).collect();
            let out = lin(&fc, &p("mlp.c_proj.weight"), &p("mlp.c_proj.bias"), E);
            for j in 0..E {
                xs[i][j] += out[j];
            }
        }
    }
    let last = ln(&xs[t - 1], &get("transformer.ln_f.weight"), &get("transformer.ln_f.bias"));
    last.iter().zip(get("score.weight")).map(|(a, b)| a * b).sum()
}

fn ids(text: &str) -> Vec<usize> {
    text.split_whitespace().map(|w| VOCAB.iter().position(|v| *v == w).unwrap_or(0)).collect()
}

fn config(dir: &Path) -> RewardModelConfig {
    serde_json::from_value(serde_json::json!({"model": dir.to_str().unwrap(), "batch_size": 3})).unwrap()
}

#[test]
fn scores_match_an_independent_forward_pass() {
    let dir = tempfile::tempdir().unwrap();
    let w = write_checkpoint(dir.path());
    let rm = RewardModel::new(config(dir.path())).unwrap();
    let items: Vec<RewardInput> = [("help me please", "yes"), ("hello", "no no no"), ("bake a cake", "kill"), ("world", "yes please")]
        .iter()
        .map(|(q, a)| RewardInput { query: q.to_string(), answer: a.to_string(), ..Default::default() })
        .collect();
    let scores = rm.score(&items).unwrap();
    assert_eq!(scores.len(), 4);
    let mut distinct = Vec::new();
    for (item, s) in items.iter().zip(&scores) {
        let text = rm.format(item);
        assert!(text.starts_with("\n\nHuman: ") && text.contains(" \n\nAssistant: "), "{text:?}");
        let want = reference(&w, &ids(&text));
        let got = s["score"];
        assert!((got - want).abs() < 1e-4 * want.abs().max(1.0), "got {got}, reference {want} for {text:?}");
        distinct.push(got);
    }
    // Random weights give different scores to different texts (the test can fail).
    distinct.sort_by(f64::total_cmp);
    distinct.dedup_by(|a, b| (*a - *b).abs() < 1e-6);
    assert_eq!(distinct.len(), 4);
}

#[test]
fn batching_and_padding_do_not_change_scores() {
    let dir = tempfile::tempdir().unwrap();
    write_checkpoint(dir.path());
    let rm = RewardModel::new(config(dir.path())).unwrap();
    let texts: Vec<String> = ["hello", "help me please bake a cake", "yes"].iter().map(|s| s.to_string()).collect();
    let together = rm.score_texts(&texts).unwrap();
    for (t, s) in texts.iter().zip(&together) {
        let alone = rm.score_texts(std::slice::from_ref(t)).unwrap()[0];
        assert!((alone - s).abs() < 1e-5, "{t}: {alone} vs {s}");
    }
}

#[test]
fn long_inputs_keep_their_end() {
    let dir = tempfile::tempdir().unwrap();
    let w = write_checkpoint(dir.path());
    let mut cfg = config(dir.path());
    cfg.max_length = 4;
    let rm = RewardModel::new(cfg).unwrap();
    let s = rm.score_texts(&["hello world help me please bake".to_string()]).unwrap()[0];
    let want = reference(&w, &ids("help me please bake"));
    assert!((s - want).abs() < 1e-4 * want.abs().max(1.0), "{s} vs {want}");
}

#[test]
fn missing_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = RewardModel::new(config(dir.path())).err().unwrap();
    assert!(err.contains("config.json"), "{err}");
    let err = RewardModel::new(serde_json::from_value(serde_json::json!({"model": "./nope"})).unwrap()).err().unwrap();
    assert!(err.contains("not a folder"), "{err}");
}
