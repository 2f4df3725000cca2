//! `wst serve` as a user runs it: a trained Teacher's folder (its card says how it was prompted
//! and which Student prompt it was trained with), a Student from a config, a key from the
//! environment; the Student receives the card's prompt with the Teacher's instruction, and
//! SIGTERM stops the server cleanly.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use wst_sdk::student::StudentPrompt;
use wst_sdk::teacher::TeacherCard;
use wst_tests::openai_mock::{MockServer, echo_choices};
use wst_tests::tiny::{Arch, write_model};

/// One HTTP/1.1 request on a fresh connection; (status, body).
fn http(addr: &str, method: &str, path: &str, key: Option<&str>, body: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let auth = key.map(|k| format!("authorization: Bearer {k}\r\n")).unwrap_or_default();
    write!(s, "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{auth}connection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

#[test]
fn serve_uses_the_teachers_card_and_stops_on_sigterm() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mock = rt.block_on(MockServer::start(Duration::ZERO, |_, body| echo_choices(body, true)));
    let dir = tempfile::tempdir().unwrap();
    let teacher = dir.path().join("gsm8k-hints");
    std::fs::create_dir(&teacher).unwrap();
    write_model(&teacher, Arch::Llama, 3);
    let card = TeacherCard {
        system_prompt: "You write hints.".into(),
        prompt_template: "Problem: {{ query }}".into(),
        instruction_prefix: "Hint:".into(),
        stop: vec![],
        choices: vec![],
        sampling: None,
        student_prompt: Some(StudentPrompt { system: Some("From the card.".into()), template: "{{ query }}\n\nTeacher says: {{ instruction }}".into() }),
    };
    card.write(&teacher).unwrap();
    let config = dir.path().join("serve.toml");
    std::fs::write(&config, format!("[teacher]\ndtype = \"f32\"\n\n[student]\nspec = \"openai:gpt-4o-mini\"\n\n[student.openai]\nbase_urls = [\"{}\"]\napi_key_env = \"WST_NO_KEY_FOR_THE_MOCK\"\n\n[grpo]\nmax_completion_length = 6\n", mock.base_url())).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_wst"))
        .args(["serve", "--port", "0", "--api-key-env", "WST_TEST_KEYS", "--config"])
        .arg(&config)
        .arg("--teacher")
        .arg(&teacher)
        .env("WST_TEST_KEYS", "sk-one, sk-two")
        .env("WST_NO_KEY_FOR_THE_MOCK", "unused")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = String::new();
    let addr = loop {
        let line = lines.next().expect("wst serve printed its address").unwrap();
        log.push_str(&line);
        log.push('\n');
        if let Some(rest) = line.strip_prefix("ready: serving gsm8k-hints on http://") {
            break rest.trim_end_matches("/v1").to_string();
        }
        assert!(!line.starts_with("error"), "{log}");
    };
    let log_reader = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>().join("\n"));

    assert_eq!(http(&addr, "GET", "/health", None, "").0, 200);
    let request = json!({"model": "gsm8k-hints", "messages": [{"role": "user", "content": "What is 2 + 2?"}], "seed": 5}).to_string();
    // curl, as the README shows it: no key, a wrong key, malformed JSON, an oversized body.
    let curl = |key: Option<&str>, data: &str| -> (String, Value) {
        let mut c = Command::new("curl");
        c.args(["-s", "-o", "-", "-w", "\n%{http_code}", "-H", "content-type: application/json", "--data-binary", "@-"]).arg(format!("http://{addr}/v1/chat/completions"));
        if let Some(k) = key {
            c.args(["-H", &format!("authorization: Bearer {k}")]);
        }
        let mut child = c.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("curl runs");
        child.stdin.take().unwrap().write_all(data.as_bytes()).unwrap();
        let out = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
        let (body, code) = out.rsplit_once('\n').unwrap();
        (code.to_string(), serde_json::from_str(body).unwrap_or(Value::Null))
    };
    let (code, body) = curl(None, &request);
    assert_eq!((code.as_str(), body["error"]["type"].as_str()), ("401", Some("authentication_error")), "{body}");
    let (code, body) = curl(Some("sk-wrong"), &request);
    assert_eq!((code.as_str(), body["error"]["code"].as_str()), ("401", Some("invalid_api_key")), "{body}");
    let (code, body) = curl(Some("sk-one"), "{\"model\": ");
    assert_eq!((code.as_str(), body["error"]["code"].as_str()), ("400", Some("invalid_json")), "{body}");
    let (code, body) = curl(Some("sk-one"), &"x".repeat(5 << 20));
    assert_eq!((code.as_str(), body["error"]["code"].as_str()), ("413", Some("request_too_large")), "{body}");
    let (code, body) = curl(Some("sk-one"), &json!({"model": "nope", "messages": [{"role": "user", "content": "Q"}]}).to_string());
    assert_eq!((code.as_str(), body["error"]["code"].as_str()), ("400", Some("model_not_found")), "{body}");
    let (status, body) = http(&addr, "POST", "/v1/chat/completions", Some("sk-two"), &request);
    assert_eq!(status, 200, "{body}");
    let reply: Value = serde_json::from_str(&body).unwrap();
    let instruction = reply["wst"]["instruction"].as_str().unwrap();
    assert!(instruction.starts_with("Hint:"), "the card's prefix: {instruction}");
    assert_eq!(reply["choices"][0]["message"]["content"], "s5-0", "the request's seed reached the Student");
    let sent = mock.seen.lock().unwrap().last().unwrap().body.clone();
    assert_eq!(
        sent["messages"],
        json!([{"role": "system", "content": "From the card."}, {"role": "user", "content": format!("What is 2 + 2?\n\nTeacher says: {instruction}")}]),
        "the card's Student prompt"
    );

    // SIGTERM: a clean stop.
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = child.wait().unwrap();
    let rest = log_reader.join().unwrap();
    assert!(status.success(), "exit {status:?}\n{log}{rest}");
    assert!(rest.contains("stopped"), "{rest}");
    assert!(!log.contains("sk-one") && !rest.contains("sk-two"), "keys are never logged");
}

#[test]
fn serve_refuses_missing_pieces_with_usage_errors() {
    let out = Command::new(env!("CARGO_BIN_EXE_wst")).args(["serve", "--teacher", "x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--student"), "{}", String::from_utf8_lossy(&out.stderr));
    let out =
        Command::new(env!("CARGO_BIN_EXE_wst")).args(["serve", "--student", "openai:gpt-4o-mini", "--teacher", "x", "--api-key-env", "WST_SURELY_UNSET_VAR"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("WST_SURELY_UNSET_VAR"), "{}", String::from_utf8_lossy(&out.stderr));
}
