//! Errors as OpenAI sends them: a status code and `{"error": {"message", "type", "param",
//! "code"}}`, so that clients' own error handling (the `openai` package's exception classes,
//! retries on 429 and 5xx) works against wst unchanged.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answered to a client.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// What went wrong, for people.
    pub message: String,
    /// OpenAI's error type (`invalid_request_error`, `authentication_error`, ...).
    pub kind: &'static str,
    /// The request parameter at fault, when one is.
    pub param: Option<String>,
    /// A machine-readable code (`model_not_found`, `rate_limit_exceeded`, ...).
    pub code: Option<&'static str>,
    /// Seconds after which a retry may succeed (sent as `Retry-After`).
    pub retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), kind, param: None, code: None, retry_after: None }
    }

    /// 400: a parameter's value is wrong.
    pub fn invalid(param: &str, message: &str) -> Self {
        ApiError { param: Some(param.to_string()), ..Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message) }
    }

    /// 400: the body is not the JSON of a request.
    pub fn malformed(message: impl Into<String>) -> Self {
        ApiError { code: Some("invalid_json"), ..Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message) }
    }

    /// 400: no served model has that name.
    pub fn unknown_model(name: &str, served: &[String]) -> Self {
        ApiError {
            param: Some("model".into()),
            code: Some("model_not_found"),
            ..Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", format!("the model `{name}` is not served here; served: {}", served.join(", ")))
        }
    }

    /// 401: a missing or wrong API key.
    pub fn unauthorized(message: &str) -> Self {
        ApiError { code: Some("invalid_api_key"), ..Self::new(StatusCode::UNAUTHORIZED, "authentication_error", message) }
    }

    /// 413: the body is larger than the server accepts.
    pub fn too_large(limit: usize) -> Self {
        ApiError { code: Some("request_too_large"), ..Self::new(StatusCode::PAYLOAD_TOO_LARGE, "invalid_request_error", format!("the request body is larger than {limit} bytes")) }
    }

    /// 429: every slot and the queue are taken.
    pub fn overloaded(running: usize, queued: usize) -> Self {
        ApiError {
            code: Some("rate_limit_exceeded"),
            retry_after: Some(1),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "requests", format!("the server is at its limit ({running} requests running, {queued} queued); retry shortly"))
        }
    }

    /// 503: the models are still loading, or the server is shutting down.
    pub fn unavailable(message: &str) -> Self {
        ApiError { retry_after: Some(1), ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", message) }
    }

    /// 504: the request ran past the server's timeout.
    pub fn timeout(seconds: f64) -> Self {
        ApiError { code: Some("timeout"), ..Self::new(StatusCode::GATEWAY_TIMEOUT, "server_error", format!("the request took longer than {seconds} s")) }
    }

    /// The Teacher or the Student failed: 502 when the Student is a server that failed, else 500.
    pub fn from_sdk(e: &wst_sdk::Error) -> Self {
        match e {
            wst_sdk::Error::Http { .. } => Self::new(StatusCode::BAD_GATEWAY, "server_error", e.to_string()),
            wst_sdk::Error::InvalidArgument { name, message } => Self::invalid(name, message),
            _ => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", e.to_string()),
        }
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        json!({"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(s) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        response
    }
}
