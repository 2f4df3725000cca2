//! The OpenAI Batch API (`student.openai.batch = true`): many Chat Completions requests as one
//! JSONL file uploaded to `/files`, a `/batches` job polled until it ends, and the output and
//! error files read back by `custom_id`. Each request gets its own result, so one failed line
//! costs only that request. Every HTTP exchange is retried like a Chat Completions call.

use std::time::Duration;

use serde_json::{Value, json};
use wst_sdk::{Result, StudentRequest, StudentSample};

use crate::OpenAiStudent;
use crate::journal::{self, Journal};
use crate::retry::{self, Failure};

/// Statuses after which a batch changes no more.
const FINAL: [&str; 4] = ["completed", "failed", "expired", "cancelled"];

/// Runs `requests` as one batch; one result per request, in order.
pub(crate) async fn run(s: &OpenAiStudent, requests: &[StudentRequest]) -> Vec<Result<Vec<StudentSample>>> {
    match submit_and_wait(s, requests).await {
        Ok(results) => results,
        Err(e) => {
            let message = e.to_string();
            requests.iter().map(|_| Err(s.error(message.clone()))).collect()
        }
    }
}

async fn submit_and_wait(s: &OpenAiStudent, requests: &[StudentRequest]) -> Result<Vec<Result<Vec<StudentSample>>>> {
    let url = s.base_url();
    let mut jsonl = String::new();
    for (i, r) in requests.iter().enumerate() {
        let line = json!({"custom_id": custom_id(i), "method": "POST", "url": "/v1/chat/completions", "body": s.body(r, r.n, r.params.seed)});
        jsonl.push_str(&line.to_string());
        jsonl.push('\n');
    }
    let journal = s.state_dir().map(Journal::new);
    let content = journal::content_key(url, &jsonl);
    let pending = match &journal {
        Some(j) => j.pending(&content)?,
        None => None,
    };
    let resumed = match pending {
        Some(id) => match exchange(s, "polling the batch", || s.authed(s.client().get(format!("{url}/batches/{id}")))).await {
            Ok(batch) => {
                tracing::info!(student = %s.name_str(), batch = %id, "polling a batch an earlier run submitted (not submitting it again)");
                Some((id, batch))
            }
            Err(e) => {
                // The server no longer knows it: it cannot be resumed, only submitted anew.
                tracing::warn!(student = %s.name_str(), batch = %id, "a batch an earlier run submitted cannot be polled ({e}); submitting anew");
                if let Some(j) = &journal {
                    j.record(&content, &id, "done")?;
                }
                None
            }
        },
        None => None,
    };
    let (id, mut batch) = match resumed {
        Some(r) => r,
        None => {
            let file = exchange(s, "uploading the batch file", || {
                let part = reqwest::multipart::Part::bytes(jsonl.clone().into_bytes()).file_name("wst-batch.jsonl").mime_str("application/jsonl").expect("a valid MIME type");
                let form = reqwest::multipart::Form::new().text("purpose", "batch").part("file", part);
                s.authed(s.client().post(format!("{url}/files")).multipart(form))
            })
            .await?;
            let input_file_id = field(s, &file, "id")?;
            let body = json!({"input_file_id": input_file_id, "endpoint": "/v1/chat/completions", "completion_window": s.config().batch_completion_window});
            let batch = exchange(s, "creating the batch", || s.authed(s.client().post(format!("{url}/batches")).json(&body))).await?;
            let id = field(s, &batch, "id")?;
            // Recorded before the wait: a kill from here on resumes this batch.
            if let Some(j) = &journal {
                j.record(&content, &id, "submitted")?;
            }
            tracing::info!(student = %s.name_str(), batch = %id, requests = requests.len(), "batch submitted");
            (id, batch)
        }
    };
    let poll = Duration::from_secs_f64(s.config().batch_poll_secs.max(0.01));
    loop {
        let status = batch["status"].as_str().unwrap_or("").to_string();
        if FINAL.contains(&status.as_str()) {
            break;
        }
        tokio::time::sleep(poll).await;
        batch = exchange(s, "polling the batch", || s.authed(s.client().get(format!("{url}/batches/{id}")))).await?;
        tracing::debug!(batch = %id, status = batch["status"].as_str().unwrap_or("?"), counts = %batch["request_counts"], "batch status");
    }
    let status = batch["status"].as_str().unwrap_or("").to_string();
    let mut results: Vec<Option<Result<Vec<StudentSample>>>> = requests.iter().map(|_| None).collect();
    for key in ["output_file_id", "error_file_id"] {
        let Some(file_id) = batch[key].as_str().filter(|f| !f.is_empty()) else { continue };
        // Streamed to a file and read line by line: a result file can be far larger than
        // any one response the Student would accept.
        let file = download(s, &format!("{url}/files/{file_id}/content")).await?;
        let reader = std::io::BufReader::new(file.reopen().map_err(|e| s.error(format!("reading batch {id} {key}: {e}")))?);
        for (n, line) in std::io::BufRead::lines(reader).enumerate() {
            let line = line.map_err(|e| s.error(format!("batch {id} {key} line {}: {e}", n + 1)))?;
            if line.trim().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(&line).map_err(|e| s.error(format!("batch {id} {key} line {}: {e}", n + 1)))?;
            let Some(i) = v["custom_id"].as_str().and_then(parse_custom_id).filter(|&i| i < requests.len()) else {
                return Err(s.error(format!("batch {id} {key} line {}: unknown custom_id {}", n + 1, v["custom_id"])));
            };
            results[i] = Some(line_result(s, &v, requests[i].n));
        }
    }
    if let Some(j) = &journal {
        j.record(&content, &id, "done")?;
    }
    let failed = batch["errors"]["data"].as_array().map(|a| a.iter().filter_map(|e| e["message"].as_str()).collect::<Vec<_>>().join("; ")).unwrap_or_default();
    Ok(results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                let why = if failed.is_empty() { String::new() } else { format!(": {failed}") };
                Err(s.error(format!("batch {id} ended `{status}` without a result for this request{why}")))
            })
        })
        .collect())
}

