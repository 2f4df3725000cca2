//! The OpenAI-compatible HTTP Student against local servers that misbehave in every way the
//! wire allows: it retries or fails cleanly, never hangs, and keeps the answers it paid for.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wst_openai::OpenAiConfig;
use wst_openai::OpenAiStudent;
use wst_sdk::student::{CachedStudent, ResponseCache};
use wst_sdk::types::Price;
use wst_sdk::{ChatMessage, SamplingParams, Student, StudentRequest};
use wst_tests::openai_mock::{MockServer, Reply, echo_choices};

fn config(urls: &[String]) -> OpenAiConfig {
    OpenAiConfig { base_urls: urls.to_vec(), api_key_env: None, max_retries: 4, timeout_secs: 5.0, backoff_base_secs: 0.01, backoff_max_secs: 0.05, ..Default::default() }
}

fn request(n: usize, seed: Option<u64>) -> StudentRequest {
    StudentRequest { messages: vec![ChatMessage::user("What is 2+2?")], n, params: SamplingParams { seed, max_tokens: 32, ..Default::default() } }
}

fn texts(a: &[wst_sdk::StudentSample]) -> Vec<String> {
    a.iter().map(|s| s.text.clone()).collect()
}

#[tokio::test]
async fn n_answers_in_one_request_with_key_usage_and_cost() {
    let server = MockServer::start(Duration::ZERO, |_, b| echo_choices(b, true)).await;
    // SAFETY: the variable is unique to this test; no other thread reads it.
    unsafe { std::env::set_var("WST_TEST_OPENAI_KEY_1", "sk-secret-123") };
    let mut cfg = config(&[server.base_url()]);
    cfg.api_key_env = Some("WST_TEST_OPENAI_KEY_1".into());
    cfg.prices.insert("m".into(), Price { input: 1.0, output: 2.0 });
    let s = OpenAiStudent::new("m", &cfg).unwrap();
    assert!(!format!("{s:?}").contains("sk-secret"), "the key never appears in Debug output");
    let answers = s.generate(&request(3, Some(7))).await.unwrap();
    assert_eq!(texts(&answers), ["s7-0", "s7-1", "s7-2"]);
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body["n"], 3);
    assert_eq!(seen[0].body["seed"], 7);
    assert_eq!(seen[0].body["max_tokens"], 32);
    assert_eq!(seen[0].body["model"], "m");
    assert!(seen[0].body.get("top_k").is_none(), "top_k is not sent to OpenAI unless set");
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer sk-secret-123"));
    let u = s.usage();
    assert_eq!((u.requests, u.answers, u.prompt_tokens, u.completion_tokens), (1, 3, 10, 15));
    assert!((u.cost_usd - (10.0 * 1.0 + 15.0 * 2.0) / 1e6).abs() < 1e-15);
    assert_eq!(answers.iter().map(|a| a.usage.completion_tokens).sum::<u64>(), 15);
}

#[tokio::test]
async fn a_server_that_ignores_n_is_fanned_out_with_seed_offsets() {
    let server = MockServer::start(Duration::ZERO, |_, b| echo_choices(b, false)).await;
    let s = OpenAiStudent::new("m", &config(&[server.base_url()])).unwrap();
    assert!(s.capabilities().native_n);
    let answers = s.generate(&request(4, Some(10))).await.unwrap();
    let mut t = texts(&answers);
    t.sort();
    assert_eq!(t, ["s10-0", "s11-0", "s12-0", "s13-0"]);
    assert_eq!(server.requests(), 4, "the first answer is kept, three more are asked for");
    assert!(!s.capabilities().native_n, "the backend remembers the server ignores n");
    // Next time it fans out straight away.
    assert_eq!(s.generate(&request(2, Some(20))).await.unwrap().len(), 2);
    assert_eq!(server.requests(), 6);
}

