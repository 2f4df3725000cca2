//! The run configuration: one serde tree, read from TOML, with `deny_unknown_fields` everywhere,
//! defaults documented on each field, and a JSON Schema derived with schemars.

mod commented;
mod grpo;
mod models;

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::dataset::DataConfig;
use crate::error::{Error, Result};
use crate::score::Weights;

pub use crate::types::Price;
pub use commented::commented_toml;
pub use grpo::{GrpoConfig, LrScheduler, WstSettings, ZeroStdGroups};
pub use models::{DEFAULT_TEACHER_SYSTEM, LoraConfig, StudentConfig, TeacherConfig};

/// Everything a WST run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct WstConfig {
    /// The Teacher model (trained).
    pub teacher: TeacherConfig,
    /// The Student model (frozen, possibly remote).
    pub student: StudentConfig,
    /// Reward plugins; their values are combined by `reward_weights`.
    pub rewards: Vec<RewardConfig>,
    /// Weights over reward values, e.g. `{ "helpful/score" = 0.7, "harmless/score" = 0.3 }`;
    /// empty means weight 1 on each reward's primary value (the first it declares).
    pub reward_weights: Weights,
    /// Folders searched for reward plugins by name (before `WST_PLUGIN_PATH`).
    pub plugin_dirs: Vec<PathBuf>,
    /// Training and evaluation data.
    pub data: DataConfig,
    /// GRPO knobs (TRL names and defaults).
    pub grpo: GrpoConfig,
    /// WST's own knobs (K, baseline samples, zero-std groups).
    pub wst: WstSettings,
    /// Where and how often results are written.
    pub output: OutputConfig,
}

impl Default for WstConfig {
    fn default() -> Self {
        WstConfig {
            teacher: TeacherConfig::default(),
            student: StudentConfig::default(),
            rewards: vec![RewardConfig { plugin: "math".into(), name: None, config: serde_json::Value::Object(Default::default()) }],
            reward_weights: Weights::default(),
            plugin_dirs: Vec::new(),
            data: DataConfig::default(),
            grpo: GrpoConfig::default(),
            wst: WstSettings::default(),
            output: OutputConfig::default(),
        }
    }
}

/// One reward plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RewardConfig {
    /// A plugin name (`math`, `reward-model`, ...) looked up in the plugin folders, or a path to a `.so`.
    pub plugin: String,
    /// The name its values are logged under (default: the plugin's own name).
    #[serde(default)]
    pub name: Option<String>,
    /// The plugin's own configuration (see `wst schema --plugin NAME`).
    #[serde(default = "empty_object")]
    pub config: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

/// Output folder and logging cadence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    /// Folder for metrics, completions, checkpoints and results.
    pub output_dir: PathBuf,
    /// Write a metrics line every N steps.
    pub logging_steps: usize,
    /// Write a checkpoint every N steps (0 = only at the end).
    pub save_steps: usize,
    /// Keep at most this many checkpoints (unset keeps all).
    pub save_total_limit: Option<usize>,
    /// Evaluate on the held-out split every N steps (0 = only at the end).
    pub eval_steps: usize,
    /// Write a completions table (query, instruction, answers, rewards) every N steps (0 = never).
    pub log_completions_steps: usize,
    /// Where metrics go besides `metrics.jsonl`, as TRL's `report_to`: `["tensorboard"]`
    /// writes TensorBoard event files to `logging_dir` (`tensorboard --logdir` shows them).
    pub report_to: Vec<ReportTo>,
    /// Folder of the TensorBoard event files (unset: OUTPUT_DIR/runs).
    pub logging_dir: Option<PathBuf>,
}

/// A metrics destination besides `metrics.jsonl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReportTo {
    /// TensorBoard event files.
    Tensorboard,
    /// Nothing more (the same as an empty list).
    None,
}

impl OutputConfig {
    /// The folder of TensorBoard event files when TensorBoard is a destination.
    pub fn tensorboard_dir(&self) -> Option<PathBuf> {
        self.report_to.contains(&ReportTo::Tensorboard).then(|| self.logging_dir.clone().unwrap_or_else(|| self.output_dir.join("runs")))
    }
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig {
            output_dir: PathBuf::from("wst-out"),
            logging_steps: 1,
            save_steps: 50,
            save_total_limit: Some(3),
            eval_steps: 0,
            log_completions_steps: 10,
            report_to: Vec::new(),
            logging_dir: None,
        }
    }
}

/// A TOML error located at `origin:line`.
fn toml_error(e: &toml::de::Error, text: &str, origin: &str) -> Error {
    let line = e.span().map(|sp| text[..sp.start.min(text.len())].matches('\n').count() + 1);
    Error::Config { location: line.map_or_else(|| origin.to_string(), |l| format!("{origin}:{l}")), message: e.message().trim().to_string() }
}

impl WstConfig {
    /// Reads and validates a TOML file.
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// Parses and validates TOML text; `origin` names it in errors (a file path).
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self> {
        let cfg: WstConfig = toml::from_str(text).map_err(|e| toml_error(&e, text, origin))?;
        cfg.validated(origin)
    }

