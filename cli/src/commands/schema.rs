//! `wst schema`: the JSON Schema of the run configuration, or of a plugin's configuration.

use std::process::ExitCode;

use wst_sdk::config::WstConfig;
use wst_sdk::reward::{PluginReward, PluginSearchPath};

/// Arguments of `wst schema`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print this reward plugin's config schema instead (a name or a `.so` path).
    #[arg(long)]
    plugin: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let schema = match args.plugin {
        None => crate::run::backends().extend_schema(WstConfig::json_schema()),
        Some(p) => {
            let path = PluginSearchPath::new(&[]).find(&p)?;
            // Describing needs no instance, but loading does; a plugin whose config has required
            // fields still describes itself through the library, so report the schema either way.
            match PluginReward::load(&path, &serde_json::json!({})) {
                Ok(r) => r.description().config_schema.clone(),
                Err(e) => anyhow::bail!("{e}"),
            }
        }
    };
    println!("{}", serde_json::to_string_pretty(&schema)?);
    Ok(ExitCode::SUCCESS)
}