#[tokio::test]
async fn retry_after_is_honoured_on_429() {
    let server =
        MockServer::start(Duration::ZERO, |i, b| if i == 0 { Reply::error(429, "slow down", Some("rate_limit_exceeded"), &[("retry-after", "1")]) } else { echo_choices(b, true) })
            .await;
    let s = OpenAiStudent::new("m", &config(&[server.base_url()])).unwrap();
    let t0 = Instant::now();
    let answers = s.generate(&request(2, Some(1))).await.unwrap();
    assert_eq!(answers.len(), 2);
    assert!(t0.elapsed() >= Duration::from_millis(950), "waited {:?}, the server asked for 1 s", t0.elapsed());
    assert_eq!(server.requests(), 2);
}

#[tokio::test]
async fn errors_500_malformed_json_truncated_bodies_and_hangs_are_retried() {
    let server = MockServer::start(Duration::ZERO, |i, b| match i {
        0 => Reply::error(500, "internal", None, &[]),
        1 => Reply::Malformed,
        2 => Reply::Truncated,
        3 => Reply::Hang,
        _ => echo_choices(b, true),
    })
    .await;
    let mut cfg = config(&[server.base_url()]);
    cfg.timeout_secs = 0.5;
    let s = OpenAiStudent::new("m", &cfg).unwrap();
    let t0 = Instant::now();
    let answers = s.generate(&request(2, Some(3))).await.unwrap();
    assert_eq!(texts(&answers), ["s3-0", "s3-1"]);
    assert_eq!(server.requests(), 5);
    assert!(t0.elapsed() < Duration::from_secs(4), "a hang costs one timeout, not forever: {:?}", t0.elapsed());
    assert_eq!(s.usage().requests, 5);
}

#[tokio::test]
async fn credentials_in_a_base_url_never_reach_errors_or_debug_output() {
    let server = MockServer::start(Duration::ZERO, |_, _| Reply::error(400, "bad request", None, &[])).await;
    let url = server.base_url().replace("http://", "http://alice:hunter2@");
    let s = OpenAiStudent::new("m", &config(&[url])).unwrap();
    let err = s.generate(&request(1, None)).await.unwrap_err().to_string();
    assert!(err.contains("bad request") && err.contains("***@127.0.0.1") && !err.contains("hunter2"), "{err}");
    assert!(!format!("{s:?}").contains("hunter2"));
    // A server that cannot be reached: reqwest's own error names the URL too.
    let gone = OpenAiStudent::new("m", &OpenAiConfig { max_retries: 0, ..config(&["http://alice:hunter2@127.0.0.1:9/v1".into()]) }).unwrap();
    let err = gone.generate(&request(1, None)).await.unwrap_err().to_string();
    assert!(!err.contains("hunter2"), "{err}");
}

#[tokio::test]
async fn permanent_errors_fail_at_once_with_the_servers_message() {
    for (reply, expect) in [
        (Reply::error(401, "Incorrect API key provided", Some("invalid_api_key"), &[]), "Incorrect API key provided"),
        (Reply::error(400, "max_tokens is too large", None, &[]), "max_tokens is too large"),
        (Reply::error(429, "You exceeded your current quota", Some("insufficient_quota"), &[]), "exceeded your current quota"),
    ] {
        let server = MockServer::start(Duration::ZERO, move |_, _| reply.clone()).await;
        let s = OpenAiStudent::new("m", &config(&[server.base_url()])).unwrap();
        let err = s.generate(&request(1, None)).await.unwrap_err().to_string();
        assert!(err.contains(expect), "{err}");
        assert_eq!(server.requests(), 1, "no retry for: {err}");
    }
}

#[tokio::test]
async fn retries_run_out_with_a_clear_error() {
    let server = MockServer::start(Duration::ZERO, |_, _| Reply::error(503, "overloaded", None, &[])).await;
    let mut cfg = config(&[server.base_url()]);
    cfg.max_retries = 2;
    let s = OpenAiStudent::new("m", &cfg).unwrap();
    let err = s.generate(&request(1, None)).await.unwrap_err().to_string();
    assert!(err.contains("overloaded") && err.contains("gave up after 3 attempts"), "{err}");
    assert_eq!(server.requests(), 3);
}

