//! A pipeline from a run configuration: what `wst train` and `wst eval` build, so an app gets
//! the same Teacher, Student, rewards and prompts from the same TOML without copying CLI code.

use std::sync::Arc;

use super::Pipeline;
use crate::backend::Backends;
use crate::config::WstConfig;
use crate::error::Result;
use crate::reward::{PluginReward, PluginSearchPath};
use crate::student::Student;
use crate::teacher::{LmTeacher, TeacherOptions, TeacherSampling};

impl Pipeline {
    /// The pipeline `cfg` describes: its Teacher (`teacher.model`), its Student built by the
    /// registered `backends` (cached when `student.cache_dir` is set), its reward plugins with
    /// their weights, its Student prompt and both sampling settings.
    pub fn from_config(cfg: &WstConfig, backends: &Backends) -> Result<Pipeline> {
        Self::from_config_with(cfg, Some(&cfg.teacher.model), backends.build(&cfg.student)?)
    }

    /// Like [`Pipeline::from_config`] with another Teacher (a trained one's folder or PEFT
    /// adapter; `None` for none) and a Student already built, so that several pipelines (the
    /// rows of an evaluation) share one Student and its cache.
    pub fn from_config_with(cfg: &WstConfig, teacher: Option<&str>, student: Arc<dyn Student>) -> Result<Pipeline> {
        let mut builder = Pipeline::builder()
            .student_arc(student)
            .student_prompt(cfg.student.prompt.clone())
            .student_sampling(cfg.student.sampling.clone())
            .teacher_sampling(TeacherSampling::from_grpo(&cfg.grpo, cfg.grpo.seed))
            .weights(cfg.reward_weights.clone());
        for reward in rewards_from_config(cfg)? {
            builder = builder.reward(reward);
        }
        if let Some(model) = teacher {
            builder = builder.teacher(LmTeacher::load(model, TeacherOptions::from_config(&cfg.teacher, cfg.grpo.seed))?);
        }
        builder.build()
    }
}

/// The reward plugins of `cfg` (`[[rewards]]`), found on its `plugin_dirs`, `WST_PLUGIN_PATH`
/// and beside the executable, configured and named as it says.
pub fn rewards_from_config(cfg: &WstConfig) -> Result<Vec<PluginReward>> {
    let search = PluginSearchPath::new(&cfg.plugin_dirs);
    cfg.rewards
        .iter()
        .map(|r| {
            let reward = PluginReward::load_by_name(&r.plugin, &search, &r.config)?;
            Ok(match &r.name {
                Some(name) => reward.with_name(name.clone()),
                None => reward,
            })
        })
        .collect()
}
