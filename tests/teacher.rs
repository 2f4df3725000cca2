//! The Teacher language model on tiny random Llama and Qwen2 checkpoints written by the tests:
//! logits against candle-transformers, gradients against finite differences, padding
//! invariance, KV-cache consistency, seeded sampling, GRPO learning, save → load round trips.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarBuilder;
use wst_sdk::config::{GrpoConfig, LoraConfig, TeacherConfig};
use wst_sdk::grpo::{Centring, ScaleRewards, advantages};
use wst_sdk::teacher::model::attention_mask;
use wst_sdk::teacher::{LmTeacher, TeacherOptions, TrainItem};
use wst_sdk::{Query, Teacher, TeacherSample, TeacherSampling};
use wst_tests::tiny::{Arch, write_model};
use wst_tests::{f32_teacher, grpo_step};

fn options() -> TeacherOptions {
    TeacherOptions { teacher: f32_teacher(), ..Default::default() }
}

/// Runs our decoder on `ids` (one unpadded row) and returns logits [T, V].
fn our_logits(t: &LmTeacher, ids: &[u32]) -> Vec<Vec<f32>> {
    let n = ids.len();
    let pos: Vec<Vec<i64>> = vec![(0..n as i64).collect()];
    let real = vec![vec![true; n]];
    let mask = attention_mask(&pos, &pos, &real, &real, DType::F32, &Device::Cpu).unwrap();
    let ids_t = Tensor::new(ids, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let positions = Tensor::new((0..n as u32).collect::<Vec<_>>(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let h = t.decoder().forward_hidden(&ids_t, &positions, &mask, None).unwrap();
    t.decoder().logits(&h).unwrap().squeeze(0).unwrap().to_vec2().unwrap()
}

fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    a.iter().zip(b).flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs())).fold(0.0, f32::max)
}

/// candle-transformers' inference models on the same checkpoint, logits at every position.
fn reference_logits(dir: &Path, arch: Arch, ids: &[u32]) -> Vec<Vec<f32>> {
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[dir.join("model.safetensors")], DType::F32, &Device::Cpu).unwrap() };
    let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let input = Tensor::new(ids, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    match arch {
        Arch::Qwen2 => {
            let cfg: candle_transformers::models::qwen2::Config = serde_json::from_str(&text).unwrap();
            let mut m = candle_transformers::models::qwen2::Model::new(&cfg, vb.clone()).unwrap();
            let h = m.forward(&input, 0, None).unwrap();
            let head = vb.get((cfg.vocab_size, cfg.hidden_size), "lm_head.weight").unwrap();
            h.broadcast_matmul(&head.t().unwrap()).unwrap().squeeze(0).unwrap().to_vec2().unwrap()
        }
        Arch::Llama => {
            use candle_transformers::models::llama;
            let cfg: llama::LlamaConfig = serde_json::from_str(&text).unwrap();
            let cfg = cfg.into_config(false);
            let model = llama::Llama::load(vb, &cfg).unwrap();
            (1..=ids.len())
                .map(|n| {
                    let mut cache = llama::Cache::new(false, DType::F32, &cfg, &Device::Cpu).unwrap();
                    let x = Tensor::new(&ids[..n], &Device::Cpu).unwrap().unsqueeze(0).unwrap();
                    model.forward(&x, 0, &mut cache).unwrap().squeeze(0).unwrap().to_vec1().unwrap()
                })
                .collect()
        }
    }
}

#[test]
fn logits_match_candle_transformers_at_every_position() {
    for arch in [Arch::Llama, Arch::Qwen2] {
        let dir = tempfile::tempdir().unwrap();
        write_model(dir.path(), arch, 1);
        let t = LmTeacher::load(dir.path().to_str().unwrap(), options()).unwrap();
        let ids = t.tokenizer().encode("Problem: What is 12 + 30? Add the numbers.").unwrap();
        assert!(ids.len() > 8);
        let ours = our_logits(&t, &ids);
        let theirs = reference_logits(dir.path(), arch, &ids);
        let d = max_diff(&ours, &theirs);
        assert!(d < 1e-4, "{arch:?}: max logit difference {d}");
        // The logits are not trivially equal to each other (the comparison can fail).
        assert!(max_diff(&ours[..1], &ours[1..2]) > 1e-3);
    }
}

fn sample(prompt: Vec<u32>, completion: Vec<u32>) -> TeacherSample {
    TeacherSample { instruction: wst_sdk::Instruction::new(""), logprobs: vec![0.0; completion.len()], prompt_ids: prompt, completion_ids: completion, truncated: false }
}

#[test]
fn padding_does_not_change_log_probs() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), Arch::Qwen2, 2);
    let t = LmTeacher::load(dir.path().to_str().unwrap(), options()).unwrap();
    let short = sample(vec![5, 6, 7], vec![8, 9]);
    let long = sample(vec![10, 11, 12, 13, 14, 15], vec![16, 17, 18, 19, 20]);
    let (alone, _) = t.completion_logprobs(t.decoder(), &[&short], 1.0).unwrap();
    let (batch, mask) = t.completion_logprobs(t.decoder(), &[&short, &long], 1.0).unwrap();
    let alone = alone.to_vec2::<f32>().unwrap();
    let batch = batch.to_vec2::<f32>().unwrap();
    for j in 0..2 {
        assert!((alone[0][j] - batch[0][j]).abs() < 1e-5, "{alone:?} vs {batch:?}");
    }
    assert_eq!(mask.to_vec2::<f32>().unwrap()[0], vec![1.0, 1.0, 0.0, 0.0, 0.0]);
    let (long_alone, _) = t.completion_logprobs(t.decoder(), &[&long], 1.0).unwrap();
    let la = long_alone.to_vec2::<f32>().unwrap();
    for j in 0..5 {
        assert!((la[0][j] - batch[1][j]).abs() < 1e-5);
    }
}

