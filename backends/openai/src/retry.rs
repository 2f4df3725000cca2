//! Which failures are worth retrying, and how long to wait before the next try.

use std::time::Duration;

use rand::Rng;

/// The outcome of one failed attempt.
#[derive(Debug)]
pub enum Failure {
    /// Worth retrying (429, 5xx, timeouts, broken or malformed bodies); the server's wait, if any.
    Transient { message: String, retry_after: Option<Duration>, http: Option<Http> },
    /// Retrying cannot help (400, 401, 403, 404, insufficient_quota): fail with the server's message.
    Permanent { message: String, http: Option<Http> },
}

/// What the server said about a failed request: its status and error code.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Http {
    /// The HTTP status.
    pub status: u16,
    /// The error body's `code`, if any.
    pub code: Option<String>,
}

impl Failure {
    /// A permanent failure no HTTP status explains (a local file, an oversized body).
    pub fn permanent(message: String) -> Self {
        Failure::Permanent { message, http: None }
    }

    /// A transient failure no HTTP status explains (a timeout, a malformed body).
    pub fn transient(message: String) -> Self {
        Failure::Transient { message, retry_after: None, http: None }
    }

    /// The same failure, its message starting with `prefix: ` (which URL, which call).
    pub fn prefixed(self, prefix: &str) -> Self {
        match self {
            Failure::Permanent { message, http } => Failure::Permanent { message: format!("{prefix}: {message}"), http },
            Failure::Transient { message, retry_after, http } => Failure::Transient { message: format!("{prefix}: {message}"), retry_after, http },
        }
    }
}

/// Reads `retry-after-ms` (OpenAI) or `Retry-After` in seconds; HTTP dates are ignored.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<f64>().ok());
    let secs = get("retry-after-ms").map(|ms| ms / 1000.0).or_else(|| get("retry-after"))?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(600.0)))
}

/// Exponential backoff with jitter: `base · 2^attempt`, capped, times a factor in [0.5, 1].
pub fn backoff(attempt: u32, base_secs: f64, max_secs: f64) -> Duration {
    let full = (base_secs * 2f64.powi(attempt.min(30) as i32)).min(max_secs).max(0.0);
    Duration::from_secs_f64(full * rand::rng().random_range(0.5..=1.0))
}

/// Why the retries ended: the last failure's message, what the server said, whether that
/// failure was retryable (the retries ran out) and the attempts made.
#[derive(Debug)]
pub struct GaveUp {
    pub message: String,
    pub http: Option<Http>,
    pub retryable: bool,
    pub attempts: u32,
}

/// The one retry loop: runs `attempt` until it succeeds, fails permanently, or has failed
/// transiently `max_retries` + 1 times, waiting between tries for the server's `Retry-After`
/// or else [`backoff`]. `on_retry(attempt, wait, message)` runs before each wait (logs).
pub async fn with_retries<T, Fut>(config: &crate::OpenAiConfig, mut attempt: impl FnMut() -> Fut, mut on_retry: impl FnMut(u32, Duration, &str)) -> Result<T, GaveUp>
where
    Fut: std::future::Future<Output = Result<T, Failure>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(Failure::Permanent { message, http }) => return Err(GaveUp { message, http, retryable: false, attempts: tries }),
            Err(Failure::Transient { message, retry_after, http }) => {
                if tries > config.max_retries {
                    return Err(GaveUp { message: format!("{message} (gave up after {tries} attempts)"), http, retryable: true, attempts: tries });
                }
                let wait = retry_after.unwrap_or_else(|| backoff(tries - 1, config.backoff_base_secs, config.backoff_max_secs));
                on_retry(tries, wait, &message);
                tokio::time::sleep(wait).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::{HeaderMap, HeaderValue};

    use super::*;

    #[test]
    fn backoff_doubles_until_the_cap_and_jitters_downwards() {
        for attempt in 0..8 {
            let d = backoff(attempt, 0.5, 10.0).as_secs_f64();
            let full = (0.5 * 2f64.powi(attempt as i32)).min(10.0);
            assert!(d >= full * 0.5 - 1e-9 && d <= full + 1e-9, "attempt {attempt}: {d}");
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_milliseconds() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        let mut date = HeaderMap::new();
        date.insert("retry-after", HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(retry_after(&date), None);
    }

    #[tokio::test]
    async fn the_retry_loop_stops_on_success_permanent_failure_or_the_last_retry() {
        let config = crate::OpenAiConfig { max_retries: 2, backoff_base_secs: 0.0, backoff_max_secs: 0.0, ..Default::default() };
        let http = || Some(Http { status: 429, code: Some("rate_limit_exceeded".into()) });
        // A transient failure, then success: two attempts, one retry logged.
        let mut calls = 0;
        let mut retries = Vec::new();
        let ok = with_retries(
            &config,
            || {
                calls += 1;
                let n = calls;
                async move { if n == 1 { Err(Failure::Transient { message: "busy".into(), retry_after: Some(Duration::ZERO), http: http() }) } else { Ok(n) } }
            },
            |attempt, _, message| retries.push((attempt, message.to_string())),
        )
        .await
        .unwrap();
        assert_eq!((ok, retries), (2, vec![(1, "busy".to_string())]));
        // Always transient: max_retries + 1 attempts, retryable, the last status kept.
        let g = with_retries(&config, || async { Err::<(), _>(Failure::Transient { message: "busy".into(), retry_after: None, http: http() }) }, |_, _, _| {}).await.unwrap_err();
        assert_eq!((g.attempts, g.retryable, g.http.map(|h| h.status)), (3, true, Some(429)));
        assert!(g.message.contains("gave up after 3 attempts"), "{}", g.message);
        // Permanent: one attempt, not retryable.
        let g = with_retries(&config, || async { Err::<(), _>(Failure::permanent("bad key".into())) }, |_, _, _| {}).await.unwrap_err();
        assert_eq!((g.attempts, g.retryable, g.message.as_str()), (1, false, "bad key"));
    }
}
