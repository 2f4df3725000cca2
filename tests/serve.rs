//! `wst serve` through HTTP on 127.0.0.1: OpenAI's schema (plain and streamed), the
//! instruction placed as in training and echoed, per-request guidance, batching that changes no
//! answer, the answers `wst eval` gives for the same seeds, and every refusal with its status
//! and OpenAI error body (401, 413, 400, 404, 429, 503, 504), graceful shutdown, metrics. The
//! official `openai` Python client drives it too (tests/fixtures/openai_client.py).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use wst_llamacpp::{LlamaCppConfig, LlamaCppStudent};
use wst_sdk::config::TeacherConfig;
use wst_sdk::eval::{InstructionSource, instructions};
use wst_sdk::respond::eval_student_seed;
use wst_sdk::student::{AnswerDelta, DeltaSink, FinishReason, StudentCapabilities, StudentPrompt, TokenUsage};
use wst_sdk::teacher::{LmTeacher, TeacherOptions};
use wst_sdk::{Pipeline, Query, Result, SamplingParams, Student, StudentRequest, StudentSample, TeacherSampling};
use wst_serve::{ServeOptions, ServedModel, Server};
use wst_tests::tiny::{Arch, write_gguf, write_model};

/// A Student that answers with the conversation it was sent (`[role] content` lines), so a test
/// sees where the instruction went; it waits `delay` first and streams in 5-byte pieces.
struct EchoStudent {
    delay: Duration,
    calls: AtomicUsize,
}

impl EchoStudent {
    fn new(delay: Duration) -> Arc<Self> {
        Arc::new(EchoStudent { delay, calls: AtomicUsize::new(0) })
    }
    fn answer(request: &StudentRequest, i: usize) -> String {
        let convo: Vec<String> = request.messages.iter().map(|m| format!("[{}] {}", m.role, m.content)).collect();
        format!("{}\n#{i} seed={:?} max={}", convo.join("\n"), request.params.seed, request.params.max_tokens)
    }
}

#[async_trait]
impl Student for EchoStudent {
    fn name(&self) -> &str {
        "echo"
    }
    fn capabilities(&self) -> StudentCapabilities {
        StudentCapabilities { native_n: true, max_concurrency: 64 }
    }
    async fn generate(&self, request: &StudentRequest) -> Result<Vec<StudentSample>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        Ok((0..request.n)
            .map(|i| {
                let text = Self::answer(request, i);
                StudentSample {
                    usage: TokenUsage { prompt_tokens: if i == 0 { 11 } else { 0 }, completion_tokens: text.split_whitespace().count() as u64 },
                    text,
                    finish_reason: FinishReason::Stop,
                }
            })
            .collect())
    }
    async fn generate_streaming(&self, request: &StudentRequest, sink: &DeltaSink) -> Result<Vec<StudentSample>> {
        let answers = self.generate(request).await?;
        for (index, a) in answers.iter().enumerate() {
            let chars: Vec<char> = a.text.chars().collect();
            for piece in chars.chunks(5) {
                let _ = sink.send(AnswerDelta { index, text: piece.iter().collect() });
            }
        }
        Ok(answers)
    }
}

/// A tiny Teacher written for the test, primed with "Hint:".
fn teacher(dir: &std::path::Path) -> LmTeacher {
    write_model(dir, Arch::Llama, 3);
    let cfg = TeacherConfig { dtype: "f32".into(), instruction_prefix: "Hint:".into(), ..Default::default() };
    LmTeacher::load(dir.to_str().unwrap(), TeacherOptions { teacher: cfg, seed: 3 }).unwrap()
}

fn teacher_sampling() -> TeacherSampling {
    TeacherSampling { num_generations: 1, temperature: 1.0, top_p: 1.0, top_k: None, max_completion_length: 6, seed: 5, ..Default::default() }
}

fn student_prompt() -> StudentPrompt {
    StudentPrompt { system: Some("Solve it.".into()), template: "{{ query }}{% if instruction %}\n\nTeacher: {{ instruction }}{% endif %}".into() }
}