/// One output or error line: the answers, or the error the server gave for that request.
fn line_result(s: &OpenAiStudent, v: &Value, n: usize) -> Result<Vec<StudentSample>> {
    let code = v["response"]["status_code"].as_u64().unwrap_or(0);
    if code == 200 {
        let parsed: crate::wire::ChatResponse =
            serde_json::from_value(v["response"]["body"].clone()).map_err(|e| s.error(format!("a batch result is not a chat completion: {e}")))?;
        let answers = s.answers(parsed).map_err(|m| s.error(m))?;
        if answers.len() < n {
            return Err(s.error(format!("the batch returned {} of {n} answers", answers.len())));
        }
        return Ok(answers.into_iter().take(n).collect());
    }
    let message = v["response"]["body"]["error"]["message"].as_str().or_else(|| v["error"]["message"].as_str()).unwrap_or("no message");
    Err(s.error(format!("batch request failed (HTTP {code}): {message}")))
}

fn custom_id(i: usize) -> String {
    format!("wst-{i}")
}

fn parse_custom_id(id: &str) -> Option<usize> {
    id.strip_prefix("wst-")?.parse().ok()
}

fn field(s: &OpenAiStudent, v: &Value, name: &str) -> Result<String> {
    v[name].as_str().map(str::to_string).ok_or_else(|| s.error(format!("the server's answer has no `{name}`: {v}")))
}

/// Sends what `build` makes until it succeeds, fails permanently or runs out of retries;
/// returns the JSON body.
async fn exchange(s: &OpenAiStudent, what: &str, build: impl Fn() -> reqwest::RequestBuilder) -> Result<Value> {
    let bytes = with_retries(s, what, build).await?;
    serde_json::from_slice(&bytes).map_err(|e| s.error(format!("{what}: the answer is not JSON ({e})")))
}

/// Streams `url`'s body into a temporary file (no size cap: result files hold every answer of
/// the batch), retrying transient failures from the start.
async fn download(s: &OpenAiStudent, url: &str) -> Result<tempfile::NamedTempFile> {
    retry::with_retries(
        s.config(),
        || download_once(s, url),
        |attempt, _, message| tracing::warn!(student = %s.name_str(), attempt, "downloading batch results: retrying: {}", crate::redact_userinfo(message)),
    )
    .await
    .map_err(|g| s.error(format!("downloading batch results: {}", g.message)))
}

async fn download_once(s: &OpenAiStudent, url: &str) -> std::result::Result<tempfile::NamedTempFile, Failure> {
    use std::io::Write;
    let transient = Failure::transient;
    let mut resp = s.authed(s.client().get(url)).send().await.map_err(|e| transient(e.without_url().to_string()))?;
    let status = resp.status();
    if !status.is_success() {
        let code = status.as_u16();
        let message = format!("HTTP {status}");
        return Err(if code == 429 || code == 408 || status.is_server_error() { transient(message) } else { Failure::permanent(message) });
    }
    let mut file = tempfile::NamedTempFile::new().map_err(|e| Failure::permanent(format!("a temporary file for batch results: {e}")))?;
    while let Some(chunk) = resp.chunk().await.map_err(|e| transient(format!("body cut short: {}", e.without_url())))? {
        file.write_all(&chunk).map_err(|e| Failure::permanent(format!("writing batch results to {}: {e}", file.path().display())))?;
    }
    file.flush().map_err(|e| Failure::permanent(format!("writing batch results: {e}")))?;
    Ok(file)
}

async fn with_retries(s: &OpenAiStudent, what: &str, build: impl Fn() -> reqwest::RequestBuilder) -> Result<Vec<u8>> {
    retry::with_retries(
        s.config(),
        || s.read_body(build()),
        |attempt, _, message| tracing::warn!(student = %s.name_str(), attempt, "{what}: retrying: {}", crate::redact_userinfo(message)),
    )
    .await
    .map_err(|g| s.http_error(format!("{what}: {}", g.message), g.http, g.retryable, g.attempts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_ids_round_trip() {
        assert_eq!(parse_custom_id(&custom_id(17)), Some(17));
        assert_eq!(parse_custom_id("other-3"), None);
    }
}
