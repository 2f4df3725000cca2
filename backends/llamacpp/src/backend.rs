//! `llamacpp:PATH.gguf` specs and the `[student.llamacpp]` section, registered with
//! [`wst_sdk::backend::Backends`].

use std::sync::Arc;

use wst_sdk::backend::StudentBackend;
use wst_sdk::{Result, Student};

use crate::{LlamaCppConfig, LlamaCppStudent};

/// The in-process llama.cpp backend: `llamacpp:model.gguf` (or a catalog name) with
/// `[student.llamacpp]` settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct LlamaCppBackend;

impl StudentBackend for LlamaCppBackend {
    type Settings = LlamaCppConfig;
    fn prefix(&self) -> &'static str {
        "llamacpp"
    }
    fn model_hint(&self) -> &'static str {
        "PATH.gguf"
    }
    fn build(&self, model: &str, settings: LlamaCppConfig) -> Result<Arc<dyn Student>> {
        Ok(Arc::new(LlamaCppStudent::load(model, &settings)?))
    }
}
