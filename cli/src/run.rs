//! Builds a Pipeline (Teacher, Student, rewards) from a run configuration.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use wst_sdk::config::{StudentConfig, WstConfig};
use wst_sdk::reward::{PluginReward, PluginSearchPath};
use wst_sdk::backend::Backends;
use wst_sdk::teacher::{LmTeacher, TeacherOptions};
use wst_sdk::{Pipeline, Student, TeacherSampling};

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

/// The Teacher sampling settings of the config's GRPO section.
pub fn teacher_sampling(cfg: &WstConfig) -> TeacherSampling {
    TeacherSampling::from_grpo(&cfg.grpo, cfg.grpo.seed)
}

/// A pipeline with the Teacher loaded from `teacher_model` (default: the config's), the
/// config's Student and every reward plugin.
pub fn pipeline(cfg: &WstConfig, teacher_model: Option<&str>, student: Arc<dyn Student>) -> anyhow::Result<Pipeline> {
    let mut builder = Pipeline::builder()
        .student_arc(student)
        .student_prompt(cfg.student.prompt.clone())
        .student_sampling(cfg.student.sampling.clone())
        .teacher_sampling(teacher_sampling(cfg))
        .weights(cfg.reward_weights.clone());
    builder = with_rewards(cfg, builder)?;
    let model = teacher_model.unwrap_or(&cfg.teacher.model);
    let options = TeacherOptions::from_config(&cfg.teacher, cfg.grpo.seed);
    let teacher = LmTeacher::load(model, options).with_context(|| format!("loading the Teacher `{model}`"))?;
    Ok(builder.teacher(teacher).build()?)
}

/// The config's reward plugins, loaded and configured.
pub fn rewards(cfg: &WstConfig) -> anyhow::Result<Vec<PluginReward>> {
    let search = PluginSearchPath::new(&cfg.plugin_dirs);
    cfg.rewards
        .iter()
        .map(|r| {
            let reward = PluginReward::load_by_name(&r.plugin, &search, &r.config).with_context(|| format!("loading reward plugin `{}`", r.plugin))?;
            Ok(match &r.name {
                Some(name) => reward.with_name(name.clone()),
                None => reward,
            })
        })
        .collect()
}

/// Adds the config's reward plugins to a builder.
pub fn with_rewards(cfg: &WstConfig, mut builder: wst_sdk::PipelineBuilder) -> anyhow::Result<wst_sdk::PipelineBuilder> {
    for reward in rewards(cfg)? {
        builder = builder.reward(reward);
    }
    Ok(builder)
}