#[test]
fn gradients_match_finite_differences() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), Arch::Qwen2, 3);
    // f64 weights so central differences are precise.
    let t = LmTeacher::load(dir.path().to_str().unwrap(), options()).unwrap();
    let s = sample(vec![3, 4, 5, 6], vec![7, 8, 9]);
    let coeffs = Tensor::new(&[[0.7f32, -1.3, 0.4]], &Device::Cpu).unwrap();
    let f = |t: &LmTeacher| -> Tensor {
        let (lp, _) = t.completion_logprobs(t.decoder(), &[&s], 1.0).unwrap();
        (lp * &coeffs).unwrap().sum_all().unwrap()
    };
    let loss = f(&t);
    let grads = loss.backward().unwrap();
    let params = t.trainable();
    assert!(params.len() > 20, "full fine-tuning trains every tensor");
    let with_grad = params.values().filter(|v| grads.get(v.as_tensor()).is_some()).count();
    assert_eq!(with_grad, params.len(), "every weight must get a gradient");
    for name in [
        "model.layers.0.self_attn.q_proj.weight",
        "model.layers.1.mlp.down_proj.weight",
        "model.layers.0.input_layernorm.weight",
        "model.layers.0.self_attn.k_proj.bias",
        "lm_head.weight",
    ] {
        let var: &Var = &params[name];
        let g = grads.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let orig = var.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        // The element with the largest gradient, so the difference is well above f32 noise.
        let (i, _) = g.iter().enumerate().max_by(|a, b| a.1.abs().total_cmp(&b.1.abs())).unwrap();
        let h = 1e-2f32;
        let eval = |delta: f32| -> f64 {
            let mut w = orig.clone();
            w[i] += delta;
            var.set(&Tensor::from_vec(w, var.shape(), &Device::Cpu).unwrap()).unwrap();
            f(&t).to_scalar::<f32>().unwrap() as f64
        };
        let fd = (eval(h) - eval(-h)) / (2.0 * h as f64);
        var.set(&Tensor::from_vec(orig.clone(), var.shape(), &Device::Cpu).unwrap()).unwrap();
        let an = g[i] as f64;
        assert!((fd - an).abs() <= 2e-2 * an.abs().max(1e-2), "{name}[{i}]: analytic {an}, finite difference {fd}");
    }
}

fn sampling(n: usize, seed: u64, temperature: f64) -> TeacherSampling {
    TeacherSampling { num_generations: n, temperature, top_p: 1.0, top_k: None, max_completion_length: 6, seed, ..Default::default() }
}

#[test]
fn sampling_is_seeded_and_its_logprobs_match_a_full_forward() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), Arch::Llama, 4);
    let q = [Query::new("a", "What is 12 + 30?"), Query::new("b", "Janet has 3 apples and buys 4 more, how many?")];
    let mut t1 = LmTeacher::load(dir.path().to_str().unwrap(), options()).unwrap();
    let mut t2 = LmTeacher::load(dir.path().to_str().unwrap(), options()).unwrap();
    let a = t1.sample(&q, &sampling(3, 11, 1.0)).unwrap();
    let b = t2.sample(&q, &sampling(3, 11, 1.0)).unwrap();
    assert_eq!(a, b, "same seed and weights give the same instructions");
    assert_eq!((a.len(), a[0].len()), (2, 3));
    let c = t2.sample(&q, &sampling(3, 12, 1.0)).unwrap();
    assert_ne!(a, c, "another seed gives other instructions");
    // Log-probs recorded while sampling with the KV cache equal a full forward pass.
    let flat: Vec<&TeacherSample> = a.iter().flatten().collect();
    let (lp, mask) = t1.completion_logprobs(t1.decoder(), &flat, 1.0).unwrap();
    let lp = lp.to_vec2::<f32>().unwrap();
    let mask = mask.to_vec2::<f32>().unwrap();
    for (r, s) in flat.iter().enumerate() {
        assert!(!s.completion_ids.is_empty());
        for (j, want) in s.logprobs.iter().enumerate() {
            assert_eq!(mask[r][j], 1.0);
            assert!((lp[r][j] - want).abs() < 1e-4, "row {r} token {j}: {} vs {want}", lp[r][j]);
        }
    }
    // Greedy sampling repeats itself across rows of a group.
    let g = t1.sample(&q[..1], &sampling(2, 1, 0.0)).unwrap();
    assert_eq!(g[0][0].completion_ids, g[0][1].completion_ids);
}

