//! Which models play Teacher and Student, and how to reach them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::student::{SamplingParams, StudentPrompt};

/// The Teacher model and how it is trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TeacherConfig {
    /// A Hugging Face folder, a `.gguf` file, or a hub id (`org/name`, downloaded when online).
    pub model: String,
    /// Hub revision (branch, tag or commit) when `model` is a hub id.
    pub revision: String,
    /// `cpu`, `cuda` or `cuda:N` (the latter need the `cuda` feature).
    pub device: String,
    /// Weight and compute type: `f32`, `bf16`, or `auto` (bf16 on GPU, f32 on CPU).
    pub dtype: String,
    /// Train a LoRA adapter instead of every weight; unset means full fine-tuning.
    pub lora: Option<LoraConfig>,
    /// System message of the Teacher's chat.
    pub system_prompt: String,
    /// Jinja template of the Teacher's user message; variable: `query`.
    pub prompt_template: String,
    /// Strings that end an instruction (cut from its text; generation stops there).
    pub stop: Vec<String>,
    /// Recompute each layer's activations during backward instead of keeping them all (peak
    /// memory of one layer, one more forward pass); on by default, as in TRL's GRPOConfig.
    pub gradient_checkpointing: bool,
}

/// The default Teacher system message: ask for instructions, not an answer.
pub const DEFAULT_TEACHER_SYSTEM: &str = "You are a teacher. Read the problem and write short, specific instructions that will help a student solve it. Do not solve the problem yourself.";

impl Default for TeacherConfig {
    fn default() -> Self {
        TeacherConfig {
            model: "HuggingFaceTB/SmolLM2-135M-Instruct".into(),
            revision: "main".into(),
            device: "cpu".into(),
            dtype: "auto".into(),
            lora: None,
            system_prompt: DEFAULT_TEACHER_SYSTEM.into(),
            prompt_template: "Problem: {{ query }}\n\nWrite instructions for the student.".into(),
            stop: Vec::new(),
            gradient_checkpointing: true,
        }
    }
}

/// LoRA settings, named as PEFT names them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LoraConfig {
    /// Adapter rank r.
    pub r: usize,
    /// Scaling numerator: the update is (alpha / r) · B·A.
    pub lora_alpha: f64,
    /// Linear layers that get an adapter (PEFT names: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj).
    pub target_modules: Vec<String>,
}

impl Default for LoraConfig {
    fn default() -> Self {
        LoraConfig {
            r: 16,
            lora_alpha: 32.0,
            target_modules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
                .map(String::from)
                .to_vec(),
        }
    }
}

/// The Student backend and how to call it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct StudentConfig {
    /// `openai:MODEL`, `llamacpp:PATH.gguf` or `candle:PATH_OR_HUB_ID`.
    pub spec: String,
    /// How (query, instruction) becomes the Student's messages.
    pub prompt: StudentPrompt,
    /// Sampling settings of every Student request.
    pub sampling: SamplingParams,
    /// Folder of the on-disk response cache (unset disables caching).
    pub cache_dir: Option<PathBuf>,
    /// OpenAI-compatible HTTP settings (used by `openai:` specs).
    pub openai: OpenAiConfig,
    /// llama.cpp settings (used by `llamacpp:` specs).
    pub llamacpp: LlamaCppConfig,
    /// candle settings (used by `candle:` specs).
    pub candle: CandleStudentConfig,
}

impl Default for StudentConfig {
    fn default() -> Self {
        StudentConfig {
            spec: "openai:gpt-4o-mini".into(),
            prompt: StudentPrompt::default(),
            sampling: SamplingParams::default(),
            cache_dir: Some(PathBuf::from("wst-cache")),
            openai: OpenAiConfig::default(),
            llamacpp: LlamaCppConfig::default(),
            candle: CandleStudentConfig::default(),
        }
    }
}

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

/// A model's price in USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Prompt tokens.
    pub input: f64,
    /// Completion tokens.
    pub output: f64,
}

/// Settings for the in-process llama.cpp backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LlamaCppConfig {
    /// CPU threads for decoding; 1 avoids OpenMP spin collapse on busy small machines.
    pub n_threads: usize,
    /// KV cells shared by every answer in flight (a request's prompt is stored once for its
    /// answers); answers wait for room when prompts plus `max_tokens` per answer do not fit.
    pub n_ctx: u32,
    /// Layers offloaded to a GPU (needs a CUDA build of llama.cpp).
    pub n_gpu_layers: u32,
    /// Min-p sampling cut-off (0 disables it).
    pub min_p: f64,
    /// Repetition penalty (1 disables it).
    pub repeat_penalty: f64,
    /// Answers decoded together in one batch, over all requests in flight (continuous
    /// batching, as llama.cpp's server slots).
    pub max_sequences: usize,
    /// Most tokens fed to llama.cpp in one decode call (one per running answer plus chunks of
    /// newly admitted prompts).
    pub n_batch: u32,
    /// llama.cpp's flash attention. Off by default: its f16 accumulation over the shared KV
    /// cache makes an answer depend on which other answers were decoded beside it, so the same
    /// seed could give another answer under load. On is faster for long contexts.
    pub flash_attention: bool,
}

impl Default for LlamaCppConfig {
    fn default() -> Self {
        LlamaCppConfig { n_threads: 1, n_ctx: 8192, n_gpu_layers: 0, min_p: 0.0, repeat_penalty: 1.0, max_sequences: 16, n_batch: 2048, flash_attention: false }
    }
}

/// Settings for the local candle Student.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CandleStudentConfig {
    /// `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// `f32`, `bf16` or `auto`.
    pub dtype: String,
    /// Expand GGUF weights to f32 on load, so answers are those of the f32 model (as the Teacher
    /// computes). False keeps them quantized with llama.cpp-style 8-bit activations: less memory,
    /// and greedy answers that follow llama-cpp-python's rather than the f32 model's.
    pub dequantize_gguf: bool,
}

impl Default for CandleStudentConfig {
    fn default() -> Self {
        CandleStudentConfig { device: "cpu".into(), dtype: "auto".into(), dequantize_gguf: true }
    }
}