fn pipeline(dir: &std::path::Path, student: Arc<dyn Student>) -> Pipeline {
    Pipeline::builder()
        .teacher(teacher(dir))
        .student_arc(student)
        .student_prompt(student_prompt())
        .student_sampling(SamplingParams { temperature: 0.7, max_tokens: 24, ..Default::default() })
        .teacher_sampling(teacher_sampling())
        .build()
        .unwrap()
}

/// The llama.cpp Student on a tiny GGUF the test writes (kept while the folder lives).
fn llamacpp_student() -> (tempfile::TempDir, Arc<dyn Student>) {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), Arch::Llama, 11);
    let gguf = write_gguf(dir.path());
    let student: Arc<dyn Student> = Arc::new(LlamaCppStudent::load(&gguf, &LlamaCppConfig::default()).unwrap());
    (dir, student)
}

struct Running {
    base: String,
    server: Server,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(models: Vec<ServedModel>, options: ServeOptions) -> Running {
    let server = Server::new(options);
    server.set_models(models).unwrap();
    start_server(server).await
}

async fn start_server(server: Server) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(server.clone().serve(listener, async move {
        let _ = rx.await;
    }));
    Running { base, server, stop: Some(stop), done }
}

fn served(name: &str, pipeline: Pipeline) -> ServedModel {
    ServedModel { name: name.into(), pipeline: Arc::new(pipeline) }
}