/// Rows that finish early leave the batch (and the KV cache) while the others decode on: every
/// remaining row keeps its own cache rows, so its log-probs still equal a full forward, and each
/// query gets the tokens it gets alone.
#[test]
fn rows_that_finish_early_leave_the_batch_without_changing_the_others() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), Arch::Qwen2, 4);
    // A stop string that random tokens often contain: rows end at different steps.
    let stopping = || TeacherOptions { teacher: TeacherConfig { stop: vec!["e".into()], ..f32_teacher() }, ..Default::default() };
    let mut t = LmTeacher::load(dir.path().to_str().unwrap(), stopping()).unwrap();
    let q = [Query::new("a", "What is 12 + 30?"), Query::new("b", "Janet has 3 apples and buys 4 more, how many?")];
    let long = TeacherSampling { max_completion_length: 24, ..sampling(6, 3, 1.0) };
    let together = t.sample(&q, &long).unwrap();
    let flat: Vec<&TeacherSample> = together.iter().flatten().collect();
    let lengths: Vec<usize> = flat.iter().map(|s| s.completion_ids.len()).collect();
    let (short, longest) = (*lengths.iter().min().unwrap(), *lengths.iter().max().unwrap());
    assert!(flat.iter().filter(|s| !s.truncated).count() >= 3 && short + 3 <= longest, "rows should end at different steps: {lengths:?}");
    let (lp, _) = t.completion_logprobs(t.decoder(), &flat, 1.0).unwrap();
    let lp = lp.to_vec2::<f32>().unwrap();
    for (r, s) in flat.iter().enumerate() {
        for (j, want) in s.logprobs.iter().enumerate() {
            assert!((lp[r][j] - want).abs() < 1e-4, "row {r} token {j}: {} vs {want}", lp[r][j]);
        }
    }
    for (i, query) in q.iter().enumerate() {
        let mut fresh = LmTeacher::load(dir.path().to_str().unwrap(), stopping()).unwrap();
        let alone = fresh.sample(std::slice::from_ref(query), &long).unwrap();
        // The same tokens; the log-probs to rounding (the batch pads the shorter prompt).
        for (a, b) in alone[0].iter().zip(&together[i]) {
            assert_eq!((&a.instruction, &a.completion_ids, a.truncated), (&b.instruction, &b.completion_ids, b.truncated), "query {i} alone");
            assert!(a.logprobs.iter().zip(&b.logprobs).all(|(x, y)| (x - y).abs() < 1e-5), "query {i} alone: {:?} vs {:?}", a.logprobs, b.logprobs);
        }
    }
}

/// GRPO on a toy task: reward = fraction of completion tokens with an even id (≈ 0.5 at start).
/// Returns the mean reward of the first and of the last three steps.
fn train_toward_even_tokens(mut t: LmTeacher, grpo: &GrpoConfig, steps: usize) -> (f64, f64) {
    let q = [Query::new("q", "Write instructions.")];
    let mut first = None;
    let mut history = Vec::new();
    for step in 0..steps {
        let groups = t.sample(&q, &sampling(8, step as u64, 1.0)).unwrap();
        let rewards: Vec<f64> = groups[0].iter().map(|s| s.completion_ids.iter().filter(|&&c| c % 2 == 0).count() as f64 / s.completion_ids.len().max(1) as f64).collect();
        let mean = rewards.iter().sum::<f64>() / rewards.len() as f64;
        first.get_or_insert(mean);
        history.push(mean);
        let adv = advantages(&rewards, 8, ScaleRewards::Group, Centring::GroupMean).unwrap();
        let items: Vec<TrainItem<'_>> = groups[0].iter().zip(&adv.advantages).map(|(s, a)| TrainItem { sample: s, advantage: *a as f32 }).collect();
        grpo_step(&mut t, &items, grpo);
    }
    let tail = &history[history.len().saturating_sub(3)..];
    (first.unwrap(), tail.iter().sum::<f64>() / tail.len() as f64)
}

fn grpo(lr: f64) -> GrpoConfig {
    GrpoConfig { learning_rate: lr, beta: 0.04, max_completion_length: 6, per_device_train_batch_size: 4, ..Default::default() }
}

fn lora_options(lora: Option<LoraConfig>) -> TeacherOptions {
    TeacherOptions { teacher: TeacherConfig { lora, ..f32_teacher() }, ..Default::default() }
}

#[test]
fn grpo_steps_raise_the_reward_full_and_lora() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), Arch::Qwen2, 5);
    let path = dir.path().to_str().unwrap();
    let (before, after) = train_toward_even_tokens(LmTeacher::load(path, lora_options(None)).unwrap(), &grpo(2e-2), 25);
    eprintln!("full fine-tuning: mean reward {before:.2} → {after:.2}");
    assert!(after > 0.85 && after > before + 0.2, "full fine-tuning: reward {before:.2} → {after:.2}");
    let lora = LoraConfig { r: 8, lora_alpha: 16.0, ..Default::default() };
    let (before, after) = train_toward_even_tokens(LmTeacher::load(path, lora_options(Some(lora))).unwrap(), &grpo(2e-2), 25);
    eprintln!("LoRA: mean reward {before:.2} → {after:.2}");
    assert!(after > 0.85 && after > before + 0.2, "LoRA: reward {before:.2} → {after:.2}");
}

/// A GRPO step with gradient checkpointing (recompute per layer, loss on a log-prob leaf, head
/// in row chunks) moves every trainable tensor as the plain one-graph step does, for full
/// fine-tuning and LoRA, with micro-batches of unequal lengths and left padding.
#[test]
fn gradient_checkpointing_gives_the_same_step() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), Arch::Llama, 9);
    let path = dir.path().to_str().unwrap();
    let q = [Query::new("a", "Write."), Query::new("b", "Janet has 3 apples and buys 4 more; how many now?")];
    for lora in [None, Some(LoraConfig { r: 4, ..Default::default() })] {
        let g = GrpoConfig { per_device_train_batch_size: 3, ..grpo(1e-2) };
        let load = |checkpointing: bool| {
            let mut o = lora_options(lora.clone());
            o.teacher.gradient_checkpointing = checkpointing;
            LmTeacher::load(path, o).unwrap()
        };
        let (mut plain, mut ck) = (load(false), load(true));
        let groups = plain.sample(&q, &sampling(4, 3, 1.0)).unwrap();
        let flat: Vec<&TeacherSample> = groups.iter().flatten().collect();
        let items: Vec<TrainItem<'_>> = flat.iter().enumerate().map(|(i, s)| TrainItem { sample: s, advantage: (i as f32 - 3.5) / 2.0 }).collect();
        // Two steps, so LoRA's B is non-zero in the second and every adapter path is exercised.
        for _ in 0..2 {
            let (a, b) = (grpo_step(&mut plain, &items, &g).remove(0), grpo_step(&mut ck, &items, &g).remove(0));
            // The second step starts from a policy far from its reference (KL ~200 here), which
            // amplifies f32 rounding: the checkpointed forward runs candle's fused RMSNorm and
            // RoPE kernels where the plain one runs composed ops. Measured: grad norms agree to
            // 9e-6 (relative) with the composed head log-softmax, 1.5e-5 with the fused one; a
            // wrong or missing gradient differs by 1e-2 and more.
            let close = |x: f64, y: f64| (x - y).abs() <= 3e-5 * x.abs().max(1.0);
            assert!(close(a.loss, b.loss) && close(a.kl, b.kl) && close(a.grad_norm, b.grad_norm), "{a:?} vs {b:?}");
            assert!(a.grad_norm > 0.0);
        }
        for (name, v) in plain.trainable() {
            let w = ck.trainable()[name].as_tensor();
            let diff = (v.as_tensor() - w).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            // Adam divides by √v, which turns rounding in near-zero gradients into visible
            // steps; a wrong or missing gradient moves a weight by ~lr (1e-2).
            assert!(diff < 1e-3, "{name} (lora {}): {diff}", lora.is_some());
        }
    }
}