#[tokio::test]
async fn several_base_urls_share_the_load_and_concurrency_is_bounded() {
    let a = MockServer::start(Duration::from_millis(100), |_, b| echo_choices(b, true)).await;
    let b = MockServer::start(Duration::from_millis(100), |_, b| echo_choices(b, true)).await;
    let mut cfg = config(&[a.base_url(), b.base_url()]);
    cfg.max_concurrency = 2;
    let s = Arc::new(OpenAiStudent::new("m", &cfg).unwrap());
    let jobs: Vec<_> = (0..8)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { s.generate(&request(1, Some(i))).await.unwrap() })
        })
        .collect();
    for j in jobs {
        assert_eq!(j.await.unwrap().len(), 1);
    }
    assert_eq!((a.requests(), b.requests()), (4, 4));
    let peak = a.max_in_flight.load(std::sync::atomic::Ordering::SeqCst) + b.max_in_flight.load(std::sync::atomic::Ordering::SeqCst);
    assert!(peak <= 2 + 1, "at most 2 requests in flight overall (peaks add up per server): {peak}");
    assert!(a.max_in_flight.load(std::sync::atomic::Ordering::SeqCst) <= 2);
}

#[tokio::test]
async fn fan_out_keeps_paid_answers_and_the_cache_keeps_them_across_failures() {
    // Ignores n; the sub-request with seed 42 fails twice with 500, then succeeds.
    let failures = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let f = failures.clone();
    let server = MockServer::start(Duration::ZERO, move |_, b| {
        if b["seed"] == 42 && f.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2 {
            return Reply::error(500, "flaky", None, &[]);
        }
        echo_choices(b, false)
    })
    .await;
    let s = OpenAiStudent::new("m", &config(&[server.base_url()])).unwrap();
    let answers = s.generate(&request(3, Some(40))).await.unwrap();
    let mut t = texts(&answers);
    t.sort();
    assert_eq!(t, ["s40-0", "s41-0", "s42-0"]);
    // 1 (n ignored) + 2 fan-out + 2 retries of the flaky one: nothing paid for is asked again.
    assert_eq!(server.requests(), 5);

    // Through the cache: answers survive a later failure and a new process.
    let dir = tempfile::tempdir().unwrap();
    let down = MockServer::start(Duration::ZERO, |i, b| if i < 1 { echo_choices(b, true) } else { Reply::error(401, "revoked", None, &[]) }).await;
    let cached = CachedStudent::new(Arc::new(OpenAiStudent::new("m", &config(&[down.base_url()])).unwrap()), ResponseCache::open(dir.path()).unwrap());
    assert_eq!(cached.generate(&request(2, Some(5))).await.unwrap().len(), 2);
    assert!(cached.generate(&request(3, Some(5))).await.is_err(), "the third answer needs the (now failing) server");
    let reopened = CachedStudent::new(Arc::new(OpenAiStudent::new("m", &config(&[down.base_url()])).unwrap()), ResponseCache::open(dir.path()).unwrap());
    assert_eq!(texts(&reopened.generate(&request(2, Some(5))).await.unwrap()), ["s5-0", "s5-1"]);
}

/// A response body over `max_response_bytes` fails the request instead of being read whole.
#[tokio::test]
async fn an_oversized_body_is_refused_without_reading_it_whole() {
    let server = MockServer::start(Duration::ZERO, |_, _| Reply::choices(&["x".repeat(200_000)])).await;
    let s = OpenAiStudent::new("m", &OpenAiConfig { max_response_bytes: 100_000, ..config(&[server.base_url()]) }).unwrap();
    let err = s.generate(&request(1, None)).await.unwrap_err().to_string();
    assert!(err.contains("max_response_bytes = 100000"), "{err}");
    assert_eq!(server.requests(), 1, "not retried");
    let ok = OpenAiStudent::new("m", &config(&[server.base_url()])).unwrap();
    assert_eq!(ok.generate(&request(1, None)).await.unwrap()[0].text.len(), 200_000);
}