async fn post(base: &str, body: &Value) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = wst_tests::http().post(format!("{base}/v1/chat/completions")).json(body).send().await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    let text = r.text().await.unwrap();
    (status, headers, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn user(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

#[tokio::test]
async fn a_reply_follows_openai_schema_with_the_instruction_placed_as_in_training_and_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let run = start(vec![served("tiny", pipeline(dir.path(), EchoStudent::new(Duration::ZERO)))], ServeOptions::default()).await;
    let (status, headers, body) = post(&run.base, &json!({"model": "tiny", "messages": user("What is 2 + 3?"), "n": 2, "seed": 9, "max_tokens": 40})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "tiny");
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    let instruction = body["wst"]["instruction"].as_str().unwrap().to_string();
    assert!(instruction.starts_with("Hint:"), "{instruction}");
    assert_eq!(headers["x-wst-instruction"].to_str().unwrap(), wst_serve::percent_encode(&instruction));
    let choices = body["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 2);
    for (i, c) in choices.iter().enumerate() {
        assert_eq!(c["index"], i);
        assert_eq!(c["finish_reason"], "stop");
        assert_eq!(c["message"]["role"], "assistant");
        let text = c["message"]["content"].as_str().unwrap();
        // The Student prompt's system message, then the query with the instruction by the
        // template, and the request's sampling (seed, max_tokens) reached the Student.
        let expected = format!("[system] Solve it.\n[user] What is 2 + 3?\n\nTeacher: {instruction}\n#{i} seed=Some(9) max=40");
        assert_eq!(text, expected);
    }
    let u = &body["usage"];
    assert_eq!(u["prompt_tokens"], 11);
    assert_eq!(u["total_tokens"].as_u64().unwrap(), u["prompt_tokens"].as_u64().unwrap() + u["completion_tokens"].as_u64().unwrap());
    assert_eq!(u["wst"]["student_completion_tokens"], u["completion_tokens"]);
    assert!(u["wst"]["teacher_prompt_tokens"].as_u64().unwrap() > 0 && u["wst"]["teacher_completion_tokens"].as_u64().unwrap() > 0, "{u}");

    // A conversation keeps its own system message and earlier turns; the instruction goes to
    // the last user turn.
    let convo = json!([{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}, {"role": "user", "content": [{"type": "text", "text": "What is 1 + 1?"}]}]);
    let (status, _, body) = post(&run.base, &json!({"model": "tiny", "messages": convo, "seed": 1})).await;
    assert_eq!(status, 200, "{body}");
    let text = body["choices"][0]["message"]["content"].as_str().unwrap();
    let instruction = body["wst"]["instruction"].as_str().unwrap();
    assert!(text.starts_with(&format!("[system] Be terse.\n[user] Hi\n[assistant] Hello\n[user] What is 1 + 1?\n\nTeacher: {instruction}\n")), "{text}");
}

#[tokio::test]
async fn guidance_can_be_switched_off_or_fixed_per_request_and_echo_switched_off() {
    let dir = tempfile::tempdir().unwrap();
    let options = ServeOptions { echo_instruction: false, ..Default::default() };
    let run = start(vec![served("tiny", pipeline(dir.path(), EchoStudent::new(Duration::ZERO)))], options).await;
    let (status, headers, body) = post(&run.base, &json!({"model": "tiny", "messages": user("Q?"), "wst": {"instruct": false}})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["choices"][0]["message"]["content"].as_str().unwrap().starts_with("[user] Q?\n#0"), "untouched: {body}");
    assert_eq!(body["usage"]["wst"]["teacher_completion_tokens"], 0);
    assert!(body.get("wst").is_none() && headers.get("x-wst-instruction").is_none(), "echo is off");
    let (status, _, body) = post(&run.base, &json!({"model": "tiny", "messages": user("Q?"), "wst": {"instruction": "Use 50 tokens."}})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["choices"][0]["message"]["content"].as_str().unwrap().starts_with("[system] Solve it.\n[user] Q?\n\nTeacher: Use 50 tokens.\n"), "{body}");
    let (status, _, body) = post(&run.base, &json!({"model": "tiny", "messages": user("Q?"), "wst": {"instruct": false, "instruction": "x"}})).await;
    assert_eq!((status, body["error"]["param"].as_str()), (400, Some("wst.instruction")), "{body}");
    let (status, _, body) = post(&run.base, &json!({"model": "tiny", "messages": user("Q?"), "wst": {"teacher": 1}})).await;
    assert_eq!(status, 400, "unknown wst fields are refused: {body}");
}

#[tokio::test]
async fn batching_changes_no_instruction_and_the_same_key_repeats_it() {
    let dir = tempfile::tempdir().unwrap();
    let options = ServeOptions { batch_wait: Duration::from_millis(200), max_batch: 8, ..Default::default() };
    let run = start(vec![served("tiny", pipeline(dir.path(), EchoStudent::new(Duration::ZERO)))], options).await;
    let body = |i: usize| json!({"model": "tiny", "messages": user(&format!("Problem {i}: what is {i} + {i}?")), "wst": {"query_id": format!("q{i}")}});
    // One at a time: batches of one.
    let mut alone = Vec::new();
    for i in 0..6 {
        let (status, _, b) = post(&run.base, &body(i)).await;
        assert_eq!(status, 200, "{b}");
        alone.push(b["wst"]["instruction"].as_str().unwrap().to_string());
    }
    // All at once: they share batches.
    let together = futures::future::join_all((0..6).map(|i| {
        let (base, b) = (run.base.clone(), body(i));
        async move { post(&base, &b).await.2["wst"]["instruction"].as_str().unwrap().to_string() }
    }))
    .await;
    assert_eq!(alone, together, "an instruction does not depend on its batch");
    let metrics = wst_tests::http().get(format!("{}/metrics", run.base)).send().await.unwrap().text().await.unwrap();
    let batched_rows: f64 = metrics.lines().find(|l| l.starts_with("wst:teacher_batch_size_sum")).unwrap().rsplit(' ').next().unwrap().parse().unwrap();
    let batches: f64 = metrics.lines().find(|l| l.starts_with("wst:teacher_batch_size_count")).unwrap().rsplit(' ').next().unwrap().parse().unwrap();
    assert_eq!(batched_rows, 12.0, "{metrics}");
    assert!(batches < 12.0, "concurrent requests shared a Teacher batch: {batches} batches for 12 requests");
    assert!(alone.iter().collect::<std::collections::BTreeSet<_>>().len() > 1, "different keys, different streams: {alone:?}");
}

#[tokio::test]
async fn streaming_sends_openai_chunks_one_finish_per_choice_usage_and_done() {
    let dir = tempfile::tempdir().unwrap();
    let run = start(vec![served("tiny", pipeline(dir.path(), EchoStudent::new(Duration::ZERO)))], ServeOptions::default()).await;
    let request = json!({"model": "tiny", "messages": user("What is 4 + 4?"), "n": 2, "seed": 3, "wst": {"query_id": "a"}});
    let (_, _, plain) = post(&run.base, &request).await;
    let mut streamed = request.clone();
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let r = wst_tests::http().post(format!("{}/v1/chat/completions", run.base)).json(&streamed).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    assert!(r.headers().get("x-wst-instruction").is_some());
    let text = r.text().await.unwrap();
    let events: Vec<&str> =
        text.split("\n\n").filter(|e| !e.trim().is_empty()).map(|e| e.strip_prefix("data: ").unwrap_or_else(|| panic!("not an SSE data event: {e:?}"))).collect();
    assert_eq!(*events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1].iter().map(|e| serde_json::from_str(e).unwrap()).collect();
    let (mut content, mut finishes, mut roles) = (vec![String::new(); 2], vec![0; 2], vec![0; 2]);
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["id"], chunks[0]["id"], "one id for the whole stream");
        for ch in c["choices"].as_array().unwrap() {
            let i = ch["index"].as_u64().unwrap() as usize;
            if ch["delta"]["role"] == "assistant" {
                roles[i] += 1;
            }
            content[i].push_str(ch["delta"]["content"].as_str().unwrap_or(""));
            if !ch["finish_reason"].is_null() {
                finishes[i] += 1;
            }
        }
    }
    assert_eq!((roles, finishes), (vec![1, 1], vec![1, 1]), "one role chunk and exactly one finish_reason per choice");
    for i in 0..2 {
        assert_eq!(content[i], plain["choices"][i]["message"]["content"].as_str().unwrap(), "streamed text equals the plain reply");
    }
    assert_eq!(chunks[0]["wst"]["instruction"], plain["wst"]["instruction"]);
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["completion_tokens"], plain["usage"]["completion_tokens"]);
    assert!(chunks[..chunks.len() - 1].iter().all(|c| c["usage"].is_null()));
}

