//! The server: its settings, its state, the routes, and serving until a shutdown signal.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use wst_sdk::Pipeline;

use crate::batcher::TeacherBatcher;
use crate::error::ApiError;
use crate::limits::Admission;
use crate::metrics::Metrics;
use crate::schema::ModelCard;

/// How the server behaves; the defaults suit one machine serving a few apps.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Bearer keys accepted on `/v1/*` (empty: no key needed). Never logged.
    pub api_keys: Vec<String>,
    /// Largest request body in bytes (a larger one gets 413).
    pub max_body_bytes: usize,
    /// Requests processed at once.
    pub max_concurrency: usize,
    /// Requests that may wait for a slot; one more gets 429 with `Retry-After`.
    pub max_queue: usize,
    /// Longest a request may take, waiting included (then 504).
    pub request_timeout: Duration,
    /// How long the first request of a Teacher batch waits for others.
    pub batch_wait: Duration,
    /// Most requests in one Teacher batch.
    pub max_batch: usize,
    /// Send the instruction back (`wst.instruction` in the body, `x-wst-instruction` header).
    pub echo_instruction: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            api_keys: Vec::new(),
            max_body_bytes: 4 << 20,
            max_concurrency: 64,
            max_queue: 256,
            request_timeout: Duration::from_secs(600),
            batch_wait: Duration::from_millis(5),
            max_batch: 8,
            echo_instruction: true,
        }
    }
}

/// One Teacher+Student pair served under a name (a pipeline without a Teacher serves its
/// Student alone).
pub struct ServedModel {
    /// The name requests give as `model`.
    pub name: String,
    /// The Teacher, the Student and their prompts and sampling settings.
    pub pipeline: Arc<Pipeline>,
}

pub(crate) struct Model {
    pub name: String,
    pub pipeline: Arc<Pipeline>,
    pub batcher: Option<TeacherBatcher>,
}

pub(crate) struct AppState {
    pub options: ServeOptions,
    pub models: OnceLock<Vec<Model>>,
    pub metrics: Arc<Metrics>,
    pub admission: Arc<Admission>,
    pub draining: AtomicBool,
    pub started: u64,
}

/// A wst server: routes answer 503 until [`Server::set_models`] makes it ready.
#[derive(Clone)]
pub struct Server {
    pub(crate) state: Arc<AppState>,
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Server {
    /// A server with `options` and no models yet (`/health` answers 503 until they are set).
    pub fn new(options: ServeOptions) -> Self {
        let admission = Arc::new(Admission::new(options.max_concurrency, options.max_queue));
        Server {
            state: Arc::new(AppState { options, models: OnceLock::new(), metrics: Arc::new(Metrics::default()), admission, draining: AtomicBool::new(false), started: unix_now() }),
        }
    }

    /// Serves `models` from now on (once; the names must be distinct). Starts each Teacher's
    /// batching task on the current tokio runtime.
    pub fn set_models(&self, models: Vec<ServedModel>) -> wst_sdk::Result<()> {
        let mut names = std::collections::BTreeSet::new();
        if let Some(m) = models.iter().find(|m| !names.insert(m.name.clone())) {
            return Err(wst_sdk::Error::invalid("models", format!("two served models are named `{}`", m.name)));
        }
        let o = &self.state.options;
        let models = models
            .into_iter()
            .map(|m| {
                let batcher = m.pipeline.has_teacher().then(|| TeacherBatcher::spawn(m.pipeline.clone(), o.batch_wait, o.max_batch, self.state.metrics.clone(), m.name.clone()));
                Model { name: m.name, pipeline: m.pipeline, batcher }
            })
            .collect();
        self.state.models.set(models).map_err(|_| wst_sdk::Error::invalid("models", "the served models were already set".to_string()))
    }

    /// Refuses new requests (503) from now on; requests in flight finish.
    pub fn begin_shutdown(&self) {
        self.state.draining.store(true, Ordering::SeqCst);
    }

    /// The routes: `POST /v1/chat/completions`, `GET /v1/models`, `GET /health`, `GET /metrics`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/chat/completions", post(crate::chat::chat_completions))
            .route("/v1/models", get(models))
            .route("/health", get(health))
            .route("/metrics", get(metrics))
            .fallback(not_found)
            .with_state(self.state.clone())
    }

    /// Serves on `listener` until `shutdown` resolves; then refuses new requests, lets those in
    /// flight finish, and returns.
    pub async fn serve(self, listener: tokio::net::TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let state = self.state.clone();
        axum::serve(listener, self.router())
            .with_graceful_shutdown(async move {
                shutdown.await;
                state.draining.store(true, Ordering::SeqCst);
                tracing::info!("shutting down: finishing the requests in flight, refusing new ones");
            })
            .await
    }
}

impl AppState {
    /// The models once loaded, or a 503 (still loading, or shutting down).
    pub fn ready(&self) -> Result<&[Model], ApiError> {
        if self.draining.load(Ordering::SeqCst) {
            return Err(ApiError::unavailable("the server is shutting down"));
        }
        self.models.get().map(Vec::as_slice).ok_or_else(|| ApiError::unavailable("the models are still loading"))
    }

    /// Checks the bearer key when keys are configured (401 otherwise).
    pub fn authorize(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if self.options.api_keys.is_empty() {
            return Ok(());
        }
        let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
        match given {
            None => Err(ApiError::unauthorized("no API key: send `Authorization: Bearer KEY`")),
            Some(k) if self.options.api_keys.iter().any(|key| constant_time_eq(key.as_bytes(), k.as_bytes())) => Ok(()),
            Some(_) => Err(ApiError::unauthorized("the API key is not valid")),
        }
    }
}

/// Equality whose time does not depend on where two keys of equal length differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn models(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let result = state.authorize(&headers).and_then(|_| state.ready());
    match result {
        Ok(models) => {
            let data: Vec<ModelCard> = models.iter().map(|m| ModelCard { id: m.name.clone(), object: "model", created: state.started, owned_by: "wst" }).collect();
            axum::Json(json!({"object": "list", "data": data})).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    match state.ready() {
        Ok(_) => axum::Json(json!({"status": "ok"})).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({"status": "unavailable", "error": e.body()["error"]}))).into_response(),
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render()).into_response()
}

async fn not_found() -> Response {
    ApiError {
        status: StatusCode::NOT_FOUND,
        message: "no such route; wst serves /v1/chat/completions, /v1/models, /health and /metrics".into(),
        kind: "invalid_request_error",
        param: None,
        code: Some("not_found"),
        retry_after: None,
    }
    .into_response()
}
