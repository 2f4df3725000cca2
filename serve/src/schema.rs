//! OpenAI's Chat Completions schema, the part `wst serve` speaks: the request as clients send
//! it (parsed leniently where OpenAI is lenient, checked where it checks), the response, the
//! streamed chunks and the error body.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use wst_sdk::ChatMessage;

use crate::error::ApiError;

/// The most answers one request may ask for.
pub const MAX_N: usize = 64;
/// The most stop strings one request may give (OpenAI's limit).
pub const MAX_STOP: usize = 4;

/// `POST /v1/chat/completions`, as far as wst reads it; other fields are accepted and ignored,
/// as OpenAI-compatible servers do.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatRequest {
    /// Which served Teacher+Student pair answers.
    pub model: String,
    /// The conversation.
    pub messages: Vec<RequestMessage>,
    /// Answers wanted.
    pub n: Option<usize>,
    /// Sampling temperature, 0 to 2.
    pub temperature: Option<f64>,
    /// Nucleus mass, above 0 and at most 1.
    pub top_p: Option<f64>,
    /// Most tokens per answer (older name).
    pub max_tokens: Option<usize>,
    /// Most tokens per answer (newer name; wins over `max_tokens`).
    pub max_completion_tokens: Option<usize>,
    /// Seed for reproducible answers: any 64-bit integer, signed as OpenAI documents it or
    /// unsigned as `wst eval`'s seeds are.
    pub seed: Option<serde_json::Number>,
    /// One stop string or a list of up to four.
    pub stop: Option<Stop>,
    /// Stream the answers as server-sent events.
    #[serde(default)]
    pub stream: bool,
    /// Streaming options.
    pub stream_options: Option<StreamOptions>,
    /// wst's extension: how the instruction is chosen.
    #[serde(default)]
    pub wst: WstOptions,
    /// Parameters wst cannot honour are refused rather than ignored (a client that asks for
    /// log-probs or tools must not get a reply without them); their neutral values pass.
    #[serde(default)]
    pub logprobs: Option<bool>,
    /// See `logprobs`.
    #[serde(default)]
    pub top_logprobs: Option<u32>,
    /// Tool calling is not supported.
    #[serde(default)]
    pub tools: Option<Value>,
    /// See `tools`.
    #[serde(default)]
    pub tool_choice: Option<Value>,
    /// The older name of `tools`.
    #[serde(default)]
    pub functions: Option<Value>,
    /// Only `{"type": "text"}`.
    #[serde(default)]
    pub response_format: Option<Value>,
    /// Not supported (non-empty).
    #[serde(default)]
    pub logit_bias: Option<Value>,
    /// Not supported (non-zero).
    #[serde(default)]
    pub presence_penalty: Option<f64>,
    /// Not supported (non-zero).
    #[serde(default)]
    pub frequency_penalty: Option<f64>,
}

/// A message of the request; `content` may be text or a list of text parts.
#[derive(Debug, Clone, Deserialize)]
pub struct RequestMessage {
    /// `system`, `developer`, `user` or `assistant`.
    pub role: String,
    /// The text, or parts of it.
    #[serde(default)]
    pub content: Option<Content>,
}

/// A message's content.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Parts; only `{"type": "text", "text": ...}` parts are supported.
    Parts(Vec<Value>),
}

/// `stop`: a string or a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    /// One stop string.
    One(String),
    /// Several.
    Many(Vec<String>),
}

/// `stream_options`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StreamOptions {
    /// Send a last chunk with the usage.
    #[serde(default)]
    pub include_usage: bool,
}

/// The `wst` extension object of a request.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WstOptions {
    /// `false` sends the conversation to the Student untouched (the A/B control).
    pub instruct: Option<bool>,
    /// A fixed instruction instead of the Teacher's.
    pub instruction: Option<String>,
    /// Keys the Teacher's random stream: the same key and weights give the same instruction
    /// (`wst eval` keys it by the query's id).
    pub query_id: Option<String>,
}