#[test]
fn save_and_load_round_trip_exactly() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), Arch::Llama, 6);
    let path = dir.path().to_str().unwrap();
    let mut t = LmTeacher::load(path, lora_options(Some(LoraConfig { r: 4, ..Default::default() }))).unwrap();
    // One step so the adapter is no longer zero.
    let q = [Query::new("q", "Write.")];
    let groups = t.sample(&q, &sampling(4, 0, 1.0)).unwrap();
    let items: Vec<TrainItem<'_>> = groups[0].iter().enumerate().map(|(i, s)| TrainItem { sample: s, advantage: if i % 2 == 0 { 1.0 } else { -1.0 } }).collect();
    grpo_step(&mut t, &items, &grpo(1e-2));
    let ids = t.tokenizer().encode("Add the numbers carefully.").unwrap();
    let before = our_logits(&t, &ids);
    let base = LmTeacher::load(path, options()).unwrap();
    assert!(max_diff(&before, &our_logits(&base, &ids)) > 1e-6, "the step changed the model");

    // Merged save: loads back in wst and in candle-transformers with the same logits.
    let out = tempfile::tempdir().unwrap();
    t.save_pretrained(out.path()).unwrap();
    let back = LmTeacher::load(out.path().to_str().unwrap(), options()).unwrap();
    // Merging W + (α/r)·B·A changes the float summation order: equal to rounding, not bit-exact.
    let merged = max_diff(&before, &our_logits(&back, &ids));
    eprintln!("merged LoRA vs adapter logits: max diff {merged}");
    assert!(merged < 1e-4, "merged LoRA differs by {merged}");
    assert!(max_diff(&before, &reference_logits(out.path(), Arch::Llama, &ids)) < 1e-4);

    // PEFT adapter files with PEFT names.
    t.save_adapter(out.path()).unwrap();
    let adapter = candle_core::safetensors::load(out.path().join("adapter_model.safetensors"), &Device::Cpu).unwrap();
    assert!(adapter.contains_key("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));
    let cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.path().join("adapter_config.json")).unwrap()).unwrap();
    assert_eq!((cfg["peft_type"].as_str(), cfg["r"].as_u64()), (Some("LORA"), Some(4)));
    assert_eq!(cfg["base_model_name_or_path"].as_str(), Some(path), "the base as it was given");
    // The adapter folder alone loads as the trained Teacher (base model + adapter).
    let adapter_dir = tempfile::tempdir().unwrap();
    t.save_adapter(adapter_dir.path()).unwrap();
    let from_adapter = LmTeacher::load(adapter_dir.path().to_str().unwrap(), options()).unwrap();
    assert_eq!(max_diff(&before, &our_logits(&from_adapter, &ids)), 0.0, "adapter folder = the trained Teacher");
    std::fs::write(adapter_dir.path().join("adapter_config.json"), cfg.to_string().replace("\"r\":4", "\"r\":8")).unwrap();
    let err = LmTeacher::load(adapter_dir.path().to_str().unwrap(), options()).unwrap_err().to_string();
    assert!(err.contains("adapter_model.safetensors") && err.contains("shape"), "{err}");

    // Training state: a fresh Teacher restored from it has the same weights and step count.
    t.save_training_state(out.path()).unwrap();
    let mut resumed = LmTeacher::load(path, lora_options(Some(LoraConfig { r: 4, ..Default::default() }))).unwrap();
    resumed.load_training_state(out.path()).unwrap();
    assert_eq!(resumed.steps_taken(), 1);
    assert_eq!(max_diff(&before, &our_logits(&resumed, &ids)), 0.0);
    let names: BTreeMap<_, _> = resumed.trainable().keys().map(|k| (k.clone(), ())).collect();
    assert_eq!(names.len(), 2 * 7 * 2, "A and B for 7 modules in 2 layers");
}

#[test]
fn bad_checkpoints_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = LmTeacher::load(dir.path().to_str().unwrap(), options()).unwrap_err().to_string();
    assert!(err.contains("config.json"), "{err}");
    write_model(dir.path(), Arch::Llama, 7);
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"model_type": "gpt_neox", "vocab_size": 1, "hidden_size": 1, "intermediate_size": 1, "num_hidden_layers": 1, "num_attention_heads": 1}"#,
    )
    .unwrap();
    let err = LmTeacher::load(dir.path().to_str().unwrap(), options()).unwrap_err().to_string();
    assert!(err.contains("gpt_neox") && err.contains("config.json"), "{err}");
    let err = LmTeacher::load("not/a/model/id", options()).unwrap_err().to_string();
    assert!(err.contains("hub id"), "{err}");
}