/// OpenAI's conventions: `max_completion_tokens` (o-series and gpt-5 reject `max_tokens`),
/// `max_tokens` for other servers, and the organisation and project headers from the
/// environment.
#[tokio::test]
async fn token_limit_field_and_organisation_headers() {
    let server = MockServer::start(Duration::ZERO, |_, b| echo_choices(b, true)).await;
    let seen = |i: usize| server.seen.lock().unwrap()[i].clone();
    let auto = OpenAiStudent::new("m", &config(&[server.base_url()])).unwrap();
    auto.generate(&request(1, None)).await.unwrap();
    assert_eq!(seen(0).body["max_tokens"], 32, "a local server gets max_tokens");
    assert!(seen(0).body.get("max_completion_tokens").is_none());
    let new = OpenAiStudent::new("m", &OpenAiConfig { token_limit_field: wst_openai::TokenLimitField::MaxCompletionTokens, ..config(&[server.base_url()]) }).unwrap();
    new.generate(&request(1, None)).await.unwrap();
    assert_eq!(seen(1).body["max_completion_tokens"], 32);
    assert!(seen(1).body.get("max_tokens").is_none());
    // SAFETY: no other test of this binary reads these two variables.
    unsafe {
        std::env::set_var("OPENAI_ORG_ID", "org-123");
        std::env::set_var("OPENAI_PROJECT_ID", "proj-9");
    }
    let org = OpenAiStudent::new("m", &config(&[server.base_url()])).unwrap();
    unsafe {
        std::env::remove_var("OPENAI_ORG_ID");
        std::env::remove_var("OPENAI_PROJECT_ID");
    }
    org.generate(&request(1, None)).await.unwrap();
    let h = seen(2).headers;
    assert!(h.contains(&("openai-organization".into(), "org-123".into())) && h.contains(&("openai-project".into(), "proj-9".into())), "{h:?}");
}

/// A mock of the Files and Batches endpoints: the uploaded JSONL is answered line by line
/// (the request whose seed is 2 fails in the error file), and the batch reports
/// `in_progress` on its first poll.
fn batch_server_script() -> impl Fn(usize, &wst_tests::openai_mock::Seen) -> Reply + Send + Sync + 'static {
    use serde_json::json;
    let uploaded = std::sync::Mutex::new(String::new());
    let polls = std::sync::atomic::AtomicUsize::new(0);
    move |_, seen| {
        let ok = |body: serde_json::Value| Reply::Json { status: 200, headers: vec![], body };
        match (seen.method.as_str(), seen.path.as_str()) {
            ("POST", "/v1/files") => {
                let raw = String::from_utf8_lossy(&seen.raw).to_string();
                assert!(raw.contains("name=\"purpose\"") && raw.contains("batch"), "a multipart upload with purpose=batch");
                let jsonl: String = raw.lines().filter(|l| l.starts_with("{\"custom_id\"")).map(|l| format!("{l}\n")).collect();
                *uploaded.lock().unwrap() = jsonl;
                ok(json!({"id": "file-in", "object": "file", "purpose": "batch"}))
            }
            ("POST", "/v1/batches") => {
                assert_eq!(seen.body["input_file_id"], "file-in");
                assert_eq!(seen.body["endpoint"], "/v1/chat/completions");
                ok(json!({"id": "batch-1", "status": "validating"}))
            }
            ("GET", "/v1/batches/batch-1") => {
                let status = if polls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 { "in_progress" } else { "completed" };
                ok(json!({"id": "batch-1", "status": status, "output_file_id": "file-out", "error_file_id": "file-err"}))
            }
            ("GET", p) if p.starts_with("/v1/files/file-") => {
                let want_errors = p.contains("file-err");
                let mut out = String::new();
                for line in uploaded.lock().unwrap().lines() {
                    let v: serde_json::Value = serde_json::from_str(line).unwrap();
                    assert_eq!((v["method"].as_str(), v["url"].as_str()), (Some("POST"), Some("/v1/chat/completions")));
                    let failed = v["body"]["seed"] == 2;
                    if failed != want_errors {
                        continue;
                    }
                    let row = if failed {
                        json!({"custom_id": v["custom_id"], "response": {"status_code": 400, "body": {"error": {"message": "bad request for seed 2"}}}})
                    } else {
                        let Reply::Json { body, .. } = echo_choices(&v["body"], true) else { unreachable!() };
                        json!({"custom_id": v["custom_id"], "response": {"status_code": 200, "body": body}})
                    };
                    out.push_str(&format!("{row}\n"));
                }
                Reply::Text(out)
            }
            other => panic!("unexpected request {other:?}"),
        }
    }
}

