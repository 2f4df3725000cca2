//! Requests to the judge's server: blocking (the host calls rewards on its blocking threads),
//! at most `requests_per_minute`, retried after a 429, a 5xx or a dropped connection with
//! the server's `Retry-After` or an exponential backoff.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

/// An OpenAI-compatible chat endpoint.
pub struct Client {
    agent: ureq::Agent,
    url: String,
    api_key: Option<String>,
    max_retries: u32,
    /// The earliest time the next request may start, when rate-limited.
    next_start: Option<(Mutex<Instant>, Duration)>,
}

/// Why a request failed for good.
#[derive(Debug)]
pub struct Failure(pub String);

impl Client {
    /// A client for `base_url` (up to `/v1`).
    pub fn new(base_url: &str, api_key: Option<String>, timeout: Duration, max_retries: u32, requests_per_minute: Option<f64>) -> Client {
        Client {
            agent: ureq::AgentBuilder::new().timeout(timeout).build(),
            url: format!("{}/chat/completions", base_url.trim_end_matches('/')),
            api_key,
            max_retries,
            next_start: requests_per_minute.filter(|r| *r > 0.0).map(|r| (Mutex::new(Instant::now()), Duration::from_secs_f64(60.0 / r))),
        }
    }

    /// Waits for the rate limit's next slot.
    fn pace(&self) {
        if let Some((next, gap)) = &self.next_start {
            let wait = {
                let mut next = next.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                let start = (*next).max(now);
                *next = start + *gap;
                start - now
            };
            std::thread::sleep(wait);
        }
    }

    /// Posts `body`; returns the parsed response of the first success.
    pub fn chat(&self, body: &Value) -> Result<Value, Failure> {
        let mut attempt = 0;
        loop {
            self.pace();
            attempt += 1;
            let mut req = self.agent.post(&self.url).set("content-type", "application/json");
            if let Some(k) = &self.api_key {
                req = req.set("authorization", &format!("Bearer {k}"));
            }
            let (retry, wait, why) = match req.send_string(&body.to_string()) {
                Ok(resp) => {
                    let text = resp.into_string().map_err(|e| Failure(format!("reading the judge's reply from {}: {e}", self.url)))?;
                    return serde_json::from_str(&text).map_err(|e| Failure(format!("the judge at {} replied with invalid JSON: {e}", self.url)));
                }
                Err(ureq::Error::Status(code, resp)) => {
                    let after = resp.header("retry-after").and_then(|v| v.trim().parse::<f64>().ok()).filter(|s| s.is_finite() && *s >= 0.0);
                    let text = resp.into_string().unwrap_or_default();
                    let retry = code == 429 || code >= 500;
                    (retry, after.map(Duration::from_secs_f64), format!("HTTP {code}: {}", text.chars().take(300).collect::<String>()))
                }
                Err(e) => (true, None, e.to_string()),
            };
            if !retry || attempt > self.max_retries {
                let tries = if retry { format!(" after {attempt} attempts") } else { String::new() };
                return Err(Failure(format!("the judge at {} failed{tries}: {why}", self.url)));
            }
            let backoff = Duration::from_millis(500u64.saturating_mul(1 << (attempt - 1).min(6)));
            std::thread::sleep(wait.unwrap_or(backoff).min(Duration::from_secs(600)));
        }
    }
}
