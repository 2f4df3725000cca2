//! # wst-llamacpp: a Student run in-process by llama.cpp
//!
//! Loads a GGUF file once and answers with the model's own chat template. Requests are decoded
//! with continuous batching ([`engine`]): one thread owns one context, and every answer of
//! every request in flight advances by one token per step in a single batch, up to
//! `max_sequences` at once. Each answer has its own KV stream (a request's prompt is read
//! once and copied to its other answers) and its own seeded sampler chain (repetition penalty,
//! top-k, top-p, min-p, temperature): on f32 weights answer i is the same decoded alone or
//! beside other requests; on quantized weights the kernels' rounding depends on the batch, so
//! it can drift after some tokens, as in llama.cpp's server.
//!
//! ```no_run
//! # async fn run() -> wst_sdk::Result<()> {
//! use wst_sdk::{ChatMessage, SamplingParams, Student, StudentRequest};
//! let student = wst_llamacpp::LlamaCppStudent::load("SmolLM2-135M-Instruct.Q4_1.gguf", &Default::default())?;
//! let request = StudentRequest { messages: vec![ChatMessage::user("Capital of France?")], n: 4, params: SamplingParams::default() };
//! let answers = student.generate(&request).await?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod backend;
mod config;
pub mod cpu_variant;
pub mod engine;
mod sequence;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

pub use backend::LlamaCppBackend;
pub use config::LlamaCppConfig;
use engine::{Engine, Job};

use async_trait::async_trait;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use wst_sdk::chat_template::ChatTemplate;
use wst_sdk::student::{DeltaSink, StudentCapabilities, StudentUsage, UsageMeter};
use wst_sdk::{ChatMessage, Error, Result, Student, StudentRequest, StudentSample};

/// llama.cpp's backend may be initialised once per process, after its CPU backend is loaded
/// ([`cpu_variant`]); every Student shares it.
fn backend() -> Result<&'static LlamaBackend> {
    static BACKEND: OnceLock<std::result::Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            cpu_variant::loaded().map_err(|e| e.clone())?;
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| Error::Student { student: "llamacpp".into(), message: format!("cannot initialise llama.cpp: {e}") })
}

/// Creating contexts in parallel is unsound in llama.cpp (it mutates the model): one at a time.
static NEW_CONTEXT: Mutex<()> = Mutex::new(());

/// A GGUF model answering through llama.cpp.
pub struct LlamaCppStudent {
    name: String,
    identity: String,
    path: PathBuf,
    model: Arc<LlamaModel>,
    template: ChatTemplate,
    config: LlamaCppConfig,
    engine: Engine,
    meter: Arc<UsageMeter>,
}

impl std::fmt::Debug for LlamaCppStudent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlamaCppStudent").field("path", &self.path).field("config", &self.config).finish()
    }
}

impl LlamaCppStudent {
    /// What the decoding thread is doing (sequences running, tokens sampled, requests
    /// cancelled because their callers went away).
    pub fn engine_stats(&self) -> &engine::EngineStats {
        self.engine.stats()
    }

