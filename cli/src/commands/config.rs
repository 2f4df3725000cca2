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

const HEADER: &str = "wst run configuration.\nEvery field shows its default; delete the ones you do not change.\nSchema: `wst schema`. Names follow TRL's GRPOConfig where TRL has the knob.";

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
            print!("{}", cfg.to_toml()?);
            crate::progress::status!("{} is valid", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
