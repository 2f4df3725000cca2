//! The backends this binary links, and configurations read and checked against them.

use std::path::Path;
use std::sync::Arc;

use wst_sdk::Student;
use wst_sdk::backend::Backends;
use wst_sdk::config::{StudentConfig, WstConfig};

/// The Student backends this binary links, by spec prefix. An application embedding wst adds
/// its own with [`Backends::register`]; nothing in the SDK changes.
pub fn backends() -> Backends {
    let backends = Backends::new().with(wst_openai::OpenAiBackend).with(wst_llamacpp::LlamaCppBackend);
    #[cfg(feature = "candle")]
    let backends = backends.with(wst_candle::CandleBackend);
    #[cfg(not(feature = "candle"))]
    let backends = backends.left_out("candle", "build `wst` with the candle Student (`cargo install --path cli --features candle`), or use `llamacpp:` for a GGUF file");
    backends
}

/// Reads a run configuration, applies `--set` overrides and checks its Student section against
/// the linked backends (an unknown backend or a bad `[student.<backend>]` field names the file
/// and the field).
pub fn load_config(path: &Path, overrides: &[String]) -> anyhow::Result<WstConfig> {
    let cfg = WstConfig::from_toml_file_with(path, overrides)?;
    backends().check(&cfg.student).map_err(|e| e.in_file(&path.display().to_string()))?;
    Ok(cfg)
}

/// The Student a spec names, with its backend settings, cached when `cache_dir` is set.
pub fn student_from(cfg: &StudentConfig) -> anyhow::Result<Arc<dyn Student>> {
    Ok(backends().build(cfg)?)
}