impl ChatRequest {
    /// Checks the values and returns the conversation, or a 400 naming the parameter.
    pub fn conversation(&self) -> Result<Vec<ChatMessage>, ApiError> {
        if self.messages.is_empty() {
            return Err(ApiError::invalid("messages", "`messages` must hold at least one message"));
        }
        let mut out = Vec::with_capacity(self.messages.len());
        for (i, m) in self.messages.iter().enumerate() {
            let role = match m.role.as_str() {
                "system" | "developer" => "system",
                "user" => "user",
                "assistant" => "assistant",
                other => return Err(ApiError::invalid(&format!("messages[{i}].role"), &format!("role `{other}` is not supported (system, developer, user, assistant)"))),
            };
            let text = match &m.content {
                None => String::new(),
                Some(Content::Text(t)) => t.clone(),
                Some(Content::Parts(parts)) => {
                    let mut text = String::new();
                    for (j, p) in parts.iter().enumerate() {
                        match (p.get("type").and_then(Value::as_str), p.get("text").and_then(Value::as_str)) {
                            (Some("text"), Some(t)) => text.push_str(t),
                            _ => return Err(ApiError::invalid(&format!("messages[{i}].content[{j}]"), "only text parts ({\"type\": \"text\", \"text\": ...}) are supported")),
                        }
                    }
                    text
                }
            };
            out.push(ChatMessage::new(role, text));
        }
        if !out.iter().any(|m| m.role == "user") {
            return Err(ApiError::invalid("messages", "the conversation has no user message"));
        }
        Ok(out)
    }

    /// The checked `n` (default 1).
    pub fn n(&self) -> Result<usize, ApiError> {
        match self.n.unwrap_or(1) {
            n @ 1..=MAX_N => Ok(n),
            n => Err(ApiError::invalid("n", &format!("n must be between 1 and {MAX_N}, got {n}"))),
        }
    }

    /// The checked stop strings.
    pub fn stop(&self) -> Result<Option<Vec<String>>, ApiError> {
        let stop = match &self.stop {
            None => return Ok(None),
            Some(Stop::One(s)) => vec![s.clone()],
            Some(Stop::Many(v)) => v.clone(),
        };
        if stop.len() > MAX_STOP {
            return Err(ApiError::invalid("stop", &format!("at most {MAX_STOP} stop strings, got {}", stop.len())));
        }
        if stop.iter().any(String::is_empty) {
            return Err(ApiError::invalid("stop", "a stop string may not be empty"));
        }
        Ok(Some(stop))
    }

    /// The checked seed (negative seeds are taken bit for bit).
    pub fn seed(&self) -> Result<Option<u64>, ApiError> {
        match &self.seed {
            None => Ok(None),
            Some(n) => n.as_u64().or_else(|| n.as_i64().map(|i| i as u64)).map(Some).ok_or_else(|| ApiError::invalid("seed", &format!("seed must be an integer, got {n}"))),
        }
    }

    /// Refuses the parameters wst cannot honour (400 naming the parameter), accepting their
    /// neutral values, which clients send by default.
    pub fn check_supported(&self) -> Result<(), ApiError> {
        let refuse = |param: &str, what: &str| Err(ApiError::invalid(param, &format!("{what} is not supported by wst serve")));
        if self.logprobs == Some(true) || self.top_logprobs.is_some_and(|n| n > 0) {
            return refuse(if self.logprobs == Some(true) { "logprobs" } else { "top_logprobs" }, "returning log-probs");
        }
        for (param, v) in [("tools", &self.tools), ("tool_choice", &self.tool_choice), ("functions", &self.functions)] {
            if v.as_ref().is_some_and(|v| !v.is_null() && v != &Value::Array(vec![]) && v.as_str() != Some("none")) {
                return refuse(param, "tool calling");
            }
        }
        if let Some(f) = &self.response_format
            && !f.is_null()
            && f.get("type").and_then(Value::as_str) != Some("text")
        {
            return refuse("response_format", "a response format other than text");
        }
        if self.logit_bias.as_ref().is_some_and(|b| b.as_object().is_some_and(|o| !o.is_empty())) {
            return refuse("logit_bias", "logit_bias");
        }
        for (param, v) in [("presence_penalty", self.presence_penalty), ("frequency_penalty", self.frequency_penalty)] {
            if v.is_some_and(|v| v != 0.0) {
                return refuse(param, param);
            }
        }
        Ok(())
    }

