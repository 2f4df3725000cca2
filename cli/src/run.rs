//! Builds a Pipeline (Teacher, Student, rewards) from a run configuration.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use wst_sdk::config::{StudentConfig, WstConfig};
use wst_sdk::reward::PluginReward;
use wst_sdk::backend::Backends;
use wst_sdk::{Pipeline, Student};

/// The Student backends this binary links, by spec prefix. An application embedding wst adds
/// its own with [`Backends::register`]; nothing in the SDK changes.
pub fn backends() -> Backends {
    Backends::new().with(wst_openai::OpenAiBackend).with(wst_llamacpp::LlamaCppBackend).with(wst_candle::CandleBackend)
}

/// Reads a run configuration, applies `--set` overrides and checks its Student section against
/// the linked backends (an unknown backend or a bad `[student.<backend>]` field names the file
/// and the field).
pub fn load_config(path: &Path, overrides: &[String]) -> anyhow::Result<WstConfig> {
    let cfg = WstConfig::from_toml_file_with(path, overrides)?;
    backends().check(&cfg.student).map_err(|e| e.in_file(&path.display().to_string()))?;
    Ok(cfg)
}

/// The Student of the config (cached when `student.cache_dir` is set).
pub fn student(cfg: &WstConfig) -> anyhow::Result<Arc<dyn Student>> {
    student_from(&cfg.student)
}

/// The Student a spec names, with its backend settings, cached when `cache_dir` is set.
pub fn student_from(cfg: &StudentConfig) -> anyhow::Result<Arc<dyn Student>> {
    Ok(backends().build(cfg)?)
}

/// A pipeline with the Teacher loaded from `teacher_model` (default: the config's), the
/// config's Student and every reward plugin.
pub fn pipeline(cfg: &WstConfig, teacher_model: Option<&str>, student: Arc<dyn Student>) -> anyhow::Result<Pipeline> {
    let model = teacher_model.unwrap_or(&cfg.teacher.model);
    Pipeline::from_config_with(cfg, Some(model), student).with_context(|| format!("building the pipeline (Teacher `{model}`)"))
}

/// The config's reward plugins, loaded and configured.
pub fn rewards(cfg: &WstConfig) -> anyhow::Result<Vec<PluginReward>> {
    Ok(wst_sdk::rewards_from_config(cfg)?)
}
