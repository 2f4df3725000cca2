//! The Chat Completions wire format: what we send and the parts of the answer we read.

use serde::{Deserialize, Serialize};
use wst_sdk::ChatMessage;

/// A `POST /chat/completions` body.
#[derive(Debug, Serialize)]
pub struct ChatRequest<'a> {
    pub model: &'a str,
    pub messages: &'a [ChatMessage],
    pub n: usize,
    pub temperature: f64,
    pub top_p: f64,
    /// OpenAI's current name (o-series and gpt-5 models reject `max_tokens`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<usize>,
    /// The older name, which most OpenAI-compatible servers read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub stop: &'a [String],
    /// Not part of OpenAI's API (it would reject it); sent only when set, for vLLM/SGLang/llama.cpp.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<usize>,
}

/// A successful answer.
#[derive(Debug, Deserialize)]
pub struct ChatResponse {
    pub choices: Vec<Choice>,
    #[serde(default)]
    pub usage: Option<Usage>,
    /// The model that answered, as the server names it.
    #[serde(default)]
    pub model: Option<String>,
    /// OpenAI's backend configuration fingerprint.
    #[serde(default)]
    pub system_fingerprint: Option<String>,
}

/// One of the `n` answers.
#[derive(Debug, Deserialize)]
pub struct Choice {
    #[serde(default)]
    pub index: Option<usize>,
    pub message: ResponseMessage,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// The assistant message of a choice; content is null for refusals and tool calls.
#[derive(Debug, Deserialize)]
pub struct ResponseMessage {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub refusal: Option<String>,
}

/// Token counts of a whole request.
#[derive(Debug, Default, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
}

/// `{"error": {...}}`, as OpenAI and most compatible servers send it.
#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// The server's explanation of an error.
#[derive(Debug, Deserialize)]
pub struct ErrorDetail {
    #[serde(default)]
    pub message: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub code: Option<serde_json::Value>,
}

impl ErrorDetail {
    /// The error's `code` as text (servers send a string or a number), falling back to its `type`.
    pub fn code(&self) -> Option<String> {
        match &self.code {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => self.kind.clone(),
        }
    }

    /// Whether the error says the account is out of credit (retrying cannot help).
    pub fn is_insufficient_quota(&self) -> bool {
        let code = self.code.as_ref().and_then(|c| c.as_str()).unwrap_or("");
        code == "insufficient_quota" || self.kind.as_deref() == Some("insufficient_quota")
    }
}
