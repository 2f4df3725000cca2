//! The Student: the large model whose answers the Teacher's instructions should improve.
//!
//! Execution model: the Pipeline renders (query, optional instruction) into chat messages with a
//! [`StudentPrompt`], then asks the Student for `n` answers in one [`StudentRequest`]. Backends
//! (candle, llama.cpp, OpenAI-compatible HTTP) live in their own crates and implement
//! [`Student`]; they declare what they can do in [`StudentCapabilities`] so callers can plan
//! (fan out when `n` is not native, bound concurrency) instead of failing late.

mod cache;
mod fingerprint;
mod prompt;
mod spec;
mod state_file;
mod usage;

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;

pub use crate::types::{ChatMessage, SamplingParams};
pub use cache::{CACHE_FILE, CachedStudent, IDENTITIES_FILE, ResponseCache, append_line};
pub use fingerprint::{content_hash, file_fingerprint};
pub use prompt::{DEFAULT_STUDENT_TEMPLATE, StudentPrompt};
pub use spec::StudentSpec;
pub use state_file::{read_json_map, write_json_map};
pub use usage::{StudentUsage, UsageMeter};

/// A request for `n` answers to one conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudentRequest {
    /// The conversation; the answer continues it as the assistant.
    pub messages: Vec<ChatMessage>,
    /// How many independent answers to return.
    pub n: usize,
    /// Sampling settings shared by the `n` answers.
    pub params: SamplingParams,
}

/// Why generation of an answer ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model ended its answer (EOS or a stop string).
    Stop,
    /// `max_tokens` was reached.
    Length,
    /// Anything else a server reports (content filter, ...).
    Other(String),
}

impl From<&str> for FinishReason {
    /// OpenAI's name of a finish reason (`stop`, `length`, anything else kept as it is).
    fn from(s: &str) -> Self {
        match s {
            "stop" => FinishReason::Stop,
            "length" => FinishReason::Length,
            other => FinishReason::Other(other.to_string()),
        }
    }
}

impl FinishReason {
    /// The name OpenAI's API uses (`stop`, `length`, or the server's own word).
    pub fn as_str(&self) -> &str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::Other(s) => s,
        }
    }
}

/// Tokens spent on one answer (prompt tokens are counted once per request by most servers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    /// Prompt tokens billed.
    pub prompt_tokens: u64,
    /// Completion tokens billed.
    pub completion_tokens: u64,
}

impl std::ops::AddAssign for TokenUsage {
    fn add_assign(&mut self, rhs: Self) {
        self.prompt_tokens += rhs.prompt_tokens;
        self.completion_tokens += rhs.completion_tokens;
    }
}

/// One answer m2 from the Student.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudentSample {
    /// The answer text.
    pub text: String,
    /// Why generation ended.
    pub finish_reason: FinishReason,
    /// Tokens spent on this answer.
    pub usage: TokenUsage,
}

/// A piece of answer `index`'s text as it is written, for streaming replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerDelta {
    /// Which of the request's `n` answers the piece belongs to.
    pub index: usize,
    /// The text written since the previous piece of that answer.
    pub text: String,
}

/// Where [`Student::generate_streaming`] sends the pieces of the answers; a closed receiver
/// (the client went away) is not an error for the Student.
pub type DeltaSink = tokio::sync::mpsc::UnboundedSender<AnswerDelta>;

/// What a Student backend can do, declared up front.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudentCapabilities {
    /// Whether one request returns `n` answers natively (else the cache fans out to one request
    /// per answer, caching each as it arrives).
    pub native_n: bool,
    /// Answers it can usefully produce at once (decoded together, or requests in flight); the
    /// trainer warns when `wst.max_concurrency` × K asks for fewer.
    pub max_concurrency: usize,
}

impl Default for StudentCapabilities {
    fn default() -> Self {
        StudentCapabilities { native_n: false, max_concurrency: 1 }
    }
}

/// A model that answers queries: local (candle, llama.cpp) or remote (OpenAI-compatible HTTP).
///
/// `generate` must return exactly `request.n` samples or an error; it may be called
/// concurrently from many tasks, up to `capabilities().max_concurrency` usefully.
#[async_trait]
pub trait Student: Send + Sync {
    /// A short name for logs (e.g. `llamacpp:SmolLM2-135M`).
    fn name(&self) -> &str;

    /// What makes this Student's answers what they are, for the response cache's keys: the
    /// model's identity (file content, server address) and every setting that changes its
    /// answers. Two Students with equal identities must answer a seeded request alike. The
    /// default is the name, right only for Students without such settings.
    fn identity(&self) -> String {
        self.name().to_string()
    }

