//! Student specs: the one-string names of a backend and its model used in config and on the
//! command line (`openai:gpt-4o-mini`, `llamacpp:model.gguf`, `candle:org/name`).

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Which backend serves a Student, and which model it loads or calls.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StudentSpec {
    /// An OpenAI-compatible HTTP server; the model name it is asked for.
    OpenAi(String),
    /// A GGUF file run in-process by llama.cpp.
    LlamaCpp(String),
    /// A GGUF file, Hugging Face folder or hub id run by candle.
    Candle(String),
}

impl FromStr for StudentSpec {
    type Err = Error;

    fn from_str(spec: &str) -> Result<Self> {
        let bad = |why: &str| Error::invalid("student spec", format!("`{spec}`: {why}; expected openai:MODEL, llamacpp:PATH.gguf or candle:PATH_OR_HUB_ID"));
        let (kind, model) = spec.split_once(':').ok_or_else(|| bad("no backend prefix"))?;
        if model.trim().is_empty() {
            return Err(bad("the model is empty"));
        }
        let model = model.to_string();
        match kind {
            "openai" => Ok(StudentSpec::OpenAi(model)),
            "llamacpp" => Ok(StudentSpec::LlamaCpp(model)),
            "candle" => Ok(StudentSpec::Candle(model)),
            other => Err(bad(&format!("unknown backend `{other}`"))),
        }
    }
}

impl fmt::Display for StudentSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StudentSpec::OpenAi(m) => write!(f, "openai:{m}"),
            StudentSpec::LlamaCpp(m) => write!(f, "llamacpp:{m}"),
            StudentSpec::Candle(m) => write!(f, "candle:{m}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_round_trip_and_bad_ones_say_why() {
        for s in ["openai:gpt-4o-mini", "llamacpp:/m/a:b.gguf", "candle:HuggingFaceTB/SmolLM2-135M-Instruct"] {
            assert_eq!(s.parse::<StudentSpec>().unwrap().to_string(), s);
        }
        assert_eq!("llamacpp:/m/a:b.gguf".parse::<StudentSpec>().unwrap(), StudentSpec::LlamaCpp("/m/a:b.gguf".into()));
        assert!("gpt4".parse::<StudentSpec>().unwrap_err().to_string().contains("no backend prefix"));
        assert!("vllm:x".parse::<StudentSpec>().unwrap_err().to_string().contains("unknown backend `vllm`"));
        assert!("openai:".parse::<StudentSpec>().unwrap_err().to_string().contains("empty"));
    }
}
