//! # wst-openai: a Student behind any OpenAI-compatible Chat Completions server
//!
//! api.openai.com (GPT-4o-mini), vLLM, SGLang, llama.cpp's server, Ollama, LiteLLM, Together...
//! by base URL. Several base URLs are load-balanced round-robin, so a fleet of servers serves
//! as one Student. Requests are bounded by a concurrency limit and a requests/tokens-per-minute
//! limiter; 429, 5xx, timeouts and broken bodies are retried with exponential backoff and
//! jitter (honouring `Retry-After`); 400/401/403/404 and `insufficient_quota` fail at once with
//! the server's message. Servers that ignore `n` are detected and fanned out to. The API key
//! comes from an environment variable and is never logged.
//!
//! ```no_run
//! # async fn run() -> wst_sdk::Result<()> {
//! use wst_sdk::{ChatMessage, SamplingParams, Student, StudentRequest};
//! let student = wst_openai::OpenAiStudent::new("gpt-4o-mini", &Default::default())?;
//! let request = StudentRequest { messages: vec![ChatMessage::user("2+2?")], n: 2, params: SamplingParams::default() };
//! for answer in student.generate(&request).await? {
//!     println!("{}", answer.text);
//! }
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod backend;
mod batch;
mod config;
mod journal;
mod limiter;
mod retry;
mod served;
mod wire;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Semaphore;
use wst_sdk::student::{FinishReason, StudentCapabilities, StudentUsage, TokenUsage, UsageMeter};
use wst_sdk::{Error, Result, Student, StudentRequest, StudentSample};

pub use backend::OpenAiBackend;
pub use config::{OpenAiConfig, TokenLimitField};
pub use limiter::RateLimiter;
use retry::{Failure, retry_after};
pub use served::{SERVED_FILE, Served};

/// A Student served over HTTP by an OpenAI-compatible server.
pub struct OpenAiStudent {
    name: String,
    model: String,
    client: reqwest::Client,
    urls: Vec<String>,
    next_url: AtomicUsize,
    api_key: Option<String>,
    /// `OpenAI-Organization` and `OpenAI-Project` headers (from `OPENAI_ORG_ID`, `OPENAI_PROJECT_ID`).
    org: Option<String>,
    project: Option<String>,
    gate: Semaphore,
    limiter: RateLimiter,
    config: OpenAiConfig,
    meter: UsageMeter,
    ignores_n: AtomicBool,
    /// Where submitted batches are recorded ([`Student::use_state_dir`]).
    state_dir: std::sync::OnceLock<std::path::PathBuf>,
    /// The model and system fingerprint the server reports, checked for changes.
    served: served::ServedTracker,
}