#[tokio::test]
async fn batch_mode_uploads_polls_and_fills_the_cache() {
    let server = MockServer::start_routed(Duration::ZERO, batch_server_script()).await;
    let mut cfg = config(&[server.base_url()]);
    cfg.batch = true;
    cfg.batch_poll_secs = 0.01;
    let raw = Arc::new(OpenAiStudent::new("m", &cfg).unwrap());
    assert!(raw.prefers_bulk());
    let dir = tempfile::tempdir().unwrap();
    let cached = CachedStudent::new(raw, ResponseCache::open(dir.path()).unwrap());
    let requests = vec![request(3, Some(1)), request(2, Some(2)), request(1, Some(3))];
    let results = cached.generate_many(&requests).await;
    assert_eq!(texts(results[0].as_ref().unwrap()), ["s1-0", "s1-1", "s1-2"]);
    let err = results[1].as_ref().unwrap_err().to_string();
    assert!(err.contains("HTTP 400") && err.contains("bad request for seed 2"), "{err}");
    assert_eq!(texts(results[2].as_ref().unwrap()), ["s3-0"]);
    let paths: Vec<String> = server.seen.lock().unwrap().iter().map(|s| format!("{} {}", s.method, s.path)).collect();
    assert_eq!(
        paths,
        ["POST /v1/files", "POST /v1/batches", "GET /v1/batches/batch-1", "GET /v1/batches/batch-1", "GET /v1/files/file-out/content", "GET /v1/files/file-err/content"]
    );
    // The answers are in the cache: asking again sends nothing.
    let before = server.requests();
    assert_eq!(texts(&cached.generate(&requests[0]).await.unwrap()), ["s1-0", "s1-1", "s1-2"]);
    assert_eq!(texts(&cached.generate_many(&requests[2..]).await[0].as_ref().unwrap().clone()), ["s3-0"]);
    assert_eq!(server.requests(), before);
}

#[tokio::test]
async fn a_failed_batch_fails_each_request_with_the_reason() {
    use serde_json::json;
    let server = MockServer::start_routed(Duration::ZERO, |_, seen| match (seen.method.as_str(), seen.path.as_str()) {
        ("POST", "/v1/files") => Reply::Json { status: 200, headers: vec![], body: json!({"id": "file-in"}) },
        ("POST", "/v1/batches") => {
            Reply::Json { status: 200, headers: vec![], body: json!({"id": "b", "status": "failed", "errors": {"data": [{"message": "the model `m` does not support batches"}]}}) }
        }
        other => panic!("unexpected request {other:?}"),
    })
    .await;
    let mut cfg = config(&[server.base_url()]);
    cfg.batch = true;
    let s = OpenAiStudent::new("m", &cfg).unwrap();
    let results = s.generate_many(&[request(1, Some(1)), request(1, Some(2))]).await;
    for r in results {
        let e = r.unwrap_err().to_string();
        assert!(e.contains("failed") && e.contains("does not support batches"), "{e}");
    }
}