    /// `self` after [`validate`](Self::validate), its errors located in `origin`.
    fn validated(self, origin: &str) -> Result<Self> {
        self.validate().map_err(|e| e.in_file(origin))?;
        Ok(self)
    }

    /// Reads a TOML file, applies `--set`-style overrides (`grpo.learning_rate=1e-5`,
    /// `student.spec="openai:gpt-4o-mini"`; values in TOML syntax, a bare word taken as a
    /// string), then validates: an override naming no field is an error naming it.
    pub fn from_toml_file_with(path: impl AsRef<Path>, overrides: &[String]) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_toml_str_with(&text, &path.display().to_string(), overrides)
    }

    /// [`WstConfig::from_toml_str`] with overrides applied on top of the text.
    pub fn from_toml_str_with(text: &str, origin: &str, overrides: &[String]) -> Result<Self> {
        if overrides.is_empty() {
            return Self::from_toml_str(text, origin);
        }
        let mut table: toml::Table = toml::from_str(text).map_err(|e| toml_error(&e, text, origin))?;
        for o in overrides {
            apply_override(&mut table, o)?;
        }
        let cfg: WstConfig = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| Error::Config { location: format!("{origin} with --set {}", overrides.join(" --set ")), message: e.message().trim().to_string() })?;
        cfg.validated(origin)
    }

    /// The config as TOML text (no comments).
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self).map_err(|e| Error::Config { location: "<config>".into(), message: e.to_string() })
    }

    /// The JSON Schema of the whole tree.
    pub fn json_schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(WstConfig)).unwrap_or_default()
    }

    /// Checks values that types alone cannot (ranges, divisibility).
    pub fn validate(&self) -> Result<()> {
        let g = &self.grpo;
        let bad = |field: &str, message: String| Err(Error::Config { location: field.to_string(), message });
        if g.num_generations < 2 {
            return bad("grpo.num_generations", format!("GRPO needs at least 2 instructions per query, got {}", g.num_generations));
        }
        let batch = g.per_device_train_batch_size * g.gradient_accumulation_steps;
        if batch == 0 || !batch.is_multiple_of(g.num_generations) {
            return bad(
                "grpo.per_device_train_batch_size",
                format!("per_device_train_batch_size × gradient_accumulation_steps ({batch}) must be a positive multiple of num_generations ({})", g.num_generations),
            );
        }
        if g.num_iterations == 0 {
            return bad("grpo.num_iterations", "must be at least 1".into());
        }
        if !(g.learning_rate >= 0.0 && g.learning_rate.is_finite()) {
            return bad("grpo.learning_rate", format!("must be a finite value >= 0, got {}", g.learning_rate));
        }
        if !(0.0..1.0).contains(&g.epsilon) {
            return bad("grpo.epsilon", format!("must be in [0, 1), got {}", g.epsilon));
        }
        if let Some(h) = g.epsilon_high
            && !(h >= 0.0 && h.is_finite())
        {
            return bad("grpo.epsilon_high", format!("must be >= 0, got {h}"));
        }
        if g.beta < 0.0 {
            return bad("grpo.beta", format!("must be >= 0, got {}", g.beta));
        }
        if !(0.0..1.0).contains(&g.warmup_ratio) {
            return bad("grpo.warmup_ratio", format!("must be in [0, 1), got {}", g.warmup_ratio));
        }
        if !(g.top_p > 0.0 && g.top_p <= 1.0) {
            return bad("grpo.top_p", format!("must be in (0, 1], got {}", g.top_p));
        }
        if !(g.temperature > 0.0 && g.temperature.is_finite()) {
            return bad(
                "grpo.temperature",
                format!(
                    "must be > 0, got {}: training samples G instructions per query, and greedy decoding (0) writes the same one G times, so no group has any spread to learn from",
                    g.temperature
                ),
            );
        }
        if g.max_completion_length == 0 {
            return bad("grpo.max_completion_length", "must be at least 1".into());
        }
        self.wst.validate()?;
        if let Some(message) = crate::grpo::centring_conflict(self.wst.centring, g.scale_rewards) {
            return bad("wst.centring", message);
        }
        if self.rewards.is_empty() {
            return bad("rewards", "at least one [[rewards]] entry is needed".into());
        }
        for (i, r) in self.rewards.iter().enumerate() {
            if !r.config.is_object() {
                return bad(&format!("rewards[{i}].config"), "must be a table".into());
            }
        }
        if let Some(lora) = &self.teacher.lora
            && lora.r == 0
        {
            return bad("teacher.lora.r", "rank must be at least 1".into());
        }
        if !matches!(self.teacher.dtype.as_str(), "f32" | "bf16" | "f16" | "auto") {
            return bad("teacher.dtype", format!("expected f32, bf16, f16 or auto, got `{}`", self.teacher.dtype));
        }
        // Which backends exist is the application's registry's business (`Backends::check`);
        // the form `backend:model` is checked here.
        if let Err(e) = self.student.spec.parse::<crate::student::StudentSpec>() {
            return bad("student.spec", e.to_string());
        }
        if self.student.sampling.max_tokens == 0 {
            return bad("student.sampling.max_tokens", "must be at least 1".into());
        }
        Ok(())
    }
}

