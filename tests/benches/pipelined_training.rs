//! Pipelined against sequential training, side by side in one run (issue 27, goal 1): 20 steps
//! of a real Teacher (SmolLM2-135M-Instruct, LoRA r = 16, f32 on the CPU, G = 4, 1 query a
//! step, instructions of up to 24 tokens) steering an OpenAI-compatible mock Student on
//! 127.0.0.1 that answers every request after a fixed latency (0.5, 2, 5 and 10 s by default).
//! For each latency it trains sequentially, then pipelined (`wst.async_generation`,
//! `max_staleness = 1`), from the same weights, and prints the wall times, where each run's time
//! went (`time/teacher_secs`, `time/student_wait_secs` summed over steps), and the goal's ratio:
//! pipelined wall time ÷ max(Teacher time, Student time) of the sequential run (goal ≤ 1.15).
//! Usage: cargo bench -p wst-tests --bench pipelined_training [-- 0.5 2 5]
//! (`WST_BENCH_STEPS` changes the 20 steps.)

use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use wst_openai::{OpenAiConfig, OpenAiStudent};
use wst_sdk::config::{GrpoConfig, LoraConfig, OutputConfig, TeacherConfig, WstSettings};
use wst_sdk::reward::RewardInput;
use wst_sdk::teacher::{LmTeacher, TeacherOptions};
use wst_sdk::train::log::read_jsonl;
use wst_sdk::{Pipeline, Query, Result, Reward, Score, TrainOptions};
use wst_tests::openai_mock::{MockServer, Reply};

/// 1 when the answer names the gold answer (the mock's answers depend on the request's seed,
/// so groups have spread and every step updates the Teacher).
struct Names;

impl Reward for Names {
    fn name(&self) -> &str {
        "names"
    }
    fn value_names(&self) -> Vec<String> {
        vec!["accuracy".into()]
    }
    fn score(&self, inputs: &[RewardInput]) -> Result<Vec<Score>> {
        Ok(inputs.iter().map(|i| Score::single("accuracy", i.answer.contains(&format!("is {}.", i.gold.clone().unwrap_or_default())) as u8 as f64)).collect())
    }
}

struct Run {
    wall: f64,
    teacher: f64,
    student_wait: f64,
    steps: usize,
}

async fn train(model: &str, server: &MockServer, pipelined: bool, steps: usize) -> Run {
    let lora = Some(LoraConfig { r: 16, lora_alpha: 32.0, ..Default::default() });
    let teacher = LmTeacher::load(model, TeacherOptions { teacher: TeacherConfig { lora, ..wst_tests::f32_teacher() }, seed: 1 }).unwrap();
    let cfg = OpenAiConfig { base_urls: vec![server.base_url()], api_key_env: None, timeout_secs: 60.0, ..Default::default() };
    let student = OpenAiStudent::new("mock", &cfg).unwrap();
    let p = Pipeline::builder().teacher(teacher).student(student).reward(Names).build().unwrap();
    let queries: Vec<Query> = wst_tests::GSM8K_PROBLEMS.iter().enumerate().map(|(i, q)| Query::new(format!("q{i}"), *q).with_gold("1")).collect();
    let out = tempfile::tempdir().unwrap();
    let options = TrainOptions {
        grpo: GrpoConfig {
            num_generations: 4,
            per_device_train_batch_size: 4,
            max_completion_length: 24,
            learning_rate: 1e-5,
            beta: 0.0,
            max_steps: Some(steps),
            seed: 7,
            ..Default::default()
        },
        wst: WstSettings { student_samples: 2, baseline_samples: 2, max_concurrency: 16, async_generation: pipelined, ..Default::default() },
        output: OutputConfig { output_dir: out.path().to_path_buf(), save_steps: 0, ..Default::default() },
        ..Default::default()
    };
    let start = Instant::now();
    let summary = p.train(&queries, options).await.unwrap();
    let wall = start.elapsed().as_secs_f64();
    let rows: Vec<serde_json::Value> = read_jsonl(&out.path().join("metrics.jsonl")).unwrap().into_iter().filter(|r| r.get("reward").is_some()).collect();
    let sum = |k: &str| rows.iter().map(|r| r[k].as_f64().unwrap_or(0.0)).sum::<f64>();
    Run { wall, teacher: sum("time/teacher_secs"), student_wait: sum("time/student_wait_secs"), steps: summary.steps_done }
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).with_writer(std::io::stderr).init();
    let Some(gguf) = wst_tests::smollm2_gguf() else { return };
    let model = gguf.display().to_string();
    let steps: usize = std::env::var("WST_BENCH_STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let mut latencies: Vec<f64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    if latencies.is_empty() {
        latencies = vec![0.5, 2.0, 5.0, 10.0];
    }
    println!("| Student latency | sequential: wall (Teacher + Student wait) | pipelined: wall (Teacher + Student wait) | speed-up | pipelined ÷ max(Teacher, Student) |");
    println!("|---|---|---|---|---|");
    for latency in latencies {
        // The answer names `seed % 3`: a third of answers are right, varying with the seed.
        let server = MockServer::start(Duration::from_secs_f64(latency), |_, body| {
            let n = body["n"].as_u64().unwrap_or(1) as usize;
            let seed = body["seed"].as_u64().unwrap_or(0);
            Reply::choices(&(0..n).map(|i| format!("The answer is {}.", (seed + i as u64) % 3)).collect::<Vec<_>>())
        })
        .await;
        let seq = train(&model, &server, false, steps).await;
        let pip = train(&model, &server, true, steps).await;
        assert_eq!((seq.steps, pip.steps), (steps, steps));
        let bound = seq.teacher.max(seq.student_wait);
        println!(
            "| {latency} s | {:.1} s ({:.1} + {:.1}) | {:.1} s ({:.1} + {:.1}) | {:.2}× | {:.2} |",
            seq.wall,
            seq.teacher,
            seq.student_wait,
            pip.wall,
            pip.teacher,
            pip.student_wait,
            seq.wall / pip.wall,
            pip.wall / bound
        );
    }
}