impl std::fmt::Debug for OpenAiStudent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key itself.
        f.debug_struct("OpenAiStudent")
            .field("model", &self.model)
            .field("urls", &self.urls.iter().map(|u| redact_userinfo(u)).collect::<Vec<_>>())
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// Makes rustls's ring provider the process default, once (reqwest is built without a provider
/// of its own, so a client needs one installed before it is built). Safe to call any number of
/// times, and from an application that installed a provider itself (that one stays).
pub fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl OpenAiStudent {
    /// The `model` and `system_fingerprint` the server reported with its last answer.
    pub fn last_served(&self) -> Option<served::Served> {
        self.served.last()
    }

    /// A Student asking `model` at `config.base_urls`. The key is read from the variable named
    /// by `config.api_key_env`; it is required for api.openai.com and optional elsewhere.
    pub fn new(model: &str, config: &OpenAiConfig) -> Result<Self> {
        let name = format!("openai:{model}");
        let bad = |message: String| Error::Student { student: name.clone(), message };
        if config.base_urls.is_empty() {
            return Err(bad("student.openai.base_urls is empty: give at least one base URL (…/v1)".into()));
        }
        // OPENAI_BASE_URL replaces the default endpoint, as in OpenAI's own clients.
        let base_urls = match std::env::var("OPENAI_BASE_URL") {
            Ok(u) if !u.trim().is_empty() && config.base_urls == OpenAiConfig::default().base_urls => vec![u.trim().to_string()],
            _ => config.base_urls.clone(),
        };
        let urls: Vec<String> = base_urls.iter().map(|u| u.trim_end_matches('/').to_string()).collect();
        for u in &urls {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(bad(format!("base URL `{u}` must start with http:// or https://")));
            }
        }
        let api_key = match &config.api_key_env {
            Some(var) => match std::env::var(var) {
                Ok(k) if !k.trim().is_empty() => Some(k.trim().to_string()),
                _ if urls.iter().any(|u| u.contains("api.openai.com")) => {
                    return Err(bad(format!("the API key variable `{var}` is not set (needed by api.openai.com)")));
                }
                _ => None,
            },
            None => None,
        };
        if config.timeout_secs.is_nan() || config.timeout_secs <= 0.0 {
            return Err(bad(format!("student.openai.timeout_secs must be positive, got {}", config.timeout_secs)));
        }
        install_tls_provider();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs_f64(config.timeout_secs))
            .connect_timeout(Duration::from_secs_f64(config.timeout_secs.min(30.0)))
            .build()
            .map_err(|e| bad(format!("cannot build the HTTP client: {e}")))?;
        Ok(OpenAiStudent {
            name,
            model: model.to_string(),
            client,
            urls,
            next_url: AtomicUsize::new(0),
            api_key,
            org: std::env::var("OPENAI_ORG_ID").ok().filter(|v| !v.trim().is_empty()),
            project: std::env::var("OPENAI_PROJECT_ID").ok().filter(|v| !v.trim().is_empty()),
            gate: Semaphore::new(config.max_concurrency.max(1)),
            limiter: RateLimiter::new(config.requests_per_minute, config.tokens_per_minute),
            config: config.clone(),
            meter: UsageMeter::new(model, &config.prices),
            ignores_n: AtomicBool::new(false),
            state_dir: std::sync::OnceLock::new(),
            served: served::ServedTracker::default(),
        })
    }

    /// An error of this Student; credentials in URLs (`https://user:pass@host`) are redacted.
    /// An HTTP failure with its status, code, whether it was retryable and the attempts made.
    pub(crate) fn http_error(&self, message: String, http: Option<retry::Http>, retryable: bool, attempts: u32) -> Error {
        let (status, code) = http.map_or((None, None), |h| (Some(h.status), h.code));
        Error::Http { student: self.name.clone(), status, code, retryable, attempts, message: redact_userinfo(&message) }
    }

    pub(crate) fn error(&self, message: String) -> Error {
        Error::Student { student: self.name.clone(), message: redact_userinfo(&message) }
    }

    pub(crate) fn name_str(&self) -> &str {
        &self.name
    }

    pub(crate) fn config(&self) -> &OpenAiConfig {
        &self.config
    }

    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The folder where submitted batches are recorded, if the Student was given one.
    pub(crate) fn state_dir(&self) -> Option<&std::path::Path> {
        self.state_dir.get().map(|p| p.as_path())
    }

    /// The first base URL (batch jobs live on one server).
    pub(crate) fn base_url(&self) -> &str {
        &self.urls[0]
    }

    /// The Chat Completions body of `request` with `n` answers and `seed`.
    pub(crate) fn body<'a>(&'a self, request: &'a StudentRequest, n: usize, seed: Option<u64>) -> wire::ChatRequest<'a> {
        let p = &request.params;
        let openai = self.urls.iter().all(|u| u.contains("api.openai.com") || u.contains(".openai.azure.com"));
        let (new_name, old_name) = match self.config.token_limit_field {
            TokenLimitField::MaxCompletionTokens => (true, false),
            TokenLimitField::MaxTokens => (false, true),
            TokenLimitField::Both => (true, true),
            TokenLimitField::Auto => (openai, !openai),
        };
        wire::ChatRequest {
            model: &self.model,
            messages: &request.messages,
            n,
            temperature: p.temperature,
            top_p: p.top_p,
            max_completion_tokens: new_name.then_some(p.max_tokens),
            max_tokens: old_name.then_some(p.max_tokens),
            seed,
            stop: &p.stop,
            // OpenAI and Azure reject `top_k` with a 400 (that would abort a writer row):
            // sent only to the servers that read it (vLLM, SGLang, llama.cpp).
            top_k: p.top_k.filter(|_| !openai),
        }
    }

    /// `req` with the key and the organisation and project headers.
    pub(crate) fn authed(&self, mut req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key);
        }
        if let Some(org) = &self.org {
            req = req.header("OpenAI-Organization", org);
        }
        if let Some(project) = &self.project {
            req = req.header("OpenAI-Project", project);
        }
        req
    }

    /// One HTTP exchange, retried until it succeeds, fails permanently or runs out of retries.
    async fn call(&self, request: &StudentRequest, n: usize, seed: Option<u64>) -> Result<Vec<StudentSample>> {
        let p = &request.params;
        let body = self.body(request, n, seed);
        let prompt_chars: usize = request.messages.iter().map(|m| m.content.len() + 8).sum();
        let estimate = (prompt_chars / 4 + n * p.max_tokens) as u64;
        let outcome = retry::with_retries(
            &self.config,
            || async {
                let booking = self.limiter.acquire(estimate).await;
                let url = &self.urls[self.next_url.fetch_add(1, Ordering::Relaxed) % self.urls.len()];
                let _permit = self.gate.acquire().await.map_err(|_| Failure::permanent("the request gate was closed".into()))?;
                match self.attempt(url, &body).await {
                    Ok(answers) => {
                        let used: u64 = answers.iter().map(|a| a.usage.prompt_tokens + a.usage.completion_tokens).sum();
                        if used > 0 {
                            self.limiter.settle(booking, used).await;
                        }
                        Ok(answers)
                    }
                    Err(f) => {
                        self.meter.record_failure();
                        // The URL is part of the message: with several URLs each try may use another.
                        Err(f.prefixed(url))
                    }
                }
            },
            |attempt, wait, message| tracing::warn!(student = %self.name, attempt, wait_ms = wait.as_millis() as u64, "retrying: {}", redact_userinfo(message)),
        )
        .await;
        outcome.map_err(|g| self.http_error(g.message, g.http, g.retryable, g.attempts))
    }

    async fn attempt(&self, url: &str, body: &wire::ChatRequest<'_>) -> std::result::Result<Vec<StudentSample>, Failure> {
        let bytes = self.read_body(self.authed(self.client.post(format!("{url}/chat/completions")).json(body))).await?;
        let parsed: wire::ChatResponse = serde_json::from_slice(&bytes).map_err(|e| Failure::transient(format!("malformed response ({e}): {}", snippet(&bytes))))?;
        self.answers(parsed).map_err(Failure::transient)
    }

    /// Sends `req` and reads a successful body (up to `max_response_bytes`); an error status
    /// becomes a transient failure (429 but out of quota, 408, 409, 5xx) or a permanent one.
    pub(crate) async fn read_body(&self, req: reqwest::RequestBuilder) -> std::result::Result<Vec<u8>, Failure> {
        let transient = Failure::transient;
        let resp = req.send().await.map_err(|e| transient(describe(&e)))?;
        let status = resp.status();
        let wait = retry_after(resp.headers());
        // Bodies are read in chunks up to a limit: a misbehaving server cannot exhaust memory.
        let limit = self.config.max_response_bytes;
        let too_big = || Failure::Permanent {
            message: format!("HTTP {status}: the response is larger than student.openai.max_response_bytes = {limit}"),
            http: Some(retry::Http { status: status.as_u16(), code: None }),
        };
        if resp.content_length().is_some_and(|n| n > limit) {
            return Err(too_big());
        }
        let mut resp = resp;
        let mut bytes = Vec::new();
        while let Some(chunk) =
            resp.chunk().await.map_err(|e| Failure::Transient { message: format!("HTTP {status}, body cut short: {}", describe(&e)), retry_after: wait, http: None })?
        {
            if (bytes.len() + chunk.len()) as u64 > limit {
                return Err(too_big());
            }
            bytes.extend_from_slice(&chunk);
        }
        if status.is_success() {
            return Ok(bytes);
        }
        let detail = serde_json::from_slice::<wire::ErrorBody>(&bytes).ok().map(|b| b.error);
        let message = match &detail {
            Some(d) => format!("HTTP {status}: {}", d.message),
            None => format!("HTTP {status}: {}", snippet(&bytes)),
        };
        let code = status.as_u16();
        let http = Some(retry::Http { status: code, code: detail.as_ref().and_then(|d| d.code()) });
        if code == 429 && detail.as_ref().is_some_and(|d| d.is_insufficient_quota()) {
            return Err(Failure::Permanent { message, http });
        }
        if code == 429 || code == 408 || code == 409 || status.is_server_error() {
            return Err(Failure::Transient { message, retry_after: wait, http });
        }
        Err(Failure::Permanent { message, http })
    }

    pub(crate) fn answers(&self, mut parsed: wire::ChatResponse) -> std::result::Result<Vec<StudentSample>, String> {
        if parsed.choices.is_empty() {
            return Err("the server returned no choices".into());
        }
        parsed.choices.sort_by_key(|c| c.index.unwrap_or(0));
        let key = format!("{}@{}", self.name, redact_userinfo(self.base_url()));
        self.served.observe(served::Served { model: parsed.model.take(), system_fingerprint: parsed.system_fingerprint.take() }, &key, self.state_dir());
        let usage = parsed.usage.unwrap_or_default();
        let k = parsed.choices.len() as u64;
        self.meter.record(parsed.choices.len(), TokenUsage { prompt_tokens: usage.prompt_tokens, completion_tokens: usage.completion_tokens });
        Ok(parsed
            .choices
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                // The prompt is billed once per request; completion tokens are split evenly
                // (servers report only the total, some only for one choice).
                let extra = u64::from((i as u64) < usage.completion_tokens % k);
                StudentSample {
                    text: c.message.content.or(c.message.refusal).unwrap_or_default(),
                    finish_reason: c.finish_reason.as_deref().map(FinishReason::from).unwrap_or(FinishReason::Stop),
                    usage: TokenUsage { prompt_tokens: if i == 0 { usage.prompt_tokens } else { 0 }, completion_tokens: usage.completion_tokens / k + extra },
                }
            })
            .collect())
    }
}

