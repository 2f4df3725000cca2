//! The judge's configuration: the endpoint, the criteria and their prompts, how to read a
//! score, and how hard to push the server.

use std::path::PathBuf;

/// How a score is read from the judge's reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScoreFrom {
    /// The first match of `score_regex` (its first group when it has one).
    #[default]
    Regex,
    /// The field `json_field` of a JSON object in the reply.
    Json,
    /// G-Eval: the probability-weighted mean of the whole numbers in `range` among the top
    /// log-probs where the reply gives its score. Falls back to `score_regex` when the server
    /// returns no log-probs.
    Logprobs,
}

/// One named criterion: one value of the reward.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Criterion {
    /// The value's name (`helpful`, `harmless`).
    pub name: String,
    /// Its Jinja prompt (with `query`, `instruction`, `answer`, `gold`, `metadata` and
    /// `criterion`); default: the judge's `prompt`.
    #[serde(default)]
    pub prompt: Option<String>,
}

/// Configuration of the `judge` reward.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JudgeConfig {
    /// The OpenAI-compatible API's base URL, up to `/v1`.
    pub base_url: String,
    /// The judge model's name on that server.
    pub model: String,
    /// Environment variable with the API key (none is sent when unset).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// The Jinja prompt for criteria without their own.
    #[serde(default)]
    pub prompt: Option<String>,
    /// An optional system message.
    #[serde(default)]
    pub system: Option<String>,
    /// The criteria; each becomes a value. Default: one criterion, `score`, with `prompt`.
    #[serde(default)]
    pub criteria: Vec<Criterion>,
    /// How to read the score.
    #[serde(default)]
    pub score_from: ScoreFrom,
    /// The regex for `score_from = "regex"` (and the log-probs fallback).
    #[serde(default = "default_regex")]
    pub score_regex: String,
    /// The JSON field for `score_from = "json"`, dotted for nesting.
    #[serde(default = "default_field")]
    pub json_field: String,
    /// The scores' scale `[low, high]`: scores outside it count as no score, and scores are
    /// mapped onto [0, 1] when `normalise` is set. For log-probs, the whole numbers read.
    #[serde(default = "default_range")]
    pub range: [f64; 2],
    /// Map scores from `range` onto [0, 1].
    #[serde(default)]
    pub normalise: bool,
    /// The judge's sampling temperature.
    #[serde(default)]
    pub temperature: f64,
    /// Most tokens the judge may write.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    /// Requests in flight at once.
    #[serde(default = "default_concurrency")]
    pub max_concurrency: usize,
    /// At most this many requests a minute (none: no limit).
    #[serde(default)]
    pub requests_per_minute: Option<f64>,
    /// Retries after a 429, a 5xx or a dropped connection, honouring `Retry-After`.
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    /// Seconds a request may take.
    #[serde(default = "default_timeout")]
    pub timeout_s: f64,
    /// Folder of the response cache (`judge.jsonl`), keyed by the judge and the request, so a
    /// resumed run pays nothing twice; `null` turns it off.
    #[serde(default = "default_cache")]
    pub cache_dir: Option<PathBuf>,
}

fn default_regex() -> String {
    r"-?\d+(?:\.\d+)?".into()
}
fn default_field() -> String {
    "score".into()
}
fn default_range() -> [f64; 2] {
    [1.0, 10.0]
}
fn default_max_tokens() -> u32 {
    256
}
fn default_concurrency() -> usize {
    8
}
fn default_retries() -> u32 {
    5
}
fn default_timeout() -> f64 {
    120.0
}
fn default_cache() -> Option<PathBuf> {
    Some(PathBuf::from("wst-cache/judge"))
}
