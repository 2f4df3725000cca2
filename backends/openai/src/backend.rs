//! `openai:MODEL` specs and the `[student.openai]` section, registered with
//! [`wst_sdk::backend::Backends`].

use std::sync::Arc;

use wst_sdk::backend::StudentBackend;
use wst_sdk::{Result, Student};

use crate::{OpenAiConfig, OpenAiStudent};

/// The OpenAI-compatible HTTP backend: `openai:gpt-4o-mini` with `[student.openai]` settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenAiBackend;

impl StudentBackend for OpenAiBackend {
    type Settings = OpenAiConfig;
    fn prefix(&self) -> &'static str {
        "openai"
    }
    fn model_hint(&self) -> &'static str {
        "MODEL"
    }
    fn build(&self, model: &str, settings: OpenAiConfig) -> Result<Arc<dyn Student>> {
        Ok(Arc::new(OpenAiStudent::new(model, &settings)?))
    }
}