/// A reqwest error in one line, with the cause that says what happened (timeout, refused...).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "broken body"
    } else {
        "request failed"
    };
    let mut msg = format!("{kind}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(&format!(": {s}"));
        source = s.source();
    }
    msg
}

/// `text` with the user information of every URL in it (`https://user:secret@host/v1`)
/// replaced by `***`, so a key put in a base URL never reaches a log line or an error.
pub fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let authority_end = tail.find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == ')' || c == '"' || c == '\'').unwrap_or(tail.len());
        match tail[..authority_end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

fn snippet(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let s = s.trim();
    if s.chars().count() > 300 { format!("{}…", s.chars().take(300).collect::<String>()) } else { s.to_string() }
}

#[async_trait]
impl Student for OpenAiStudent {
    fn name(&self) -> &str {
        &self.name
    }

    /// The model at these servers: the same model name elsewhere is another model.
    fn identity(&self) -> String {
        format!("openai|{}|{}", self.model, self.urls.join(","))
    }

    fn capabilities(&self) -> StudentCapabilities {
        StudentCapabilities { native_n: !self.ignores_n.load(Ordering::Relaxed), max_concurrency: self.config.max_concurrency.max(1) }
    }

    fn usage(&self) -> StudentUsage {
        self.meter.snapshot()
    }

    fn prefers_bulk(&self) -> bool {
        self.config.batch
    }

    fn use_state_dir(&self, dir: &std::path::Path) {
        let _ = self.state_dir.set(dir.to_path_buf());
    }

    /// With `student.openai.batch`, one Batch API job for all of `requests`; else concurrent
    /// Chat Completions calls.
    async fn generate_many(&self, requests: &[StudentRequest]) -> Vec<Result<Vec<StudentSample>>> {
        if self.config.batch && !requests.is_empty() {
            return batch::run(self, requests).await;
        }
        wst_sdk::student::generate_concurrently(self, requests).await
    }

    async fn generate(&self, request: &StudentRequest) -> Result<Vec<StudentSample>> {
        let want = request.n;
        if want == 0 {
            return Ok(Vec::new());
        }
        let seed = request.params.seed;
        let mut answers = if want == 1 || !self.ignores_n.load(Ordering::Relaxed) { self.call(request, want, seed).await? } else { Vec::new() };
        if answers.len() < want {
            if !answers.is_empty() && !self.ignores_n.swap(true, Ordering::Relaxed) {
                tracing::warn!(student = %self.name, "the server returned {} of {want} answers: it ignores `n`; fanning out one request per answer", answers.len());
            }
            // Answer i keeps seed + i, as a sequential backend would use.
            let first = answers.len();
            let rest = futures::future::join_all((first..want).map(|i| self.call(request, 1, seed.map(|s| s.wrapping_add(i as u64))))).await;
            for r in rest {
                answers.extend(r?);
            }
        }
        answers.truncate(want);
        Ok(answers)
    }
}

#[cfg(test)]
mod tests {
    use super::redact_userinfo;

    #[test]
    fn userinfo_is_redacted_wherever_a_url_appears() {
        assert_eq!(redact_userinfo("https://bob:s3cret@example.com/v1: HTTP 500"), "https://***@example.com/v1: HTTP 500");
        assert_eq!(
            redact_userinfo("error sending request for url (http://k@127.0.0.1:9/v1/chat/completions)"),
            "error sending request for url (http://***@127.0.0.1:9/v1/chat/completions)"
        );
        assert_eq!(redact_userinfo("https://example.com/v1 and http://a:b@c/x"), "https://example.com/v1 and http://***@c/x");
        // An @ in the path is not user information.
        assert_eq!(redact_userinfo("https://example.com/users/@me"), "https://example.com/users/@me");
    }

    #[test]
    fn top_k_goes_only_to_servers_that_read_it() {
        use wst_sdk::{ChatMessage, SamplingParams, StudentRequest};
        let request = StudentRequest { messages: vec![ChatMessage::user("hi")], n: 1, params: SamplingParams { top_k: Some(20), ..Default::default() } };
        let body = |url: &str| {
            let cfg = super::OpenAiConfig { base_urls: vec![url.into()], api_key_env: None, ..Default::default() };
            let s = super::OpenAiStudent::new("m", &cfg).unwrap();
            serde_json::to_value(s.body(&request, 1, None)).unwrap()
        };
        assert!(body("https://api.openai.com/v1").get("top_k").is_none());
        assert!(body("https://x.openai.azure.com/openai/v1").get("top_k").is_none());
        assert_eq!(body("http://127.0.0.1:8000/v1")["top_k"], 20);
    }
}