#[tokio::test]
async fn refusals_carry_their_status_and_openai_error_body() {
    let dir = tempfile::tempdir().unwrap();
    let options = ServeOptions { api_keys: vec!["sk-right".into()], max_body_bytes: 2048, ..Default::default() };
    let run = start(vec![served("tiny", pipeline(dir.path(), EchoStudent::new(Duration::ZERO)))], options).await;
    let client = wst_tests::http();
    let url = format!("{}/v1/chat/completions", run.base);
    let send = |key: Option<&'static str>, body: Vec<u8>| {
        let mut r = client.post(&url).header("content-type", "application/json").body(body);
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        async move {
            let r = r.send().await.unwrap();
            let status = r.status().as_u16();
            let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
            (status, body)
        }
    };
    let good = serde_json::to_vec(&json!({"model": "tiny", "messages": user("Q?")})).unwrap();
    let check = |(status, body): (u16, Value), want: u16, kind: &str| {
        assert_eq!(status, want, "{body}");
        assert_eq!(body["error"]["type"], kind, "{body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
        body
    };
    check(send(None, good.clone()).await, 401, "authentication_error");
    let wrong = check(send(Some("sk-wrong"), good.clone()).await, 401, "authentication_error");
    assert!(!wrong.to_string().contains("sk-right") && !wrong.to_string().contains("sk-wrong"), "keys are never echoed");
    assert_eq!(send(Some("sk-right"), good.clone()).await.0, 200);
    // The neutral values clients send by default pass.
    let defaults = json!({"model": "tiny", "messages": user("Q"), "logprobs": false, "tools": [], "response_format": {"type": "text"}, "presence_penalty": 0, "frequency_penalty": 0.0, "logit_bias": {}, "user": "u1"});
    assert_eq!(send(Some("sk-right"), serde_json::to_vec(&defaults).unwrap()).await.0, 200);
    // /health stays open without a key; /v1/models does not.
    assert_eq!(wst_tests::http().get(format!("{}/health", run.base)).send().await.unwrap().status(), 200);
    assert_eq!(wst_tests::http().get(format!("{}/v1/models", run.base)).send().await.unwrap().status(), 401);
    let models: Value = client.get(format!("{}/v1/models", run.base)).bearer_auth("sk-right").send().await.unwrap().json().await.unwrap();
    assert_eq!(models["data"][0]["id"], "tiny");

    let big = serde_json::to_vec(&json!({"model": "tiny", "messages": user(&"x".repeat(4096))})).unwrap();
    check(send(Some("sk-right"), big).await, 413, "invalid_request_error");
    let b = check(send(Some("sk-right"), b"{\"model\": \"tiny\", \"messages\": [".to_vec()).await, 400, "invalid_request_error");
    assert_eq!(b["error"]["code"], "invalid_json");
    let b = check(send(Some("sk-right"), serde_json::to_vec(&json!({"model": "gpt-9", "messages": user("Q")})).unwrap()).await, 400, "invalid_request_error");
    assert_eq!((b["error"]["code"].as_str(), b["error"]["param"].as_str()), (Some("model_not_found"), Some("model")));
    assert!(b["error"]["message"].as_str().unwrap().contains("tiny"), "names what is served: {b}");
    for (body, param) in [
        (json!({"model": "tiny", "messages": [{"role": "system", "content": "only a system turn"}]}), "messages"),
        (json!({"model": "tiny", "messages": []}), "messages"),
        (json!({"model": "tiny", "messages": user("Q"), "temperature": 3.5}), "temperature"),
        (json!({"model": "tiny", "messages": user("Q"), "top_p": 0}), "top_p"),
        (json!({"model": "tiny", "messages": user("Q"), "n": 0}), "n"),
        (json!({"model": "tiny", "messages": user("Q"), "seed": 1.5}), "seed"),
        (json!({"model": "tiny", "messages": user("Q"), "max_tokens": 0}), "max_tokens"),
        (json!({"model": "tiny", "messages": user("Q"), "stop": ["a", "b", "c", "d", "e"]}), "stop"),
        (json!({"model": "tiny", "messages": [{"role": "tool", "content": "x"}, {"role": "user", "content": "Q"}]}), "messages[0].role"),
        (json!({"model": "tiny", "messages": user("Q"), "stream_options": {"include_usage": true}}), "stream_options"),
        (json!({"model": "tiny", "messages": user("Q"), "logprobs": true}), "logprobs"),
        (json!({"model": "tiny", "messages": user("Q"), "tools": [{"type": "function", "function": {"name": "f"}}]}), "tools"),
        (json!({"model": "tiny", "messages": user("Q"), "response_format": {"type": "json_object"}}), "response_format"),
        (json!({"model": "tiny", "messages": user("Q"), "presence_penalty": 0.5}), "presence_penalty"),
    ] {
        let b = check(send(Some("sk-right"), serde_json::to_vec(&body).unwrap()).await, 400, "invalid_request_error");
        assert_eq!(b["error"]["param"], param, "{body} → {b}");
    }
    let b = check(send(Some("sk-right"), serde_json::to_vec(&json!({"model": "tiny", "messages": user("Q"), "n": "two"})).unwrap()).await, 400, "invalid_request_error");
    assert!(b["error"]["message"].as_str().unwrap().contains("line 1"), "serde's position: {b}");
    let r = client.get(format!("{}/v2/nothing", run.base)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "not_found");
}

