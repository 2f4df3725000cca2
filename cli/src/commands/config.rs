//! `wst config init`: write a commented default configuration; `wst config check`: validate one.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use wst_sdk::config::{WstConfig, commented_toml};

/// `wst config` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Write a default configuration with every field documented.
    Init {
        /// Where to write it (`-` for standard output).
        #[arg(short, long, default_value = "wst.toml")]
        output: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Check a configuration file and print it with every default filled in.
    Check {
        /// The file to check.
        path: PathBuf,
    },
}

const HEADER: &str =
    "wst run configuration.\nEvery field shows its default; delete the ones you do not change.\nSchema: `wst schema`. Names follow TRL's GRPOConfig where TRL has the knob.";

pub fn run(cmd: ConfigCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ConfigCommand::Init { output, force } => {
            let backends = crate::run::backends();
            let mut value = serde_json::to_value(WstConfig::default())?;
            if let Some(serde_json::Value::Object(student)) = value.get_mut("student") {
                student.extend(backends.default_sections());
            }
            let text = commented_toml(&backends.extend_schema(WstConfig::json_schema()), &value, HEADER);
            if output.as_os_str() == "-" {
                print!("{text}");
            } else {
                if output.exists() && !force {
                    anyhow::bail!("{} exists; pass --force to overwrite it", output.display());
                }
                std::fs::write(&output, text).with_context(|| format!("writing {}", output.display()))?;
                crate::progress::status!("wrote {}", output.display());
            }
        }
        ConfigCommand::Check { path } => {
            let cfg = crate::run::load_config(&path, &[])?;
            // Everything `wst train` checks before its first step that needs no model: the
            // data (rows, fields, unique ids) and the rewards with their weights.
            let train = wst_sdk::dataset::load_queries(&cfg.data.train).context("data.train")?;
            let mut seen = std::collections::HashSet::new();
            if let Some(q) = train.iter().find(|q| !seen.insert(q.id.as_str())) {
                return Err(wst_sdk::Error::Config {
                    location: format!("data.train ({})", cfg.data.train.path.display()),
                    message: format!("query id `{}` appears twice: ids key the Student's baseline and every seed, so they must be unique", q.id),
                }
                .into());
            }
            if let Some(e) = &cfg.data.eval {
                wst_sdk::dataset::load_queries(e).context("data.eval")?;
            }
            let rewards: Vec<std::sync::Arc<dyn wst_sdk::Reward>> = wst_sdk::rewards_from_config(&cfg)?.into_iter().map(|r| std::sync::Arc::new(r) as _).collect();
            wst_sdk::reward::WeightedReward::new(rewards, cfg.reward_weights.clone())?;
            print!("{}", cfg.to_toml()?);
            crate::progress::status!("{} is valid", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