#[test]
fn gguf_checkpoints_load_like_their_safetensors_source() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), Arch::Llama, 8);
    let gguf = wst_tests::tiny::write_gguf(dir.path());
    let st = LmTeacher::load(dir.path().to_str().unwrap(), options()).unwrap();
    let gg = LmTeacher::load(gguf.to_str().unwrap(), options()).unwrap();
    let text = "<|im_start|>user\nWhat is 12 + 30?<|im_end|>\n";
    let ids = st.tokenizer().encode(text).unwrap();
    assert_eq!(gg.tokenizer().encode(text).unwrap(), ids, "the tokenizer rebuilt from GGUF metadata");
    assert_eq!(gg.tokenizer().eos_ids, st.tokenizer().eos_ids);
    let d = max_diff(&our_logits(&st, &ids), &our_logits(&gg, &ids));
    assert!(d < 1e-5, "q/k un-permutation and names: max difference {d}");
    // A GGUF Teacher saves a Hugging Face folder that candle-transformers loads unchanged.
    let out = tempfile::tempdir().unwrap();
    gg.save_pretrained(out.path()).unwrap();
    assert!(max_diff(&our_logits(&st, &ids), &reference_logits(out.path(), Arch::Llama, &ids)) < 1e-4);
    let back = LmTeacher::load(out.path().to_str().unwrap(), options()).unwrap();
    assert_eq!(back.tokenizer().encode(text).unwrap(), ids);
}

/// Samples for a GRPO step: two queries × 4 completions of unequal lengths.
fn step_items(t: &mut LmTeacher) -> Vec<TeacherSample> {
    let q = [Query::new("a", "Write."), Query::new("b", "Janet has 3 apples and buys 4 more; how many now?")];
    let mut samples: Vec<TeacherSample> = t.sample(&q, &sampling(4, 3, 1.0)).unwrap().into_iter().flatten().collect();
    // A random model rarely writes EOS: cut completions to unequal lengths (2..=6 tokens).
    for (i, s) in samples.iter_mut().enumerate() {
        let n = (2 + i % 5).min(s.completion_ids.len());
        s.completion_ids.truncate(n);
        s.logprobs.truncate(n);
    }
    samples
}

fn items_of(samples: &[TeacherSample]) -> Vec<TrainItem<'_>> {
    samples.iter().enumerate().map(|(i, s)| TrainItem { sample: s, advantage: (i as f32 - 3.5) / 2.0 }).collect()
}

/// The micro-batch size is a memory knob: for every loss type, the same batch split into
/// micro-batches of 1, 3 or 8 completions gives the same loss, gradient norm and update.
#[test]
fn the_micro_batch_size_does_not_change_the_objective() {
    use wst_sdk::grpo::LossType;
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), Arch::Qwen2, 12);
    let path = dir.path().to_str().unwrap();
    let samples = step_items(&mut LmTeacher::load(path, options()).unwrap());
    let lengths: std::collections::BTreeSet<usize> = samples.iter().map(|s| s.completion_ids.len()).collect();
    assert!(lengths.len() > 1, "completions of unequal lengths: {lengths:?}");
    for loss_type in [LossType::Grpo, LossType::Bnpo, LossType::DrGrpo, LossType::Dapo] {
        let mut runs = Vec::new();
        for micro in [1, 3, 8] {
            let mut t = LmTeacher::load(path, options()).unwrap();
            let g = GrpoConfig { loss_type, per_device_train_batch_size: micro, ..grpo(1e-3) };
            let m = grpo_step(&mut t, &items_of(&samples), &g).remove(0);
            let weights: Vec<Vec<f32>> = t.trainable().values().map(|v| v.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect();
            runs.push((micro, m, weights));
        }
        let (_, m0, w0) = &runs[0];
        for (micro, m, w) in &runs[1..] {
            let close = |a: f64, b: f64| (a - b).abs() <= 1e-5 * a.abs().max(1e-3);
            assert!(close(m.loss, m0.loss) && close(m.grad_norm, m0.grad_norm), "{loss_type:?}, micro-batch {micro}: {m:?} vs {m0:?}");
            let d = w.iter().zip(w0).flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y).abs())).fold(0.0f32, f32::max);
            assert!(d < 1e-5, "{loss_type:?}, micro-batch {micro}: weights differ by {d}");
        }
    }
}

/// With μ = 2 the first optimisation step is on-policy and the second clips against the
/// log-probs the first computed with the training forward: at learning rate 0 the second
/// step's ratio is exactly 1 (same loss, nothing clipped); after a large first step its ratios
/// move, and `epsilon_high` widens the upper clip range.
#[test]
fn num_iterations_reuse_the_first_steps_logprobs_and_clip_against_them() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), Arch::Llama, 13);
    let path = dir.path().to_str().unwrap();
    let samples = step_items(&mut LmTeacher::load(path, options()).unwrap());
    for checkpointing in [true, false] {
        let load = || LmTeacher::load(path, TeacherOptions { teacher: TeacherConfig { gradient_checkpointing: checkpointing, ..f32_teacher() }, ..Default::default() }).unwrap();
        let g = GrpoConfig { num_iterations: 2, beta: 0.0, ..grpo(0.0) };
        let m = grpo_step(&mut load(), &items_of(&samples), &g);
        assert_eq!(m.len(), 2, "one record per optimisation step");
        assert_eq!(m[0].loss, m[1].loss, "ratio exactly 1 when nothing moved (checkpointing {checkpointing})");
        assert_eq!((m[1].clip_ratio_region_mean, m[1].kl), (0.0, 0.0));

        let g = GrpoConfig { num_iterations: 2, beta: 0.0, epsilon: 0.01, ..grpo(5e-2) };
        let m = grpo_step(&mut load(), &items_of(&samples), &g);
        assert_eq!(m[0].clip_ratio_region_mean, 0.0, "the first step is on-policy");
        assert!(m[1].clip_ratio_high_mean > 0.0 && m[1].clip_ratio_low_mean > 0.0, "{:?}", m[1]);
        let wide = GrpoConfig { epsilon_high: Some(100.0), ..g.clone() };
        let w = grpo_step(&mut load(), &items_of(&samples), &wide);
        assert_eq!(w[1].clip_ratio_high_mean, 0.0, "epsilon_high = 100 clips nothing above");
        assert_eq!(w[1].clip_ratio_low_mean, m[1].clip_ratio_low_mean, "the lower range is epsilon's");
    }
}