    /// Checks temperature, top_p and the token limit.
    pub fn check_sampling(&self) -> Result<(), ApiError> {
        if let Some(t) = self.temperature
            && !(0.0..=2.0).contains(&t)
        {
            return Err(ApiError::invalid("temperature", &format!("temperature must be between 0 and 2, got {t}")));
        }
        if let Some(p) = self.top_p
            && !(p > 0.0 && p <= 1.0)
        {
            return Err(ApiError::invalid("top_p", &format!("top_p must be above 0 and at most 1, got {p}")));
        }
        for (name, v) in [("max_tokens", self.max_tokens), ("max_completion_tokens", self.max_completion_tokens)] {
            if v == Some(0) {
                return Err(ApiError::invalid(name, &format!("{name} must be at least 1")));
            }
        }
        Ok(())
    }
}

/// A choice of a non-streamed response.
#[derive(Debug, Clone, Serialize)]
pub struct Choice {
    /// Its index.
    pub index: usize,
    /// The assistant's message.
    pub message: AssistantMessage,
    /// `stop` or `length`.
    pub finish_reason: String,
    /// Log-probs are not returned.
    pub logprobs: Option<Value>,
}

/// The assistant's message of a choice.
#[derive(Debug, Clone, Serialize)]
pub struct AssistantMessage {
    /// Always `assistant`.
    pub role: &'static str,
    /// The answer.
    pub content: String,
}

/// `usage`: the Student's tokens as OpenAI counts them, the Teacher's in the `wst` extension.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// The Student's prompt tokens.
    pub prompt_tokens: u64,
    /// The Student's completion tokens, all choices together.
    pub completion_tokens: u64,
    /// Their sum.
    pub total_tokens: u64,
    /// Both sides itemised.
    pub wst: UsageItems,
}

/// The Teacher's and the Student's tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageItems {
    /// Tokens of the Teacher's prompt.
    pub teacher_prompt_tokens: u64,
    /// Tokens of the instruction it wrote.
    pub teacher_completion_tokens: u64,
    /// The Student's prompt tokens (as `prompt_tokens`).
    pub student_prompt_tokens: u64,
    /// The Student's completion tokens (as `completion_tokens`).
    pub student_completion_tokens: u64,
}

/// A non-streamed response.
#[derive(Debug, Clone, Serialize)]
pub struct ChatResponse {
    /// `chatcmpl-…`.
    pub id: String,
    /// `chat.completion`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// The served model's name.
    pub model: String,
    /// One per answer.
    pub choices: Vec<Choice>,
    /// Tokens spent.
    pub usage: Usage,
    /// The instruction the Student was given (absent when echoing it is switched off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wst: Option<WstReply>,
}

/// The `wst` extension object of a response or a stream's first chunk.
#[derive(Debug, Clone, Serialize)]
pub struct WstReply {
    /// The instruction (null when none was given).
    pub instruction: Option<String>,
}

/// `GET /v1/models`' entries.
#[derive(Debug, Clone, Serialize)]
pub struct ModelCard {
    /// The name requests use.
    pub id: String,
    /// `model`.
    pub object: &'static str,
    /// Unix seconds of when the server started.
    pub created: u64,
    /// `wst`.
    pub owned_by: &'static str,
}
