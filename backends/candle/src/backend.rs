//! `candle:PATH_OR_HUB_ID` specs and the `[student.candle]` section, registered with
//! [`wst_sdk::backend::Backends`].

use std::sync::Arc;

use wst_sdk::backend::StudentBackend;
use wst_sdk::{Result, Student};

use crate::{CandleStudent, CandleStudentConfig};

/// The local candle backend: `candle:model.gguf`, a Hugging Face folder or a hub id, with
/// `[student.candle]` settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct CandleBackend;

impl StudentBackend for CandleBackend {
    type Settings = CandleStudentConfig;
    fn prefix(&self) -> &'static str {
        "candle"
    }
    fn model_hint(&self) -> &'static str {
        "PATH_OR_HUB_ID"
    }
    fn build(&self, model: &str, settings: CandleStudentConfig) -> Result<Arc<dyn Student>> {
        Ok(Arc::new(CandleStudent::load(model, &settings)?))
    }
}
