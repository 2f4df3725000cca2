//! The Pipeline in 30 lines: a Teacher writes instructions, a llama.cpp Student answers,
//! the math plugin scores, and a few WST steps train the Teacher.
//!
//! cargo build --release -p wst-reward-math
//! cargo run --release -p wst-examples --example quickstart -- TEACHER STUDENT.gguf target/release/libwst_reward_math.so
use wst_sdk::reward::PluginReward;
use wst_sdk::teacher::{LmTeacher, TeacherOptions};
use wst_sdk::{Pipeline, Query, TrainOptions};

#[tokio::main]
async fn main() -> wst_sdk::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (teacher, student, math) = (&args[1], &args[2], &args[3]);
    let pipeline = Pipeline::builder()
        .teacher(LmTeacher::load(teacher, TeacherOptions::default())?)
        .student(wst_llamacpp::LlamaCppStudent::load(student, &Default::default())?)
        .reward(PluginReward::load(math, &serde_json::json!({}))?)
        .build()?;
    let q = Query::new("q1", "Janet has 3 apples and buys 4 more. How many apples does she have?").with_gold("7");
    let instruction = pipeline.instruct(&q, 1).await?.remove(0);
    let answers = pipeline.answer(&q, Some(&instruction), 4).await?;
    let scores = pipeline.score(&q, Some(&instruction), &answers).await?;
    println!("instruction: {}\naccuracy: {}", instruction.text, scores.iter().map(|s| s.total).sum::<f64>() / 4.0);
    let mut options = TrainOptions { output: Default::default(), ..Default::default() };
    options.grpo.num_generations = 4;
    options.grpo.max_steps = Some(2);
    options.wst.student_samples = 2;
    let summary = pipeline.train(&[q], options).await?;
    println!("trained {} steps; metrics in wst-out/metrics.jsonl", summary.steps_done);
    Ok(())
}