/// A client still uploading an oversized body finishes sending and reads its 413: the server
/// drains what follows the limit before it answers. Without the drain the server closed with
/// the rest unread, the client's send failed, and curl reported no response at all (seen as a
/// flaky `wst serve` CLI test under load; certain here with a body larger than the socket
/// buffers).
#[tokio::test]
async fn an_oversized_upload_gets_its_413_and_not_a_reset_connection() {
    let dir = tempfile::tempdir().unwrap();
    let options = ServeOptions { max_body_bytes: 64 << 10, ..Default::default() };
    let run = start(vec![served("tiny", pipeline(dir.path(), EchoStudent::new(Duration::ZERO)))], options).await;
    let addr = run.base.trim_start_matches("http://").to_string();
    let response = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        // 8 MiB: more than loopback's socket buffers take in, so an upload the server stops
        // reading fails to send, which is where curl gives up.
        let body_len = 8 << 20;
        // As curl sends a large upload: it waits for "100 Continue" before the body.
        write!(s, "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {body_len}\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n").unwrap();
        let mut cont = [0u8; 25];
        s.read_exact(&mut cont).unwrap();
        assert!(cont.starts_with(b"HTTP/1.1 100 Continue"), "{}", String::from_utf8_lossy(&cont));
        let sent: std::io::Result<()> = (0..body_len / (64 << 10)).try_for_each(|_| s.write_all(&[b'x'; 64 << 10]));
        assert!(sent.is_ok(), "the upload was cut off: {sent:?}");
        std::thread::sleep(Duration::from_millis(200));
        let mut out = Vec::new();
        let read = s.read_to_end(&mut out);
        (read.map_err(|e| e.to_string()), String::from_utf8_lossy(&out).to_string())
    })
    .await
    .unwrap();
    let (read, text) = response;
    assert!(read.is_ok(), "the connection was reset: {read:?}, got {text:?}");
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("request_too_large"), "{text}");
}

