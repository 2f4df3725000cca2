//! `wst instruct`: the Teacher's instructions for one query.

use std::process::ExitCode;

use wst_sdk::config::TeacherConfig;
use wst_sdk::teacher::{LmTeacher, TeacherOptions};
use wst_sdk::{Query, Teacher, TeacherSampling};

/// Arguments of `wst instruct`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A Hugging Face folder, a `.gguf` file, a catalog name or a hub id.
    #[arg(long, short = 't', alias = "model", short_alias = 'm')]
    teacher: String,
    /// The query to write instructions for.
    #[arg(long)]
    query: String,
    /// How many instructions.
    #[arg(long, alias = "num-answers", default_value_t = 1)]
    num_instructions: usize,
    /// Sampling seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 0.7)]
    temperature: f64,
    /// Nucleus sampling mass.
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    /// Maximum tokens per instruction (llama.cpp's `-n` / `--n-predict`).
    #[arg(long, short = 'n', alias = "n-predict", default_value_t = 128)]
    max_tokens: usize,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print JSON lines (instruction, token count, truncated) instead of plain text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.num_instructions == 0 {
        return Err(crate::commands::UsageError("--num-instructions must be at least 1".into()).into());
    }
    let cfg = TeacherConfig { device: args.device.clone(), ..Default::default() };
    let options = TeacherOptions::from_config(&cfg, args.seed);
    let mut teacher = LmTeacher::load(&args.teacher, options)?;
    let sampling = TeacherSampling {
        num_generations: args.num_instructions,
        temperature: args.temperature,
        top_p: args.top_p,
        top_k: None,
        max_completion_length: args.max_tokens,
        ..TeacherSampling { seed: args.seed, ..Default::default() }
    };
    let groups = teacher.sample(&[Query::new("cli", args.query.clone())], &sampling)?;
    for (i, s) in groups.into_iter().flatten().enumerate() {
        if args.json {
            println!(
                "{}",
                serde_json::json!({"index": i, "instruction": s.instruction.text, "tokens": s.completion_ids.len(), "truncated": s.truncated})
            );
        } else {
            if i > 0 {
                println!("---");
            }
            println!("{}", s.instruction.text);
        }
    }
    Ok(ExitCode::SUCCESS)
}