#[tokio::test]
async fn a_batch_interrupted_during_the_wait_is_polled_again_not_paid_twice() {
    use serde_json::json;
    use std::sync::atomic::{AtomicBool, Ordering};
    let released = Arc::new(AtomicBool::new(false));
    let r = released.clone();
    let server = MockServer::start_routed(Duration::ZERO, move |_, seen| {
        let ok = |body: serde_json::Value| Reply::Json { status: 200, headers: vec![], body };
        match (seen.method.as_str(), seen.path.as_str()) {
            ("POST", "/v1/files") => ok(json!({"id": "file-in"})),
            ("POST", "/v1/batches") => ok(json!({"id": "batch-7", "status": "validating"})),
            ("GET", "/v1/batches/batch-7") => {
                let status = if r.load(Ordering::SeqCst) { "completed" } else { "in_progress" };
                ok(json!({"id": "batch-7", "status": status, "output_file_id": "file-out"}))
            }
            ("GET", "/v1/files/file-out/content") => {
                // Larger than max_response_bytes: result files are streamed, not capped.
                let rows: String = (0..2)
                    .map(|i| {
                        let body = json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": format!("answer {i} {}", "x".repeat(400))}, "finish_reason": "stop"}],
                                          "usage": {"prompt_tokens": 3, "completion_tokens": 7}});
                        format!("{}\n", json!({"custom_id": format!("wst-{i}"), "response": {"status_code": 200, "body": body}}))
                    })
                    .collect();
                Reply::Text(rows)
            }
            other => panic!("unexpected request {other:?}"),
        }
    })
    .await;
    let mut cfg = config(&[server.base_url()]);
    cfg.batch = true;
    cfg.batch_poll_secs = 0.01;
    cfg.max_response_bytes = 300;
    let dir = tempfile::tempdir().unwrap();
    let requests = vec![request(1, Some(1)), request(1, Some(2))];
    let student = || CachedStudent::new(Arc::new(OpenAiStudent::new("m", &cfg).unwrap()), ResponseCache::open(dir.path()).unwrap());
    // The first run is stopped while it waits for the batch, as a kill would stop it.
    let first = student();
    let reqs = requests.clone();
    let waiting = tokio::spawn(async move { first.generate_many(&reqs).await });
    while !server.seen.lock().unwrap().iter().any(|s| s.path == "/v1/batches/batch-7") {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    waiting.abort();
    let _ = waiting.await;
    let journal = std::fs::read_to_string(dir.path().join("openai-batches.jsonl")).unwrap();
    assert!(journal.contains("batch-7") && journal.contains("submitted"), "{journal}");
    // The resumed run polls batch-7 and reads its results; it uploads and creates nothing.
    released.store(true, Ordering::SeqCst);
    let results = student().generate_many(&requests).await;
    assert!(results[1].as_ref().unwrap()[0].text.starts_with("answer 1 "), "{:?}", results[1]);
    assert_eq!(results[0].as_ref().unwrap()[0].usage.completion_tokens, 7);
    let seen: Vec<String> = server.seen.lock().unwrap().iter().map(|s| format!("{} {}", s.method, s.path)).collect();
    assert_eq!(seen.iter().filter(|p| p.as_str() == "POST /v1/batches").count(), 1, "{seen:?}");
    assert_eq!(seen.iter().filter(|p| p.as_str() == "POST /v1/files").count(), 1, "{seen:?}");
    // Read and cached: a third run asks nothing, and the journal marks the batch done.
    let before = server.requests();
    assert_eq!(student().generate_many(&requests).await.len(), 2);
    assert_eq!(server.requests(), before);
    assert!(std::fs::read_to_string(dir.path().join("openai-batches.jsonl")).unwrap().contains("\"done\""));
}

