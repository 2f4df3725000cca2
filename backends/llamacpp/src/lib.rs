//! # wst-llamacpp: a Student run in-process by llama.cpp
//!
//! Loads a GGUF file once (the model is shared by every request) and answers with the model's
//! own chat template. The `n` answers of a request are decoded as parallel sequences of one
//! batch: the prompt is evaluated once and its KV cells shared by every sequence, and each
//! sequence has its own seeded sampler chain (repetition penalty, top-k, top-p, min-p,
//! temperature). Contexts are not thread-safe: each request gets its own, created under a
//! process-wide lock, and at most `parallel_requests` run at once.
//!
//! ```no_run
//! # async fn run() -> wst_sdk::Result<()> {
//! use wst_sdk::{ChatMessage, SamplingParams, Student, StudentRequest};
//! let student = wst_llamacpp::LlamaCppStudent::load("SmolLM2-135M-Instruct.Q4_1.gguf", &Default::default())?;
//! let request = StudentRequest { messages: vec![ChatMessage::user("Capital of France?")], n: 4, params: SamplingParams::default() };
//! let answers = student.generate(&request).await?;
//! # Ok(()) }
//! ```

mod decode;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use tokio::sync::Semaphore;
use wst_sdk::config::LlamaCppConfig;
use wst_sdk::student::{StudentCapabilities, StudentUsage, UsageMeter};
use wst_sdk::{ChatMessage, Error, Result, Student, StudentRequest, StudentSample};

/// llama.cpp's backend may be initialised once per process; every Student shares it.
fn backend() -> Result<&'static LlamaBackend> {
    static BACKEND: OnceLock<std::result::Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
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
    path: PathBuf,
    model: Arc<LlamaModel>,
    template: LlamaChatTemplate,
    config: LlamaCppConfig,
    gate: Arc<Semaphore>,
    meter: Arc<UsageMeter>,
}

impl std::fmt::Debug for LlamaCppStudent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlamaCppStudent").field("path", &self.path).field("config", &self.config).finish()
    }
}

impl LlamaCppStudent {
    /// Loads the GGUF file at `path`.
    pub fn load(path: impl AsRef<Path>, config: &LlamaCppConfig) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let model_err = |message: String| Error::Model { path: path.clone(), message };
        if !path.is_file() {
            return Err(model_err("no such GGUF file".into()));
        }
        if config.n_threads == 0 {
            return Err(Error::invalid("student.llamacpp.n_threads", "must be at least 1"));
        }
        let params = LlamaModelParams::default().with_n_gpu_layers(config.n_gpu_layers);
        let model = LlamaModel::load_from_file(backend()?, &path, &params).map_err(|e| model_err(format!("llama.cpp cannot load it: {e}")))?;
        let template = match model.chat_template(None) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(path = %path.display(), "no chat template in the GGUF ({e}); using ChatML");
                LlamaChatTemplate::new("chatml").expect("no NUL")
            }
        };
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(LlamaCppStudent {
            name: format!("llamacpp:{stem}"),
            path,
            model: Arc::new(model),
            template,
            config: config.clone(),
            gate: Arc::new(Semaphore::new(config.parallel_requests.max(1))),
            meter: Arc::new(UsageMeter::default()),
        })
    }

    /// The prompt text the model sees for `messages` (the model's chat template, assistant turn
    /// open). NUL characters, which C strings cannot carry, are dropped.
    pub fn render(&self, messages: &[ChatMessage]) -> Result<String> {
        let chat = messages
            .iter()
            .map(|m| LlamaChatMessage::new(m.role.replace('\0', ""), m.content.replace('\0', "")))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| self.error(format!("a message cannot be passed to llama.cpp: {e}")))?;
        self.model.apply_chat_template(&self.template, &chat, true).map_err(|e| self.error(format!("chat template failed: {e}")))
    }

    fn error(&self, message: String) -> Error {
        Error::Student { student: self.name.clone(), message }
    }
}

#[async_trait]
impl Student for LlamaCppStudent {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> StudentCapabilities {
        StudentCapabilities {
            native_n: true,
            seeds: true,
            context_length: Some(self.config.n_ctx as usize),
            max_concurrency: self.config.parallel_requests.max(1),
        }
    }

    fn usage(&self) -> StudentUsage {
        self.meter.snapshot()
    }

    async fn generate(&self, request: &StudentRequest) -> Result<Vec<StudentSample>> {
        if request.n == 0 {
            return Ok(Vec::new());
        }
        let prompt = self.render(&request.messages)?;
        let _permit = self.gate.clone().acquire_owned().await.map_err(|_| self.error("the request gate was closed".into()))?;
        let job = decode::Job {
            name: self.name.clone(),
            model: self.model.clone(),
            config: self.config.clone(),
            prompt,
            n: request.n,
            params: request.params.clone(),
        };
        let meter = self.meter.clone();
        let answers = tokio::task::spawn_blocking(move || decode::run(job))
            .await
            .map_err(|e| self.error(format!("the decoding task failed: {e}")))??;
        let mut usage = wst_sdk::student::TokenUsage::default();
        for a in &answers {
            usage += a.usage;
        }
        meter.record(answers.len(), usage);
        Ok(answers)
    }
}