    /// The decoding thread itself, for prompts already tokenized (a server taking token ids, a
    /// benchmark). Nothing is checked at this level: the Student's own calls tokenize text, so
    /// their ids are the vocabulary's.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Loads the GGUF file at `path`, or a catalog model by name (`qwen2.5-coder-0.5b-instruct`,
    /// fetched if needed; see `wst_sdk::models`).
    pub fn load(path: impl AsRef<Path>, config: &LlamaCppConfig) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let path = match path.to_str().filter(|_| !path.exists()).and_then(wst_sdk::models::find) {
            Some(m) => wst_sdk::models::fetch(&m, &wst_sdk::models::cache_dir())?,
            None => path,
        };
        let model_err = |message: String| Error::Model { path: path.clone(), message };
        if !path.is_file() {
            return Err(model_err("no such GGUF file".into()));
        }
        if config.n_threads == 0 {
            return Err(Error::invalid("student.llamacpp.n_threads", "must be at least 1"));
        }
        if config.max_sequences == 0 || config.n_batch == 0 {
            return Err(Error::invalid("student.llamacpp.max_sequences", "max_sequences and n_batch must be at least 1"));
        }
        let params = LlamaModelParams::default().with_n_gpu_layers(config.n_gpu_layers);
        let model = LlamaModel::load_from_file(backend()?, &path, &params).map_err(|e| model_err(format!("llama.cpp cannot load it: {e}")))?;
        // Rendered by the SDK, as the Teacher and the candle Student render, not by llama.cpp's
        // built-in template matcher (which is not Jinja and differs on some templates).
        let template = ChatTemplate::from_gguf(&path)?;
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let name = format!("llamacpp:{stem}");
        // The file's content and the settings that change what answers are drawn from; not the
        // thread count, the batch size or the KV layout, which on f32 weights change no answer
        // and on quantized weights only their rounding.
        let identity = format!(
            "llamacpp|{}|prompt=jinja|n_ctx={}|repeat_penalty={}|min_p={}|flash_attention={}",
            wst_sdk::student::file_fingerprint(&path)?,
            config.n_ctx,
            config.repeat_penalty,
            config.min_p,
            config.flash_attention
        );
        let model = Arc::new(model);
        let engine = Engine::start(name.clone(), model.clone(), config.clone())?;
        Ok(LlamaCppStudent { name, identity, path, model, template, config: config.clone(), engine, meter: Arc::new(UsageMeter::default()) })
    }

    /// The prompt text the model sees for `messages` (the model's chat template rendered as
    /// transformers renders it, assistant turn open).
    pub fn render(&self, messages: &[ChatMessage]) -> Result<String> {
        self.template.render(messages)
    }

    fn error(&self, message: String) -> Error {
        Error::Student { student: self.name.clone(), message }
    }
}

/// llama.cpp's token ids for each text (special tokens parsed, no BOS added), from the
/// vocabulary of the GGUF at `path` (only the vocabulary is loaded): a reference for checking
/// other tokenizers of the same file.
pub fn tokenize(path: impl AsRef<Path>, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
    let path = path.as_ref();
    let params = LlamaModelParams::default().with_vocab_only(true);
    let model = LlamaModel::load_from_file(backend()?, path, &params).map_err(|e| Error::Model { path: path.to_path_buf(), message: format!("llama.cpp cannot load it: {e}") })?;
    Ok(texts.iter().map(|t| model.vocab().tokenize(t.as_bytes(), false, true).into_iter().map(|id| id.0 as u32).collect()).collect())
}

#[async_trait]
impl Student for LlamaCppStudent {
    fn name(&self) -> &str {
        &self.name
    }

    fn identity(&self) -> String {
        self.identity.clone()
    }

    fn weight_files(&self) -> Vec<PathBuf> {
        vec![self.path.clone()]
    }

    fn capabilities(&self) -> StudentCapabilities {
        StudentCapabilities { native_n: true, max_concurrency: self.config.max_sequences.max(1) }
    }

    fn usage(&self) -> StudentUsage {
        self.meter.snapshot()
    }

    async fn generate(&self, request: &StudentRequest) -> Result<Vec<StudentSample>> {
        self.answer(request, None).await
    }

    /// Streams each answer's text token by token as the decoding thread writes it.
    async fn generate_streaming(&self, request: &StudentRequest, sink: &DeltaSink) -> Result<Vec<StudentSample>> {
        self.answer(request, Some(sink.clone())).await
    }
}

impl LlamaCppStudent {
    /// Sends `request` to the decoding thread and waits for its answers.
    async fn answer(&self, request: &StudentRequest, stream: Option<DeltaSink>) -> Result<Vec<StudentSample>> {
        if request.n == 0 {
            return Ok(Vec::new());
        }
        let prompt = self.render(&request.messages)?;
        let vocab = self.model.vocab();
        let mut tokens = vocab.tokenize(prompt.as_bytes(), true, true);
        // Templates that write BOS themselves would otherwise get a second one.
        if tokens.len() >= 2 && tokens[0] == vocab.bos() && tokens[1] == vocab.bos() {
            tokens.remove(0);
        }
        let (reply, answers) = tokio::sync::oneshot::channel();
        self.engine
            .submit(Job { prompt: tokens, n: request.n, params: request.params.clone(), reply, stream })
            .map_err(|_| self.error("the decoding thread has stopped".into()))?;
        let answers = answers.await.map_err(|_| self.error("the decoding thread dropped the request".into()))??;
        let mut usage = wst_sdk::student::TokenUsage::default();
        for a in &answers {
            usage += a.usage;
        }
        self.meter.record(answers.len(), usage);
        Ok(answers)
    }
}