    /// The files whose whole content is the model's weights (a GGUF, a folder's shards), for
    /// the response cache: it records their content hash for this Student's identity and will
    /// not reuse answers when the files change under an identity that stays the same. Empty for
    /// remote Students.
    fn weight_files(&self) -> Vec<std::path::PathBuf> {
        Vec::new()
    }

    /// What this backend can do.
    fn capabilities(&self) -> StudentCapabilities {
        StudentCapabilities::default()
    }

    /// Requests, tokens and cost spent so far (zero for backends that do not count).
    fn usage(&self) -> StudentUsage {
        StudentUsage::default()
    }

    /// `request.n` answers to `request.messages`.
    async fn generate(&self, request: &StudentRequest) -> Result<Vec<StudentSample>>;

    /// Like [`generate`](Self::generate), sending each answer's text to `sink` piece by piece
    /// as it is written: the pieces of answer i, joined, are its final text. The default sends
    /// each answer whole once all are done; a backend that decodes token by token overrides it.
    async fn generate_streaming(&self, request: &StudentRequest, sink: &DeltaSink) -> Result<Vec<StudentSample>> {
        let answers = self.generate(request).await?;
        for (index, a) in answers.iter().enumerate() {
            let _ = sink.send(AnswerDelta { index, text: a.text.clone() });
        }
        Ok(answers)
    }

    /// Forces answers kept on the way (a response cache) to disk; the trainer calls it at every
    /// checkpoint, so a checkpoint never refers to answers that a crash could lose.
    fn flush(&self) -> Result<()> {
        Ok(())
    }

    /// Gives the Student a folder for state that must outlive the process (the response
    /// cache's folder, when there is one): the OpenAI Batch API Student records the batches it
    /// submitted there, so a killed run polls them again instead of paying twice.
    fn use_state_dir(&self, dir: &std::path::Path) {
        let _ = dir;
    }

    /// Whether this Student would rather receive known-in-advance work in bulk through
    /// [`generate_many`](Self::generate_many) (the OpenAI Batch API: half the price, answers
    /// within hours). The trainer then asks for every baseline up front, and evaluation for
    /// every answer of a method at once.
    fn prefers_bulk(&self) -> bool {
        false
    }

    /// Answers to many requests, one result per request, in order. The default runs
    /// [`generate`](Self::generate) concurrently, up to `capabilities().max_concurrency`.
    async fn generate_many(&self, requests: &[StudentRequest]) -> Vec<Result<Vec<StudentSample>>> {
        generate_concurrently(self, requests).await
    }
}

/// [`Student::generate`] for each request, up to `capabilities().max_concurrency` at once, in
/// order: the default of [`Student::generate_many`], callable from backends that override it.
pub async fn generate_concurrently<S: Student + ?Sized>(student: &S, requests: &[StudentRequest]) -> Vec<Result<Vec<StudentSample>>> {
    use futures::StreamExt;
    let limit = student.capabilities().max_concurrency.max(1);
    let calls: Vec<_> = requests.iter().map(|r| student.generate(r)).collect();
    futures::stream::iter(calls).buffered(limit).collect().await
}

/// `Arc<S>` and `Box<S>` are Students too, so Students can be shared and boxed freely.
macro_rules! forward_student {
    ($($wrapper:ident),*) => {$(
        #[async_trait]
        impl<T: Student + ?Sized> Student for $wrapper<T> {
            fn name(&self) -> &str {
                (**self).name()
            }
            fn identity(&self) -> String {
                (**self).identity()
            }
            fn weight_files(&self) -> Vec<std::path::PathBuf> {
                (**self).weight_files()
            }
            fn capabilities(&self) -> StudentCapabilities {
                (**self).capabilities()
            }
            fn usage(&self) -> StudentUsage {
                (**self).usage()
            }
            async fn generate(&self, request: &StudentRequest) -> Result<Vec<StudentSample>> {
                (**self).generate(request).await
            }
            async fn generate_streaming(&self, request: &StudentRequest, sink: &DeltaSink) -> Result<Vec<StudentSample>> {
                (**self).generate_streaming(request, sink).await
            }
            fn prefers_bulk(&self) -> bool {
                (**self).prefers_bulk()
            }
            fn use_state_dir(&self, dir: &std::path::Path) {
                (**self).use_state_dir(dir)
            }
            fn flush(&self) -> Result<()> {
                (**self).flush()
            }
            async fn generate_many(&self, requests: &[StudentRequest]) -> Vec<Result<Vec<StudentSample>>> {
                (**self).generate_many(requests).await
            }
        }
    )*};
}

forward_student!(Arc, Box);