/// β > 0 needs the frozen reference that `prepare_training` keeps; asking for it after the
/// weights moved is an error rather than a reference that is not the initial model.
#[test]
fn the_kl_reference_is_the_initial_model() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), Arch::Qwen2, 14);
    let path = dir.path().to_str().unwrap();
    let mut t = LmTeacher::load(path, options()).unwrap();
    let samples = step_items(&mut t);
    let g = grpo(1e-2);
    let err = t.step(&items_of(&samples), &wst_sdk::teacher::StepSettings { grpo: &g, learning_rates: &[1e-2], importance_sampling_cap: None }).unwrap_err().to_string();
    assert!(err.contains("prepare_training"), "{err}");
    let first = grpo_step(&mut t, &items_of(&samples), &g).remove(0);
    assert!(first.kl.abs() < 1e-9, "the reference equals the model before the first update: {}", first.kl);
    let second = grpo_step(&mut t, &items_of(&samples), &g).remove(0);
    assert!(second.kl > 0.0, "after an update the model has moved away from the reference");
    let mut late = LmTeacher::load(path, options()).unwrap();
    grpo_step(&mut late, &items_of(&samples), &GrpoConfig { beta: 0.0, ..g.clone() });
    assert!(late.prepare_training(&g).unwrap_err().to_string().contains("already been trained"));
}

/// A bf16 Teacher keeps f32 master weights: at lr 1e-6 every update is far below bf16's
/// resolution, yet the weights being trained (and the checkpoint) move.
#[test]
fn bf16_training_moves_the_weights_through_f32_masters() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), Arch::Llama, 15);
    let path = dir.path().to_str().unwrap();
    let bf16 = || LmTeacher::load(path, TeacherOptions { teacher: TeacherConfig { dtype: "bf16".into(), ..f32_teacher() }, ..Default::default() }).unwrap();
    let mut t = bf16();
    let samples = step_items(&mut t);
    let g = GrpoConfig { beta: 0.0, ..grpo(1e-6) };
    let out = tempfile::tempdir().unwrap();
    t.save_training_state(out.path()).unwrap();
    let before = candle_core::safetensors::load(out.path().join("trainable.safetensors"), &Device::Cpu).unwrap();
    for _ in 0..3 {
        grpo_step(&mut t, &items_of(&samples), &g);
    }
    t.save_training_state(out.path()).unwrap();
    let after = candle_core::safetensors::load(out.path().join("trainable.safetensors"), &Device::Cpu).unwrap();
    let name = "model.layers.0.self_attn.q_proj.weight";
    assert_eq!(after[name].dtype(), DType::F32, "checkpoints keep the masters");
    let moved = (&after[name] - &before[name].to_dtype(DType::F32).unwrap()).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(moved > 1e-6 && moved < 1e-4, "3 Adam steps at lr 1e-6 move a weight by ≈ 3e-6, got {moved}");
    // Resuming restores the masters, not their bf16 rounding.
    let mut resumed = bf16();
    resumed.load_training_state(out.path()).unwrap();
    let back = resumed.full_precision_weight(name).unwrap();
    assert_eq!((back - &after[name]).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap(), 0.0);
}

/// A GGUF whose metadata contradicts itself is a clear error naming the field, not a panic.
#[test]
fn inconsistent_gguf_tokenizer_metadata_is_an_error() {
    use candle_core::quantized::gguf_file::{self, Content, Value};
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), Arch::Llama, 16);
    let gguf = wst_tests::tiny::write_gguf(dir.path());
    let mut f = std::fs::File::open(&gguf).unwrap();
    let content = Content::read(&mut f).unwrap();
    let tensors: Vec<(String, candle_core::quantized::QTensor)> = content.tensor_infos.keys().map(|k| (k.clone(), content.tensor(&mut f, k, &Device::Cpu).unwrap())).collect();
    let rewrite = |name: &str, edit: &dyn Fn(&mut std::collections::HashMap<String, Value>)| {
        let mut md = content.metadata.clone();
        edit(&mut md);
        let path = dir.path().join(name);
        let mut out = std::fs::File::create(&path).unwrap();
        let md_refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let t_refs: Vec<(&str, &candle_core::quantized::QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
        gguf_file::write(&mut out, &md_refs, &t_refs).unwrap();
        LmTeacher::load(path.to_str().unwrap(), options()).map(|_| ()).unwrap_err().to_string()
    };
    let longer = rewrite("types.gguf", &|md| {
        let mut types = md["tokenizer.ggml.token_type"].to_vec().unwrap().clone();
        types.extend([Value::I32(3), Value::I32(3)]);
        md.insert("tokenizer.ggml.token_type".into(), Value::Array(types));
    });
    assert!(longer.contains("tokenizer.ggml.token_type has") && longer.contains("types.gguf"), "{longer}");
    let eos = rewrite("eos.gguf", &|md| {
        md.insert("tokenizer.ggml.eos_token_id".into(), Value::U32(1_000_000));
    });
    assert!(eos.contains("eos_token_id is 1000000"), "{eos}");
    let pre = rewrite("pre.gguf", &|md| {
        md.insert("tokenizer.ggml.pre".into(), Value::String("deepseek-coder".into()));
    });
    assert!(pre.contains("tokenizer.ggml.pre `deepseek-coder` is not supported"), "{pre}");
    let align = rewrite("align.gguf", &|md| {
        md.insert("general.alignment".into(), Value::U32(0));
    });
    assert!(align.contains("align.gguf"), "{align}");
}

