//! `wst instruct`: the Teacher's instructions for one query.

use std::process::ExitCode;

use wst_sdk::config::TeacherConfig;
use wst_sdk::teacher::{LmTeacher, TeacherCard, TeacherOptions};
use wst_sdk::{Query, Teacher, TeacherSampling};

/// Arguments of `wst instruct`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A Hugging Face folder, a `.gguf` file, a catalog name or a hub id.
    /// (`-m` as everywhere a model is given; `-t` is a hidden alias kept from earlier docs:
    /// elsewhere `-t` is `--threads`.)
    #[arg(long, short = 'm', alias = "model", short_alias = 't')]
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
    /// Sampling temperature (0 = greedy); default: what the Teacher was trained with
    /// (its folder's wst_teacher.json), else 0.7.
    #[arg(long)]
    temperature: Option<f64>,
    /// Nucleus sampling mass; default: the trained Teacher's, else 1.
    #[arg(long)]
    top_p: Option<f64>,
    /// Maximum tokens per instruction (llama.cpp's `-n` / `--n-predict`); default: the trained
    /// Teacher's, else 128.
    #[arg(long, short = 'n', alias = "n-predict")]
    max_tokens: Option<usize>,
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
    // Prompts, prefix and stops come from the folder's card inside `load`; sampling here.
    let trained = TeacherCard::read(std::path::Path::new(&args.teacher))?.and_then(|c| c.sampling);
    let mut teacher = LmTeacher::load(&args.teacher, options)?;
    let sampling = TeacherSampling {
        num_generations: args.num_instructions,
        temperature: args.temperature.or(trained.as_ref().map(|s| s.temperature)).unwrap_or(0.7),
        top_p: args.top_p.or(trained.as_ref().map(|s| s.top_p)).unwrap_or(1.0),
        top_k: trained.as_ref().and_then(|s| s.top_k),
        max_completion_length: args.max_tokens.or(trained.as_ref().map(|s| s.max_completion_length)).unwrap_or(128),
        ..TeacherSampling { seed: args.seed, ..Default::default() }
    };
    let groups = teacher.sample(&[Query::new("cli", args.query.clone())], &sampling)?;
    for (i, s) in groups.into_iter().flatten().enumerate() {
        if args.json {
            println!("{}", serde_json::json!({"index": i, "instruction": s.instruction.text, "tokens": s.completion_ids.len(), "truncated": s.truncated}));
        } else {
            if i > 0 {
                println!("---");
            }
            println!("{}", s.instruction.text);
        }
    }
    Ok(ExitCode::SUCCESS)
}
