//! The `[student.openai]` settings section: how to reach OpenAI-compatible servers.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use wst_sdk::types::Price;

/// Settings for OpenAI-compatible servers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OpenAiConfig {
    /// Base URLs (…/v1); several are load-balanced as one Student.
    pub base_urls: Vec<String>,
    /// Environment variable holding the API key (never logged); unset sends no key.
    pub api_key_env: Option<String>,
    /// Requests in flight at once, over all base URLs.
    pub max_concurrency: usize,
    /// Requests-per-minute limit (0 = unlimited).
    pub requests_per_minute: u32,
    /// Tokens-per-minute limit (0 = unlimited).
    pub tokens_per_minute: u32,
    /// Retries on 429, 5xx and timeouts, with exponential backoff and jitter.
    pub max_retries: u32,
    /// Per-request timeout in seconds (a server that hangs is retried after this).
    pub timeout_secs: f64,
    /// First retry delay in seconds; doubled per retry, with jitter, unless the server sends `Retry-After`.
    pub backoff_base_secs: f64,
    /// Longest delay between two retries, in seconds.
    pub backoff_max_secs: f64,
    /// USD per million tokens, per model: `{ "gpt-4o-mini" = { input = 0.15, output = 0.6 } }`.
    pub prices: BTreeMap<String, Price>,
    /// Largest response body read, in bytes; a larger one fails the request (a server gone
    /// wrong must not exhaust memory).
    pub max_response_bytes: u64,
    /// Which field carries `max_tokens`: `auto` (`max_completion_tokens` for api.openai.com and
    /// Azure OpenAI, whose o-series and gpt-5 models reject `max_tokens`; `max_tokens` for other
    /// servers), `max_completion_tokens`, `max_tokens` or `both`.
    pub token_limit_field: TokenLimitField,
    /// Send known-in-advance work (the Student's baselines before training, each evaluation
    /// method's answers) through the OpenAI Batch API: a JSONL file uploaded to `/files`, a
    /// `/batches` job polled until it ends, its results put in the response cache. Half the
    /// price; answers can take up to `batch_completion_window`. Training steps still call
    /// Chat Completions directly (each step needs its answers now).
    pub batch: bool,
    /// Seconds between polls of a running batch.
    pub batch_poll_secs: f64,
    /// The batch's completion window (OpenAI accepts `24h`).
    pub batch_completion_window: String,
}

/// The request field that limits an answer's length (see [`OpenAiConfig::token_limit_field`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenLimitField {
    /// `max_completion_tokens` for OpenAI and Azure OpenAI, `max_tokens` elsewhere.
    #[default]
    Auto,
    /// OpenAI's current name.
    MaxCompletionTokens,
    /// The older name most compatible servers read.
    MaxTokens,
    /// Both fields.
    Both,
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        let mut prices = BTreeMap::new();
        prices.insert("gpt-4o-mini".to_string(), Price { input: 0.15, output: 0.60 });
        OpenAiConfig {
            base_urls: vec!["https://api.openai.com/v1".into()],
            api_key_env: Some("OPENAI_API_KEY".into()),
            max_concurrency: 16,
            requests_per_minute: 0,
            tokens_per_minute: 0,
            max_retries: 6,
            timeout_secs: 120.0,
            backoff_base_secs: 0.5,
            backoff_max_secs: 60.0,
            prices,
            max_response_bytes: 32 << 20,
            token_limit_field: TokenLimitField::Auto,
            batch: false,
            batch_poll_secs: 30.0,
            batch_completion_window: "24h".into(),
        }
    }
}
