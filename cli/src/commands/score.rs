//! `wst score`: score a JSONL file of answers with a reward plugin. Bad lines are reported with
//! their line number and skipped; the run goes on.

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use wst_sdk::reward::{PluginReward, PluginSearchPath, Reward, RewardInput};

/// Arguments of `wst score`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Reward plugin: a name found on the plugin path, or a `.so` path.
    #[arg(long)]
    reward: String,
    /// The plugin's configuration as JSON.
    #[arg(long, alias = "config", default_value = "{}")]
    reward_config: String,
    /// JSONL with `answer` and `gold` per line (optional `query`, `instruction`, `metadata`).
    #[arg(long)]
    input: PathBuf,
    /// Where to write the scores (default: standard output).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Extra plugin folders.
    #[arg(long = "plugin-dir")]
    plugin_dirs: Vec<PathBuf>,
    /// Exit with status 2 when any line was bad.
    #[arg(long)]
    strict: bool,
    /// Items scored per plugin call.
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config: serde_json::Value = serde_json::from_str(&args.reward_config).context("--reward-config is not valid JSON")?;
    let reward = PluginReward::load_by_name(&args.reward, &PluginSearchPath::new(&args.plugin_dirs), &config)?;
    let file = std::fs::File::open(&args.input).with_context(|| format!("opening {}", args.input.display()))?;
    let mut out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(BufWriter::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?)),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let (mut ok, mut bad) = (0usize, 0usize);
    // Lines are buffered per batch so the output keeps the input's order.
    let mut batch: Vec<(usize, Result<RewardInput, String>)> = Vec::new();
    let mut flush = |batch: &mut Vec<(usize, Result<RewardInput, String>)>, out: &mut dyn Write| -> anyhow::Result<()> {
        let inputs: Vec<RewardInput> = batch.iter().filter_map(|(_, r)| r.as_ref().ok().cloned()).collect();
        let mut scored: Vec<Result<wst_sdk::Score, String>> = match reward.score(&inputs) {
            Ok(s) => s.into_iter().map(Ok).collect(),
            // Score one by one so a single bad item does not lose the others.
            Err(_) => inputs.iter().map(|i| reward.score(std::slice::from_ref(i)).map(|mut s| s.remove(0)).map_err(|e| e.to_string())).collect(),
        };
        scored.reverse();
        for (line, parsed) in batch.drain(..) {
            let result = parsed.and_then(|_| scored.pop().unwrap_or_else(|| Err("no score returned".into())));
            match result {
                Ok(score) => {
                    let mut obj = serde_json::Map::new();
                    obj.insert("line".into(), line.into());
                    for (k, v) in score.values {
                        obj.insert(k, serde_json::json!(v));
                    }
                    writeln!(out, "{}", serde_json::Value::Object(obj))?;
                    ok += 1;
                }
                Err(e) => {
                    eprintln!("{}:{line}: {e}", args.input.display());
                    writeln!(out, "{}", serde_json::json!({"line": line, "error": e}))?;
                    bad += 1;
                }
            }
        }
        Ok(())
    };
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let n = i + 1;
        let line = line.with_context(|| format!("{}:{n}: cannot read", args.input.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        batch.push((n, serde_json::from_str::<RewardInput>(&line).map_err(|e| format!("invalid line: {e}"))));
        if batch.len() >= args.batch_size.max(1) {
            flush(&mut batch, &mut *out)?;
        }
    }
    flush(&mut batch, &mut *out)?;
    out.flush()?;
    crate::progress::status!("scored {ok} lines, {bad} bad");
    Ok(if bad > 0 && args.strict { ExitCode::from(2) } else { ExitCode::SUCCESS })
}
