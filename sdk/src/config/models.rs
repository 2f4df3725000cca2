//! Which models play Teacher and Student, and how to reach them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::student::StudentPrompt;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::types::SamplingParams;

/// The Teacher model and how it is trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TeacherConfig {
    /// A Hugging Face folder, a `.gguf` file, or a hub id (`org/name`, downloaded when online).
    pub model: String,
    /// Hub revision (branch, tag or commit) when `model` is a hub id.
    pub revision: String,
    /// `cpu`, `cuda` or `cuda:N` (the latter need the `cuda` feature).
    pub device: String,
    /// Weight and compute type: `f32`, `bf16`, or `auto` (bf16 on GPU, f32 on CPU).
    pub dtype: String,
    /// Train a LoRA adapter instead of every weight; unset means full fine-tuning.
    pub lora: Option<LoraConfig>,
    /// System message of the Teacher's chat.
    pub system_prompt: String,
    /// Jinja template of the Teacher's user message; variable: `query`.
    pub prompt_template: String,
    /// Text every instruction starts with: the Teacher's reply is primed with it and continues
    /// it (transformers' `continue_final_message`). It is part of the instruction the Student
    /// sees and of the Teacher's prompt when training, so its tokens get no gradient. Empty: none.
    pub instruction_prefix: String,
    /// Strings that end an instruction (cut from its text; generation stops there).
    pub stop: Vec<String>,
    /// When set, the Teacher's reply (after `instruction_prefix`) is exactly one of these
    /// strings: decoding may only continue a choice (vLLM's `guided_choice`), and GRPO learns
    /// which to pick per query. Log-probs stay those of the whole vocabulary, as TRL computes
    /// them with guided decoding. Example: `[" 50 tokens.", " 100 tokens.", " 200 tokens."]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    /// Recompute each layer's activations during backward instead of keeping them all (peak
    /// memory of one layer, one more forward pass); on by default, as in TRL's GRPOConfig.
    pub gradient_checkpointing: bool,
}

/// The default Teacher system message: ask for instructions, not an answer.
pub const DEFAULT_TEACHER_SYSTEM: &str =
    "You are a teacher. Read the problem and write short, specific instructions that will help a student solve it. Do not solve the problem yourself.";

impl Default for TeacherConfig {
    fn default() -> Self {
        TeacherConfig {
            model: "HuggingFaceTB/SmolLM2-135M-Instruct".into(),
            revision: "main".into(),
            device: "cpu".into(),
            dtype: "auto".into(),
            lora: None,
            system_prompt: DEFAULT_TEACHER_SYSTEM.into(),
            prompt_template: "Problem: {{ query }}\n\nWrite instructions for the student.".into(),
            instruction_prefix: String::new(),
            stop: Vec::new(),
            choices: Vec::new(),
            gradient_checkpointing: true,
        }
    }
}

/// LoRA settings, named as PEFT names them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LoraConfig {
    /// Adapter rank r.
    pub r: usize,
    /// Scaling numerator: the update is (alpha / r) · B·A.
    pub lora_alpha: f64,
    /// Linear layers that get an adapter (PEFT names: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj).
    pub target_modules: Vec<String>,
}

impl Default for LoraConfig {
    fn default() -> Self {
        LoraConfig { r: 16, lora_alpha: 32.0, target_modules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"].map(String::from).to_vec() }
    }
}

/// The Student backend and how to call it.
///
/// Unknown keys are not rejected here but kept as backend sections: [`crate::backend::Backends::check`]
/// rejects any that no registered backend owns, naming the field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct StudentConfig {
    /// `openai:MODEL`, `llamacpp:PATH.gguf` or `candle:PATH_OR_HUB_ID`.
    pub spec: String,
    /// How (query, instruction) becomes the Student's messages.
    pub prompt: StudentPrompt,
    /// Sampling settings of every Student request.
    pub sampling: SamplingParams,
    /// Folder of the on-disk response cache (unset disables caching).
    pub cache_dir: Option<PathBuf>,
    /// Each backend's settings section by its spec prefix (`[student.llamacpp]`,
    /// `[student.openai]`, ...), read by the backend the spec names (see
    /// [`crate::backend::Backends`]); the SDK does not know their fields.
    #[serde(flatten)]
    pub backends: BTreeMap<String, serde_json::Value>,
}

impl Default for StudentConfig {
    fn default() -> Self {
        StudentConfig {
            spec: "openai:gpt-4o-mini".into(),
            prompt: StudentPrompt::default(),
            sampling: SamplingParams::default(),
            cache_dir: Some(PathBuf::from("wst-cache")),
            backends: BTreeMap::new(),
        }
    }
}

impl StudentConfig {
    /// The `[student.<prefix>]` section read as `T` (its defaults when absent); an error names the section.
    pub fn backend_settings<T: DeserializeOwned + Default>(&self, prefix: &str) -> Result<T> {
        match self.backends.get(prefix) {
            None => Ok(T::default()),
            Some(v) => serde_json::from_value(v.clone()).map_err(|e| Error::Config { location: format!("student.{prefix}"), message: e.to_string() }),
        }
    }

    /// Replaces the `[student.<prefix>]` section with `settings`.
    pub fn set_backend_settings<T: Serialize>(&mut self, prefix: &str, settings: &T) -> Result<()> {
        let v = serde_json::to_value(settings).map_err(|e| Error::Config { location: format!("student.{prefix}"), message: e.to_string() })?;
        self.backends.insert(prefix.to_string(), v);
        Ok(())
    }
}
