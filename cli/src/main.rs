//! `wst`: the command-line face of wst-sdk. Each subcommand lives in `commands/`.

mod commands;

use clap::{Parser, Subcommand};

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
    /// Print the JSON Schema of the run configuration (or of a reward plugin's configuration).
    Schema(commands::schema::Args),
    /// Work with run configuration files.
    #[command(subcommand)]
    Config(commands::config::ConfigCommand),
    /// Score answers from a JSONL file with a reward plugin.
    Score(commands::score::Args),
    /// Print the Teacher's instructions for a query.
    Instruct(commands::instruct::Args),
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("WST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Schema(a) => commands::schema::run(a),
        Command::Config(c) => commands::config::run(c),
        Command::Score(a) => commands::score::run(a),
        Command::Instruct(a) => commands::instruct::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
