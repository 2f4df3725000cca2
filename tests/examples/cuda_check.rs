//! Proof of the `cuda` feature on a GPU: the Teacher on a checkpoint folder runs on `cuda` in f32
//! and bf16, its logits match the CPU's, greedy sampling agrees, and GRPO steps give finite
//! gradients. Prints one JSON object; exits non-zero on any mismatch.
//! Build: cargo build --release -p wst-tests --example cuda_check --features cuda

use std::time::Instant;

use candle_core::{DType, Tensor};
use wst_sdk::config::{GrpoConfig, TeacherConfig};
use wst_sdk::grpo::{Centring, ScaleRewards, advantages};
use wst_sdk::teacher::model::attention_mask;
use wst_sdk::teacher::{LmTeacher, TeacherOptions, TrainItem};
use wst_sdk::{Query, Teacher, TeacherSampling};

fn teacher(dir: &str, device: &str, dtype: &str) -> LmTeacher {
    let t = TeacherConfig { device: device.into(), dtype: dtype.into(), ..Default::default() };
    LmTeacher::load(dir, TeacherOptions { teacher: t, ..Default::default() }).expect("load")
}

fn logits(t: &LmTeacher, ids: &[u32]) -> Vec<Vec<f32>> {
    let n = ids.len();
    let device = t.trainable().values().next().map(|v| v.device().clone()).unwrap_or(candle_core::Device::Cpu);
    let pos: Vec<Vec<i64>> = vec![(0..n as i64).collect()];
    let real = vec![vec![true; n]];
    let dtype = t.trainable().values().next().map(|v| v.dtype()).unwrap_or(DType::F32);
    let mask = attention_mask(&pos, &pos, &real, &real, dtype, &device).unwrap();
    let x = Tensor::new(ids, &device).unwrap().unsqueeze(0).unwrap();
    let p = Tensor::new((0..n as u32).collect::<Vec<_>>(), &device).unwrap().unsqueeze(0).unwrap();
    let h = t.decoder().forward_hidden(&x, &p, &mask, None).unwrap();
    t.decoder().logits(&h).unwrap().to_dtype(DType::F32).unwrap().squeeze(0).unwrap().to_vec2().unwrap()
}

fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    a.iter().zip(b).flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs())).fold(0.0, f32::max)
}

fn grpo_step(t: &mut LmTeacher, q: &[Query]) -> (f64, f64, usize, f64) {
    let s = TeacherSampling { num_generations: 8, temperature: 1.0, top_p: 1.0, top_k: None, max_completion_length: 16, seed: 3, ..Default::default() };
    let start = Instant::now();
    let groups = t.sample(q, &s).unwrap();
    let secs = start.elapsed().as_secs_f64();
    let tokens: usize = groups.iter().flatten().map(|s| s.completion_ids.len()).sum();
    let flat: Vec<_> = groups.iter().flatten().collect();
    let rewards: Vec<f64> = flat.iter().map(|s| s.completion_ids.iter().filter(|c| **c % 2 == 0).count() as f64).collect();
    let adv = advantages(&rewards, 8, ScaleRewards::Group, Centring::GroupMean).unwrap();
    let items: Vec<TrainItem<'_>> = flat.iter().zip(&adv.advantages).map(|(s, a)| TrainItem { sample: s, advantage: *a as f32 }).collect();
    let start = Instant::now();
    let grpo = GrpoConfig { learning_rate: 1e-3, beta: 0.04, max_completion_length: 16, ..Default::default() };
    let m = wst_tests::grpo_step(t, &items, &grpo).remove(0);
    (m.grad_norm, start.elapsed().as_secs_f64(), tokens, tokens as f64 / secs)
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: cuda_check MODEL_DIR OUT_DIR");
    let out = std::path::PathBuf::from(std::env::args().nth(2).expect("usage: cuda_check MODEL_DIR OUT_DIR"));
    let cpu = teacher(&dir, "cpu", "f32");
    let gpu = teacher(&dir, "cuda", "f32");
    let gpu_bf16 = teacher(&dir, "cuda", "auto");
    let ids = cpu.tokenizer().encode("<|im_start|>user\nWhat is 12 + 30? Add the numbers carefully.<|im_end|>\n").unwrap();
    let (lc, lg, lb) = (logits(&cpu, &ids), logits(&gpu, &ids), logits(&gpu_bf16, &ids));
    let d32 = max_diff(&lc, &lg);
    let scale = lc.iter().flatten().fold(0.0f32, |m, x| m.max(x.abs()));
    let d16 = max_diff(&lc, &lb);
    let q = [Query::new("a", "What is 12 + 30?"), Query::new("b", "Janet has 3 apples and buys 4 more.")];
    let greedy = TeacherSampling { num_generations: 2, temperature: 0.0, top_p: 1.0, top_k: None, max_completion_length: 12, seed: 0, ..Default::default() };
    let (mut c2, mut g2) = (teacher(&dir, "cpu", "f32"), teacher(&dir, "cuda", "f32"));
    let same_greedy = c2.sample(&q, &greedy).unwrap().iter().flatten().map(|s| s.completion_ids.clone()).collect::<Vec<_>>()
        == g2.sample(&q, &greedy).unwrap().iter().flatten().map(|s| s.completion_ids.clone()).collect::<Vec<_>>();
    let mut g = gpu;
    let (n32, s32, tok32, tps32) = grpo_step(&mut g, &q);
    let mut b = gpu_bf16;
    let (n16, s16, _, tps16) = grpo_step(&mut b, &q);
    // A trained Teacher saved for Hugging Face transformers, with our logits to compare against.
    g.save_pretrained(&out.join("trained")).unwrap();
    let trained = teacher(out.join("trained").to_str().unwrap(), "cpu", "f32");
    let reference = serde_json::json!({"ids": ids, "original": lc, "trained": logits(&trained, &ids)});
    std::fs::write(out.join("ours.json"), reference.to_string()).unwrap();
    let bf16_dtype = b.trainable().values().next().map(|v| format!("{:?}", v.dtype())).unwrap_or_default();
    let ok = d32 < 1e-3 && d16 < 0.05 * scale.max(1.0) && same_greedy && n32.is_finite() && n16.is_finite() && n32 > 0.0;
    println!(
        "{}",
        serde_json::json!({
            "ok": ok, "max_logit_diff_cuda_f32_vs_cpu": d32, "max_logit_diff_cuda_auto_vs_cpu": d16, "logit_scale": scale,
            "auto_dtype_on_cuda": bf16_dtype, "greedy_cpu_equals_cuda": same_greedy,
            "grpo_f32": {"grad_norm": n32, "step_s": s32, "tokens": tok32, "sampling_tok_per_s": tps32},
            "grpo_bf16": {"grad_norm": n16, "step_s": s16, "sampling_tok_per_s": tps16},
        })
    );
    if !ok {
        std::process::exit(1);
    }
}