#[tokio::test]
async fn past_the_concurrency_limit_and_queue_only_clean_429s_and_no_request_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let student = EchoStudent::new(Duration::from_millis(400));
    let options = ServeOptions { max_concurrency: 2, max_queue: 2, ..Default::default() };
    let run = start(vec![served("tiny", pipeline(dir.path(), student.clone()))], options).await;
    let client = wst_tests::http();
    let replies = futures::future::join_all((0..10).map(|i| {
        let (client, url) = (client.clone(), format!("{}/v1/chat/completions", run.base));
        async move {
            let r = client.post(url).json(&json!({"model": "tiny", "messages": user(&format!("Q{i}")), "wst": {"instruct": false}})).send().await.unwrap();
            let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
            (r.status().as_u16(), retry, r.json::<Value>().await.unwrap())
        }
    }))
    .await;
    let ok = replies.iter().filter(|r| r.0 == 200).count();
    let refused: Vec<_> = replies.iter().filter(|r| r.0 == 429).collect();
    assert_eq!(ok + refused.len(), 10, "only 200s and 429s: {replies:?}");
    assert_eq!(ok, 4, "two running and two queued are served: {replies:?}");
    for r in refused {
        assert_eq!(r.1.as_deref(), Some("1"));
        assert_eq!(r.2["error"]["code"], "rate_limit_exceeded");
    }
    assert_eq!(student.calls.load(Ordering::SeqCst), 4, "every admitted request reached the Student once");
    let metrics = wst_tests::http().get(format!("{}/metrics", run.base)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("wst:requests_total{model_name=\"tiny\",status=\"429\"} 6"), "{metrics}");
    assert!(metrics.contains("wst:requests_total{model_name=\"tiny\",status=\"200\"} 4"), "{metrics}");
    assert!(metrics.contains("wst:num_requests_running 0") && metrics.contains("wst:num_requests_waiting 0"), "{metrics}");
    for name in ["wst:e2e_request_latency_seconds_bucket", "wst:student_latency_seconds_count", "wst:prompt_tokens_total", "wst:generation_tokens_total"] {
        assert!(metrics.contains(name), "{name} in {metrics}");
    }
}

#[tokio::test]
async fn health_is_503_while_loading_and_timeouts_are_504() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::new(ServeOptions { request_timeout: Duration::from_millis(300), ..Default::default() });
    let run = start_server(server).await;
    let r = wst_tests::http().get(format!("{}/health", run.base)).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let (status, headers, body) = post(&run.base, &json!({"model": "tiny", "messages": user("Q")})).await;
    assert_eq!((status, headers.get("retry-after").is_some()), (503, true), "{body}");
    run.server.set_models(vec![served("tiny", pipeline(dir.path(), EchoStudent::new(Duration::from_secs(30))))]).unwrap();
    assert_eq!(wst_tests::http().get(format!("{}/health", run.base)).send().await.unwrap().status(), 200);
    let started = std::time::Instant::now();
    let (status, _, body) = post(&run.base, &json!({"model": "tiny", "messages": user("Q"), "wst": {"instruct": false}})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (504, Some("timeout")), "{body}");
    assert!(started.elapsed() < Duration::from_secs(10), "the timeout cut the 30 s Student short");
}

#[tokio::test]
async fn shutdown_finishes_requests_in_flight_and_refuses_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = start(vec![served("tiny", pipeline(dir.path(), EchoStudent::new(Duration::from_millis(800))))], ServeOptions::default()).await;
    let base = run.base.clone();
    let in_flight = tokio::spawn(async move { post(&base, &json!({"model": "tiny", "messages": user("Q"), "wst": {"instruct": false}})).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    run.stop.take().unwrap().send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, _, body) = in_flight.await.unwrap();
    assert_eq!(status, 200, "the request in flight was finished: {body}");
    tokio::time::timeout(Duration::from_secs(5), run.done).await.expect("the server stopped").unwrap().unwrap();
    assert!(wst_tests::http().get(format!("{}/health", run.base)).send().await.is_err(), "no new connections after shutdown");
}