/// `mask_truncated_completions`: instructions cut at the length limit carry no gradient.
#[test]
fn truncated_completions_can_be_left_out_of_the_loss() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), Arch::Qwen2, 17);
    let path = dir.path().to_str().unwrap();
    let mut samples = step_items(&mut LmTeacher::load(path, options()).unwrap());
    for s in &mut samples {
        s.truncated = true;
    }
    let masked = GrpoConfig { mask_truncated_completions: true, beta: 0.0, ..grpo(1e-2) };
    let m = grpo_step(&mut LmTeacher::load(path, options()).unwrap(), &items_of(&samples), &masked).remove(0);
    assert_eq!((m.loss, m.grad_norm), (0.0, 0.0), "every completion masked: {m:?}");
    let kept = grpo_step(&mut LmTeacher::load(path, options()).unwrap(), &items_of(&samples), &GrpoConfig { mask_truncated_completions: false, ..masked.clone() }).remove(0);
    assert!(kept.grad_norm > 0.0 && kept.entropy > 0.0);
    // Half of them truncated: the same update as training on the other half alone, which
    // normalised by their tokens (dapo) gives the same loss.
    for (i, s) in samples.iter_mut().enumerate() {
        s.truncated = i % 2 == 0;
    }
    let half = grpo_step(&mut LmTeacher::load(path, options()).unwrap(), &items_of(&samples), &masked).remove(0);
    let others: Vec<TeacherSample> = samples.iter().filter(|s| !s.truncated).cloned().collect();
    let adv: Vec<f32> = items_of(&samples).iter().filter(|i| !i.sample.truncated).map(|i| i.advantage).collect();
    let items: Vec<TrainItem<'_>> = others.iter().zip(&adv).map(|(s, a)| TrainItem { sample: s, advantage: *a }).collect();
    let alone = grpo_step(&mut LmTeacher::load(path, options()).unwrap(), &items, &masked).remove(0);
    assert!((half.loss - alone.loss).abs() < 1e-6 && (half.grad_norm - alone.grad_norm).abs() < 1e-5 * alone.grad_norm.max(1.0), "{half:?} vs {alone:?}");
}

#[test]
fn an_instruction_prefix_primes_the_teacher_and_starts_every_instruction() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), Arch::Qwen2, 4);
    let q = [Query::new("a", "What is 12 + 30?"), Query::new("b", "Janet has 3 apples and buys 4 more, how many?")];
    let prefix = "Be brief:";
    let primed = TeacherOptions { teacher: TeacherConfig { instruction_prefix: prefix.into(), ..f32_teacher() }, ..Default::default() };
    let mut plain = LmTeacher::load(dir.path().to_str().unwrap(), options()).unwrap();
    let mut t = LmTeacher::load(dir.path().to_str().unwrap(), primed).unwrap();
    let a = t.sample(&q, &sampling(2, 5, 1.0)).unwrap();
    let b = plain.sample(&q, &sampling(2, 5, 1.0)).unwrap();
    for (s, p) in a.iter().flatten().zip(b.iter().flatten()) {
        assert!(s.instruction.text.starts_with(prefix), "{:?}", s.instruction.text);
        // The prefix is prompt (context), not completion: it follows the chat's assistant header.
        let prompt = t.tokenizer().decode(&s.prompt_ids).unwrap();
        assert!(prompt.ends_with(prefix), "{prompt:?}");
        assert_eq!(prompt.strip_suffix(prefix), Some(plain.tokenizer().decode(&p.prompt_ids).unwrap().as_str()));
        assert_eq!(s.logprobs.len(), s.completion_ids.len());
    }
    // Sampling log-probs are conditioned on the prefix: they equal a full forward over prompt_ids.
    let flat: Vec<&TeacherSample> = a.iter().flatten().collect();
    let (lp, _) = t.completion_logprobs(t.decoder(), &flat, 1.0).unwrap();
    let lp = lp.to_vec2::<f32>().unwrap();
    for (r, s) in flat.iter().enumerate() {
        for (j, want) in s.logprobs.iter().enumerate() {
            assert!((lp[r][j] - want).abs() < 1e-4, "row {r} token {j}: {} vs {want}", lp[r][j]);
        }
    }
}

