//! Builds a Pipeline (Teacher, Student, rewards) from a run configuration.

use std::sync::Arc;

use anyhow::Context;
use wst_sdk::config::{StudentConfig, WstConfig};
use wst_sdk::reward::{PluginReward, PluginSearchPath};
use wst_sdk::student::{CachedStudent, ResponseCache, StudentSpec};
use wst_sdk::teacher::{LmTeacher, TeacherOptions};
use wst_sdk::{Pipeline, Student, TeacherSampling};

/// The Student of the config (cached when `student.cache_dir` is set).
pub fn student(cfg: &WstConfig) -> anyhow::Result<(Arc<dyn Student>, Option<Arc<ResponseCache>>)> {
    student_from(&cfg.student)
}

/// The Student a spec names, with its backend settings, cached when `cache_dir` is set.
pub fn student_from(cfg: &StudentConfig) -> anyhow::Result<(Arc<dyn Student>, Option<Arc<ResponseCache>>)> {
    let spec: StudentSpec = cfg.spec.parse()?;
    let raw: Arc<dyn Student> = match &spec {
        StudentSpec::OpenAi(model) => Arc::new(wst_openai::OpenAiStudent::new(model, &cfg.openai)?),
        StudentSpec::LlamaCpp(path) => Arc::new(wst_llamacpp::LlamaCppStudent::load(path, &cfg.llamacpp)?),
        StudentSpec::Candle(model) => Arc::new(wst_candle::CandleStudent::load(model, &cfg.candle)?),
    };
    Ok(match &cfg.cache_dir {
        Some(dir) => {
            let cache = ResponseCache::open(dir)?;
            (Arc::new(CachedStudent::new(raw, cache.clone())), Some(cache))
        }
        None => (raw, None),
    })
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

/// Adds the config's reward plugins to a builder.
pub fn with_rewards(cfg: &WstConfig, mut builder: wst_sdk::PipelineBuilder) -> anyhow::Result<wst_sdk::PipelineBuilder> {
    let search = PluginSearchPath::new(&cfg.plugin_dirs);
    for r in &cfg.rewards {
        let mut reward = PluginReward::load_by_name(&r.plugin, &search, &r.config).with_context(|| format!("loading reward plugin `{}`", r.plugin))?;
        if let Some(name) = &r.name {
            reward = reward.with_name(name.clone());
        }
        builder = builder.reward(reward);
    }
    Ok(builder)
}