/// The llama.cpp Student streams token by token, and the pieces join to the plain answer.
#[tokio::test]
async fn llamacpp_student_streams_pieces_that_join_to_the_plain_answer() {
    let (_gguf_dir, student) = llamacpp_student();
    let tdir = tempfile::tempdir().unwrap();
    let run = start(vec![served("tiny", pipeline(tdir.path(), student))], ServeOptions::default()).await;
    let request = json!({"model": "tiny", "messages": user("hello world"), "n": 3, "seed": 4, "temperature": 1.0, "max_tokens": 20, "stop": ["zz"]});
    let (status, _, plain) = post(&run.base, &request).await;
    assert_eq!(status, 200, "{plain}");
    let mut streamed = request.clone();
    streamed["stream"] = json!(true);
    let text = wst_tests::http().post(format!("{}/v1/chat/completions", run.base)).json(&streamed).send().await.unwrap().text().await.unwrap();
    let mut content = vec![String::new(); 3];
    let mut pieces = [0usize; 3];
    for e in text.split("\n\n").filter_map(|e| e.strip_prefix("data: ")).filter(|e| *e != "[DONE]") {
        let c: Value = serde_json::from_str(e).unwrap();
        for ch in c["choices"].as_array().unwrap() {
            let i = ch["index"].as_u64().unwrap() as usize;
            if let Some(t) = ch["delta"]["content"].as_str().filter(|t| !t.is_empty()) {
                content[i].push_str(t);
                pieces[i] += 1;
            }
        }
    }
    for i in 0..3 {
        assert_eq!(content[i], plain["choices"][i]["message"]["content"].as_str().unwrap(), "answer {i}");
    }
    let tokens = plain["usage"]["completion_tokens"].as_u64().unwrap() as usize;
    assert!(pieces.iter().sum::<usize>() > 3 && tokens > 3, "streamed in pieces as decoded ({pieces:?} pieces for {tokens} tokens)");
}

/// The server gives the answers `wst eval` gives: the same instruction for a query id and the
/// same Student answers for the evaluation's seed.
#[tokio::test]
async fn served_answers_equal_the_evaluation_for_the_same_seeds() {
    let (_gguf_dir, student) = llamacpp_student();
    let tdir = tempfile::tempdir().unwrap();
    let p = pipeline(tdir.path(), student.clone());
    let queries: Vec<Query> = (0..5).map(|i| Query::new(format!("q{i}"), format!("hello {i} world"))).collect();
    let eval_seed = 77;
    // What evaluation does: instructions in chunks, then K answers seeded per query.
    let from_eval = instructions(&p, &queries, &InstructionSource::Teacher(teacher_sampling()), 4).await.unwrap();
    let mut eval_answers = Vec::new();
    for (q, ins) in queries.iter().zip(&from_eval) {
        eval_answers.push(p.answer_with(q, ins.as_ref(), 2, &SamplingParams { seed: Some(eval_student_seed(eval_seed, &q.id)), ..p.student_sampling().clone() }).await.unwrap());
    }
    let run = start(vec![served("tiny", p)], ServeOptions::default()).await;
    let replies = futures::future::join_all(queries.iter().map(|q| {
        let body = json!({"model": "tiny", "messages": user(&q.text), "n": 2, "seed": eval_student_seed(eval_seed, &q.id), "wst": {"query_id": q.id}});
        let base = run.base.clone();
        async move { post(&base, &body).await.2 }
    }))
    .await;
    for ((reply, ins), answers) in replies.iter().zip(&from_eval).zip(&eval_answers) {
        assert_eq!(reply["wst"]["instruction"].as_str(), ins.as_ref().map(|i| i.text.as_str()), "{reply}");
        let texts: Vec<&str> = reply["choices"].as_array().unwrap().iter().map(|c| c["message"]["content"].as_str().unwrap()).collect();
        assert_eq!(texts, answers.iter().map(|a| a.text.as_str()).collect::<Vec<_>>());
    }
}

