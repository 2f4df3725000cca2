//! Student specs: the one-string names of a backend and its model used in config and on the
//! command line (`openai:gpt-4o-mini`, `llamacpp:model.gguf`, `candle:org/name`). Which
//! backends exist is up to the application's [`crate::backend::Backends`] registry.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Which backend serves a Student (its spec prefix), and which model it loads or calls.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StudentSpec {
    /// The backend's prefix: `openai`, `llamacpp`, `candle` or any registered one.
    pub backend: String,
    /// Everything after the first `:` (a model name, a path, a hub id).
    pub model: String,
}

impl FromStr for StudentSpec {
    type Err = Error;

    fn from_str(spec: &str) -> Result<Self> {
        let bad =
            |why: &str| Error::invalid("student spec", format!("`{spec}`: {why}; expected BACKEND:MODEL, e.g. openai:gpt-4o-mini, llamacpp:PATH.gguf or candle:PATH_OR_HUB_ID"));
        let (backend, model) = spec.split_once(':').ok_or_else(|| bad("no backend prefix"))?;
        if backend.is_empty() || !backend.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(bad("the backend prefix must be a word (letters, digits, `_`, `-`)"));
        }
        if model.trim().is_empty() {
            return Err(bad("the model is empty"));
        }
        Ok(StudentSpec { backend: backend.to_string(), model: model.to_string() })
    }
}

impl fmt::Display for StudentSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.backend, self.model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_round_trip_and_bad_ones_say_why() {
        for s in ["openai:gpt-4o-mini", "llamacpp:/m/a:b.gguf", "candle:HuggingFaceTB/SmolLM2-135M-Instruct", "vllm:x"] {
            assert_eq!(s.parse::<StudentSpec>().unwrap().to_string(), s);
        }
        let s: StudentSpec = "llamacpp:/m/a:b.gguf".parse().unwrap();
        assert_eq!((s.backend.as_str(), s.model.as_str()), ("llamacpp", "/m/a:b.gguf"));
        assert!("gpt4".parse::<StudentSpec>().unwrap_err().to_string().contains("no backend prefix"));
        assert!("/abs/path:x".parse::<StudentSpec>().unwrap_err().to_string().contains("must be a word"));
        assert!("openai:".parse::<StudentSpec>().unwrap_err().to_string().contains("empty"));
    }
}