/// Applies one `a.b.c=value` override to a TOML table.
fn apply_override(table: &mut toml::Table, kv: &str) -> Result<()> {
    let bad = |m: String| Error::Config { location: format!("--set {kv}"), message: m };
    let (key, value) = kv.split_once('=').ok_or_else(|| bad("expected KEY=VALUE, e.g. grpo.learning_rate=1e-5".into()))?;
    let path: Vec<String> = key.split('.').map(|p| p.trim().trim_matches('"').to_string()).collect();
    if path.iter().any(String::is_empty) {
        return Err(bad(format!("`{key}` is not a field path (sections joined by dots)")));
    }
    // TOML syntax when it parses (numbers, booleans, arrays, quoted strings), else a string.
    let value = match toml::from_str::<toml::Table>(&format!("v = {value}")) {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| toml::Value::String(value.to_string())),
        Err(_) => toml::Value::String(value.trim().to_string()),
    };
    let (last, parents) = path.split_last().ok_or_else(|| bad("empty key".into()))?;
    let mut cur = table;
    for p in parents {
        let entry = cur.entry(p.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = entry.as_table_mut().ok_or_else(|| bad(format!("`{p}` is not a section")))?;
    }
    cur.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_overrides_any_field_and_names_unknown_ones() {
        let o = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let c = WstConfig::from_toml_str_with(
            "[grpo]\nnum_generations = 4\nper_device_train_batch_size = 8\n",
            "run.toml",
            &o(&["grpo.learning_rate=3e-5", "student.spec=openai:gpt-4o-mini", "teacher.lora.r=4", "wst.zero_std_groups=skip"]),
        )
        .unwrap();
        assert_eq!(c.grpo.learning_rate, 3e-5);
        assert_eq!(c.grpo.num_generations, 4);
        assert_eq!(c.student.spec, "openai:gpt-4o-mini");
        assert_eq!(c.teacher.lora.as_ref().unwrap().r, 4);
        assert_eq!(c.wst.zero_std_groups, ZeroStdGroups::Skip);
        let err = WstConfig::from_toml_str_with("", "run.toml", &o(&["grpo.learning_rat=1"])).unwrap_err().to_string();
        assert!(err.contains("learning_rat") && err.contains("--set grpo.learning_rat=1"), "{err}");
        let err = WstConfig::from_toml_str_with("", "run.toml", &o(&["grpo"])).unwrap_err().to_string();
        assert!(err.contains("KEY=VALUE"), "{err}");
        let err = WstConfig::from_toml_str_with("", "run.toml", &o(&["grpo.num_generations=3"])).unwrap_err().to_string();
        assert!(err.contains("grpo.per_device_train_batch_size"), "validation still runs: {err}");
    }

    #[test]
    fn defaults_are_valid_and_round_trip() {
        let c = WstConfig::default();
        c.validate().unwrap();
        let back = WstConfig::from_toml_str(&c.to_toml().unwrap(), "x.toml").unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn unknown_fields_are_rejected_with_the_line() {
        let err = WstConfig::from_toml_str("[grpo]\nnum_generations = 4\nlearning_rat = 1e-5\n", "run.toml").unwrap_err().to_string();
        assert!(err.contains("run.toml:3") && err.contains("learning_rat"), "{err}");
    }

    #[test]
    fn wrong_types_are_rejected_with_the_line() {
        let err = WstConfig::from_toml_str("\n[grpo]\nbeta = \"high\"\n", "run.toml").unwrap_err().to_string();
        assert!(err.contains("run.toml:3"), "{err}");
    }

    #[test]
    fn validation_names_the_field() {
        let err = WstConfig::from_toml_str("[grpo]\nnum_generations = 3\n", "run.toml").unwrap_err().to_string();
        assert!(err.contains("grpo.per_device_train_batch_size") && err.contains("(8)") && err.contains("(3)"), "{err}");
        let err = WstConfig::from_toml_str("[student]\nspec = \"gpt4\"\n", "run.toml").unwrap_err().to_string();
        assert!(err.contains("student.spec"), "{err}");
        // The paper's uncentred r with the default per-group scaling is refused before any
        // model loads; with batch scaling it is valid.
        let err = WstConfig::from_toml_str("[wst]\ncentring = \"none\"\n", "run.toml").unwrap_err().to_string();
        assert!(err.contains("wst.centring") && err.contains("scale_rewards"), "{err}");
        assert!(WstConfig::from_toml_str("[wst]\ncentring = \"none\"\n[grpo]\nscale_rewards = \"batch\"\n", "run.toml").is_ok());
    }

    #[test]
    fn trl_defaults() {
        let g = GrpoConfig::default();
        assert_eq!((g.num_generations, g.beta, g.epsilon, g.learning_rate, g.max_grad_norm), (8, 0.0, 0.2, 1e-6, 1.0));
        assert_eq!(g.loss_type, crate::grpo::LossType::Dapo);
    }
}