/// A trained Teacher's folder records how it was asked (prompts, prefix, stops): loaded with
/// default settings it writes after its prefix as in training; an explicit setting still wins.
#[test]
fn a_saved_teacher_keeps_its_prompting_and_explicit_settings_override_it() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), Arch::Qwen2, 2);
    let trained_with = wst_sdk::config::TeacherConfig {
        system_prompt: "You set token budgets.".into(),
        prompt_template: "Problem: {{ query }}\nBudget:".into(),
        instruction_prefix: "Use less than".into(),
        ..f32_teacher()
    };
    let t = LmTeacher::load(dir.path().to_str().unwrap(), TeacherOptions { teacher: trained_with.clone(), ..Default::default() }).unwrap();
    let saved = tempfile::tempdir().unwrap();
    t.save_pretrained(saved.path()).unwrap();
    let card = wst_sdk::teacher::TeacherCard::read(saved.path()).unwrap().expect("wst_teacher.json is written");
    assert_eq!((card.instruction_prefix.as_str(), card.system_prompt.as_str()), ("Use less than", "You set token budgets."));
    let q = wst_sdk::Query::new("q", "What is 2 + 2?");
    let sampling = TeacherSampling { num_generations: 2, max_completion_length: 4, seed: 1, ..Default::default() };
    // Loaded as `wst instruct` loads it: default settings.
    let mut again = LmTeacher::load(saved.path().to_str().unwrap(), TeacherOptions { teacher: f32_teacher(), ..Default::default() }).unwrap();
    for s in again.sample(std::slice::from_ref(&q), &sampling).unwrap().remove(0) {
        assert!(s.instruction.text.starts_with("Use less than"), "{:?}", s.instruction.text);
    }
    // An explicit prefix overrides the card.
    let explicit = wst_sdk::config::TeacherConfig { instruction_prefix: "Be brief:".into(), ..f32_teacher() };
    let mut other = LmTeacher::load(saved.path().to_str().unwrap(), TeacherOptions { teacher: explicit, ..Default::default() }).unwrap();
    for s in other.sample(std::slice::from_ref(&q), &sampling).unwrap().remove(0) {
        assert!(s.instruction.text.starts_with("Be brief:"), "{:?}", s.instruction.text);
    }
    // A card that does not parse is an error naming it, not silently ignored.
    std::fs::write(saved.path().join("wst_teacher.json"), "{ not json").unwrap();
    let err = LmTeacher::load(saved.path().to_str().unwrap(), TeacherOptions { teacher: f32_teacher(), ..Default::default() }).unwrap_err().to_string();
    assert!(err.contains("wst_teacher.json"), "{err}");
}

/// A Teacher restricted to `teacher.choices` replies with exactly one of them, records the
/// whole vocabulary's log-probs (a full forward agrees), and GRPO learns which to pick.
#[test]
fn a_teacher_with_choices_picks_one_and_grpo_learns_which() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), Arch::Llama, 4);
    let choices: Vec<String> = [" 50 tokens.", " 100 tokens.", " 200 tokens.", " 400 tokens."].iter().map(|s| s.to_string()).collect();
    let teacher = TeacherConfig {
        choices: choices.clone(),
        instruction_prefix: "Use less than".into(),
        lora: Some(LoraConfig { r: 8, lora_alpha: 16.0, ..Default::default() }),
        ..f32_teacher()
    };
    let mut t = LmTeacher::load(dir.path().to_str().unwrap(), TeacherOptions { teacher, seed: 1 }).unwrap();
    let allowed: Vec<String> = choices.iter().map(|c| format!("Use less than{c}")).collect();
    let q = [Query::new("q", "What is 12 + 30?")];
    let wide = TeacherSampling { max_completion_length: 12, ..sampling(16, 3, 1.0) };
    let groups = t.sample(&q, &wide).unwrap();
    for s in &groups[0] {
        assert!(allowed.contains(&s.instruction.text), "{:?} is not a choice", s.instruction.text);
        assert!(!s.truncated);
    }
    let flat: Vec<&TeacherSample> = groups[0].iter().collect();
    let (lp, _) = t.completion_logprobs(t.decoder(), &flat, 1.0).unwrap();
    let lp = lp.to_vec2::<f32>().unwrap();
    for (r, s) in flat.iter().enumerate() {
        for (j, want) in s.logprobs.iter().enumerate() {
            assert!((lp[r][j] - want).abs() < 1e-4, "row {r} token {j}: {} vs {want}", lp[r][j]);
        }
    }
    // Reward the rarest choice the untrained Teacher still writes (its prior favours another).
    let count = |c: &String| groups[0].iter().filter(|s| s.instruction.text == *c).count();
    let target = allowed.iter().filter(|c| count(c) > 0).min_by_key(|c| count(c)).unwrap().clone();
    let target = target.as_str();
    let share = |groups: &[Vec<TeacherSample>]| groups[0].iter().filter(|s| s.instruction.text == target).count() as f64 / groups[0].len() as f64;
    let before = share(&groups);
    let grpo = GrpoConfig { learning_rate: 3e-2, beta: 0.0, max_completion_length: 12, per_device_train_batch_size: 16, ..Default::default() };
    let mut last = 0.0;
    for step in 0..15 {
        let groups = t.sample(&q, &TeacherSampling { seed: 100 + step, ..wide.clone() }).unwrap();
        last = share(&groups);
        let rewards: Vec<f64> = groups[0].iter().map(|s| f64::from(u8::from(s.instruction.text == target))).collect();
        let adv = advantages(&rewards, 16, ScaleRewards::Group, Centring::GroupMean).unwrap();
        let items: Vec<TrainItem<'_>> = groups[0].iter().zip(&adv.advantages).map(|(s, a)| TrainItem { sample: s, advantage: *a as f32 }).collect();
        grpo_step(&mut t, &items, &grpo);
    }
    eprintln!("share of the rewarded choice {target:?}: {before:.2} → {last:.2}");
    assert!(last > 0.8 && last > before + 0.5, "share of the rewarded choice: {before:.2} → {last:.2}");

    // A choice that begins another is refused, naming the setting.
    let bad = TeacherConfig { choices: vec![" 50".into(), " 50 tokens.".into()], ..f32_teacher() };
    let mut t = LmTeacher::load(dir.path().to_str().unwrap(), TeacherOptions { teacher: bad, seed: 1 }).unwrap();
    let err = t.sample(&q, &wide).unwrap_err().to_string();
    assert!(err.contains("teacher.choices"), "{err}");
}