#[tokio::test]
async fn errors_carry_the_status_code_retryability_and_attempts_an_app_branches_on() {
    use wst_sdk::Error;
    // 401 with a server code: permanent, one attempt.
    let server = MockServer::start(Duration::ZERO, |_, _| Reply::error(401, "Incorrect API key provided", Some("invalid_api_key"), &[])).await;
    let err = OpenAiStudent::new("m", &config(&[server.base_url()])).unwrap().generate(&request(1, None)).await.unwrap_err();
    let Error::Http { status, code, retryable, attempts, .. } = &err else { panic!("{err:?}") };
    assert_eq!((*status, code.as_deref(), *retryable, *attempts), (Some(401), Some("invalid_api_key"), false, 1));
    // 429 until the retries run out: retryable, max_retries + 1 attempts.
    let server = MockServer::start(Duration::ZERO, |_, _| Reply::error(429, "Rate limit reached", Some("rate_limit_exceeded"), &[("retry-after-ms", "1")])).await;
    let err = OpenAiStudent::new("m", &OpenAiConfig { max_retries: 2, ..config(&[server.base_url()]) }).unwrap().generate(&request(1, None)).await.unwrap_err();
    let Error::Http { status, code, retryable, attempts, .. } = &err else { panic!("{err:?}") };
    assert_eq!((*status, code.as_deref(), *retryable, *attempts), (Some(429), Some("rate_limit_exceeded"), true, 3));
    // 400 with the server's code for a bad parameter.
    let server = MockServer::start(Duration::ZERO, |_, _| Reply::error(400, "max_tokens is too large", Some("invalid_value"), &[])).await;
    let err = OpenAiStudent::new("m", &config(&[server.base_url()])).unwrap().generate(&request(1, None)).await.unwrap_err();
    assert!(matches!(&err, Error::Http { status: Some(400), code: Some(c), retryable: false, .. } if c == "invalid_value"), "{err:?}");
    // No answer at all: no status, retryable.
    let gone = OpenAiStudent::new("m", &OpenAiConfig { max_retries: 0, ..config(&["http://127.0.0.1:9/v1".into()]) }).unwrap();
    let err = gone.generate(&request(1, None)).await.unwrap_err();
    assert!(matches!(&err, Error::Http { status: None, retryable: true, attempts: 1, .. }), "{err:?}");
}

/// Log lines written while `f` runs on this thread (a current-thread runtime keeps every task
/// on it).
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A re-pointed alias: the server reports another `model` or `system_fingerprint` than the one
/// the cache's answers came from, and the run says so (issue: cached answers from the old model).
#[tokio::test]
async fn a_change_of_the_reported_model_is_recorded_and_warned_about() {
    use wst_openai::{SERVED_FILE, Served};
    let log = Captured::default();
    let writer = log.clone();
    let _guard = tracing::subscriber::set_default(tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish());
    let version = std::sync::Arc::new(std::sync::Mutex::new("qwen-7b"));
    let v = version.clone();
    let server = MockServer::start(Duration::ZERO, move |_, body| {
        let mut reply = wst_tests::openai_mock::echo_choices(body, true);
        if let Reply::Json { body, .. } = &mut reply {
            body["model"] = serde_json::json!(*v.lock().unwrap());
            body["system_fingerprint"] = serde_json::json!(format!("fp_{}", v.lock().unwrap()));
        }
        reply
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let student = || {
        let s = OpenAiStudent::new("my-alias", &OpenAiConfig { base_urls: vec![server.base_url()], api_key_env: None, ..Default::default() }).unwrap();
        CachedStudent::new(std::sync::Arc::new(s), ResponseCache::open(dir.path()).unwrap())
    };
    let ask = |seed: u64| StudentRequest { messages: vec![ChatMessage::user("hi")], n: 1, params: SamplingParams { seed: Some(seed), ..Default::default() } };
    student().generate(&ask(1)).await.unwrap();
    let recorded: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.path().join(SERVED_FILE)).unwrap()).unwrap();
    let entry = recorded.as_object().unwrap().values().next().unwrap().clone();
    assert_eq!(serde_json::from_value::<Served>(entry).unwrap(), Served { model: Some("qwen-7b".into()), system_fingerprint: Some("fp_qwen-7b".into()) });
    assert!(!String::from_utf8_lossy(&log.0.lock().unwrap()).contains("another model"), "no change yet");
    // The alias now points at another model; a new run notices on its first answer.
    *version.lock().unwrap() = "llama-8b";
    student().generate(&ask(2)).await.unwrap();
    let text = String::from_utf8_lossy(&log.0.lock().unwrap()).to_string();
    assert!(text.contains("another model") && text.contains("qwen-7b") && text.contains("llama-8b"), "{text}");
}