/// The official `openai` Python package (pinned, installed by scripts/setup.sh) against wst
/// serve: plain and streamed, n > 1, seed, include_usage, the raw header, its error classes.
#[tokio::test]
async fn the_official_openai_python_client_works_against_it() {
    let client_dir = std::env::var("WST_PYCLIENT").unwrap_or_else(|_| "/var/tmp/wst-pyclient".into());
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/openai_client.py");
    let (_gguf_dir, llama) = llamacpp_student();
    let (t1, t2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // wst as a proxy in front of an OpenAI-compatible Student (a mock closed API).
    let mock = wst_tests::openai_mock::MockServer::start(Duration::ZERO, |_, body| wst_tests::openai_mock::echo_choices(body, true)).await;
    let remote: Arc<dyn Student> =
        Arc::new(wst_openai::OpenAiStudent::new("gpt-4o-mini", &wst_openai::OpenAiConfig { base_urls: vec![mock.base_url()], api_key_env: None, ..Default::default() }).unwrap());
    let options = ServeOptions { api_keys: vec!["sk-test".into()], ..Default::default() };
    let run = start(vec![served("tiny-llamacpp", pipeline(t1.path(), llama)), served("tiny-proxy", pipeline(t2.path(), remote))], options).await;
    for model in ["tiny-llamacpp", "tiny-proxy"] {
        let base = format!("{}/v1", run.base);
        let (script, path) = (script.clone(), client_dir.clone());
        let out = tokio::task::spawn_blocking(move || std::process::Command::new("python3").arg(&script).args([&base, model, "sk-test"]).env("PYTHONPATH", &path).output())
            .await
            .unwrap()
            .expect("python3 runs");
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{model}: the openai client failed (is it installed in {client_dir}? scripts/setup.sh installs it)\n{stdout}\n{stderr}");
        assert!(stdout.contains("all checks passed"), "{stdout}");
    }
    assert!(mock.requests() > 0, "the proxy reached the closed-API Student");
}

/// `Pipeline::respond` is the server's path without HTTP: the same instruction and answers for
/// the same key and seed, and its streamed pieces join to the answers.
#[tokio::test]
async fn pipeline_respond_gives_what_the_server_gives() {
    use wst_sdk::respond::{Guidance, RespondParams};
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), EchoStudent::new(Duration::ZERO));
    let messages = vec![wst_sdk::ChatMessage::user("What is 6 + 1?")];
    let params = RespondParams { n: 2, sampling: SamplingParams { seed: Some(4), ..p.student_sampling().clone() }, guidance: Guidance::Teacher, teacher_key: "k".into() };
    let (sink, mut pieces) = tokio::sync::mpsc::unbounded_channel();
    let reply = p.respond(&messages, &params, Some(&sink)).await.unwrap();
    drop(sink);
    let mut joined = vec![String::new(); 2];
    while let Some(d) = pieces.recv().await {
        joined[d.index].push_str(&d.text);
    }
    assert_eq!(joined, reply.answers.iter().map(|a| a.text.clone()).collect::<Vec<_>>());
    assert!(reply.teacher_usage.completion_tokens > 0);
    let off = p.respond(&messages, &RespondParams { guidance: Guidance::Off, ..params.clone() }, None).await.unwrap();
    assert_eq!(off.instruction, None);
    assert!(off.answers[0].text.starts_with("[user] What is 6 + 1?\n#0"), "{}", off.answers[0].text);
    let no_user = p.respond(&[wst_sdk::ChatMessage::system("s")], &params, None).await.unwrap_err().to_string();
    assert!(no_user.contains("no user turn"), "{no_user}");

    let run = start(vec![served("tiny", p)], ServeOptions::default()).await;
    let (_, _, body) = post(&run.base, &json!({"model": "tiny", "messages": user("What is 6 + 1?"), "n": 2, "seed": 4, "wst": {"query_id": "k"}})).await;
    assert_eq!(body["wst"]["instruction"].as_str(), reply.instruction.as_ref().map(|i| i.text.as_str()));
    for (i, a) in reply.answers.iter().enumerate() {
        assert_eq!(body["choices"][i]["message"]["content"].as_str(), Some(a.text.as_str()));
    }
}
