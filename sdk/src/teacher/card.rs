//! How a Teacher was asked: its prompts, the prefix its replies start with, its stop strings,
//! how it was sampled in training and the Student prompt its instructions were written for,
//! saved beside its weights (`wst_teacher.json`). Whoever loads the folder then asks it the way
//! it was trained and evaluated; a setting given explicitly still wins, with a log line.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::{GrpoConfig, TeacherConfig};
use crate::error::{Error, Result};
use crate::student::StudentPrompt;

/// The card's file name in a Teacher folder (full model or PEFT adapter).
pub const CARD_FILE: &str = "wst_teacher.json";

/// How a Teacher folder's Teacher was prompted and sampled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeacherCard {
    /// System message of the Teacher's chat.
    pub system_prompt: String,
    /// Jinja template of its user message (variable `query`).
    pub prompt_template: String,
    /// Text every instruction starts with.
    #[serde(default)]
    pub instruction_prefix: String,
    /// Strings that end an instruction.
    #[serde(default)]
    pub stop: Vec<String>,
    /// The replies the Teacher may give, when it was trained to choose among them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    /// How instructions were sampled in training, when the card was written by a run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<CardSampling>,
    /// The Student prompt the instructions were written for, when written by a run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student_prompt: Option<StudentPrompt>,
}

/// The sampling settings a Teacher was trained with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardSampling {
    /// Sampling temperature.
    pub temperature: f64,
    /// Nucleus mass.
    pub top_p: f64,
    /// Top-k, if any.
    pub top_k: Option<usize>,
    /// Most tokens an instruction may have.
    pub max_completion_length: usize,
}

impl From<&GrpoConfig> for CardSampling {
    fn from(g: &GrpoConfig) -> Self {
        CardSampling { temperature: g.temperature, top_p: g.top_p, top_k: g.top_k, max_completion_length: g.max_completion_length }
    }
}

impl TeacherCard {
    /// The card of a Teacher configured by `teacher` (no sampling or Student prompt yet).
    pub fn of(teacher: &TeacherConfig) -> Self {
        TeacherCard {
            system_prompt: teacher.system_prompt.clone(),
            prompt_template: teacher.prompt_template.clone(),
            instruction_prefix: teacher.instruction_prefix.clone(),
            stop: teacher.stop.clone(),
            choices: teacher.choices.clone(),
            sampling: None,
            student_prompt: None,
        }
    }

    /// The card in `dir`, if it is a folder with one (a `.gguf` file or a hub id has none); a
    /// card that does not parse is an error naming it.
    pub fn read(dir: &Path) -> Result<Option<Self>> {
        if !dir.is_dir() {
            return Ok(None);
        }
        let path = dir.join(CARD_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        serde_json::from_str(&text).map(Some).map_err(|e| Error::Model { path, message: format!("not a Teacher card: {e}") })
    }

    /// Writes the card into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let path = dir.join(CARD_FILE);
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::serialize(CARD_FILE, e))?;
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))
    }

    /// Takes the card's prompting into `teacher` wherever `teacher` holds the default; a
    /// setting given explicitly (not the default, not the card's) is kept, and the override
    /// is logged.
    pub fn apply_to(&self, teacher: &mut TeacherConfig, origin: &Path) {
        let defaults = TeacherConfig::default();
        fn take<T: PartialEq + Clone + std::fmt::Debug>(field: &str, mine: &mut T, default: &T, card: &T, origin: &Path) {
            if mine == default {
                *mine = card.clone();
            } else if mine != card {
                tracing::info!(field, explicit = ?mine, card = ?card, folder = %origin.display(), "an explicit Teacher setting overrides the one the Teacher was trained with");
            }
        }
        take("teacher.system_prompt", &mut teacher.system_prompt, &defaults.system_prompt, &self.system_prompt, origin);
        take("teacher.prompt_template", &mut teacher.prompt_template, &defaults.prompt_template, &self.prompt_template, origin);
        take("teacher.instruction_prefix", &mut teacher.instruction_prefix, &defaults.instruction_prefix, &self.instruction_prefix, origin);
        take("teacher.stop", &mut teacher.stop, &defaults.stop, &self.stop, origin);
        take("teacher.choices", &mut teacher.choices, &defaults.choices, &self.choices, origin);
    }
}
