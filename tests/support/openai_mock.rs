//! A local HTTP server speaking the OpenAI Chat Completions wire format, scripted per request,
//! so the HTTP Student can be tested against ignored `n`, 429 + Retry-After, 500, malformed
//! JSON, truncated bodies and hangs without the network.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the server does with one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// An HTTP response with a JSON body.
    Json { status: u16, headers: Vec<(String, String)>, body: Value },
    /// A 200 whose body is not JSON.
    Malformed,
    /// A 200 announcing more bytes than it sends, then closing.
    Truncated,
    /// Never answers (the connection stays open).
    Hang,
    /// A 200 with a plain-text body (a file's content).
    Text(String),
}

impl Reply {
    /// A 200 with the given answer texts as choices, and usage.
    pub fn choices(texts: &[String]) -> Reply {
        let choices: Vec<Value> = texts.iter().enumerate().map(|(i, t)| json!({"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"})).collect();
        Reply::Json {
            status: 200,
            headers: vec![],
            body: json!({"id": "x", "object": "chat.completion", "choices": choices,
                         "usage": {"prompt_tokens": 10, "completion_tokens": 5 * texts.len(), "total_tokens": 10 + 5 * texts.len()}}),
        }
    }

    /// An error response in OpenAI's shape.
    pub fn error(status: u16, message: &str, code: Option<&str>, headers: &[(&str, &str)]) -> Reply {
        Reply::Json {
            status,
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            body: json!({"error": {"message": message, "type": "error", "code": code}}),
        }
    }
}

/// One request the server saw.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The method (`POST`, `GET`).
    pub method: String,
    /// The path, from `/v1`.
    pub path: String,
    /// The raw body.
    pub raw: Vec<u8>,
    /// The JSON body.
    pub body: Value,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// Every header, names lower-cased.
    pub headers: Vec<(String, String)>,
}

type Script = dyn Fn(usize, &Seen) -> Reply + Send + Sync;

/// A running mock server; dropped with the test's runtime.
pub struct MockServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Requests in arrival order.
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// Most requests ever in flight at once.
    pub max_in_flight: Arc<AtomicUsize>,
}

impl MockServer {
    /// Starts a server answering request i (0-based, over all connections) with `script(i, body)`,
    /// after `delay`.
    pub async fn start(delay: Duration, script: impl Fn(usize, &Value) -> Reply + Send + Sync + 'static) -> MockServer {
        Self::start_routed(delay, move |i, seen| script(i, &seen.body)).await
    }

    /// Like [`MockServer::start`], the script seeing the whole request (method, path, body).
    pub async fn start_routed(delay: Duration, script: impl Fn(usize, &Seen) -> Reply + Send + Sync + 'static) -> MockServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let max_in_flight = Arc::new(AtomicUsize::new(0));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let script: Arc<Script> = Arc::new(script);
        let (seen2, max2) = (seen.clone(), max_in_flight.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (seen, max, in_flight, script) = (seen2.clone(), max2.clone(), in_flight.clone(), script.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, delay, seen, max, in_flight, script).await;
                });
            }
        });
        MockServer { addr, seen, max_in_flight }
    }

    /// The base URL (…/v1).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// How many requests arrived.
    pub fn requests(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

async fn serve(
    mut stream: TcpStream,
    delay: Duration,
    seen: Arc<Mutex<Vec<Seen>>>,
    max: Arc<AtomicUsize>,
    in_flight: Arc<AtomicUsize>,
    script: Arc<Script>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let len: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    while buf.len() < header_end + len {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let raw = buf[header_end..].to_vec();
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let mut first = head.lines().next().unwrap_or("").split_whitespace();
    let (method, path) = (first.next().unwrap_or("").to_string(), first.next().unwrap_or("").to_string());
    let headers = head.lines().skip(1).filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))).collect();
    let request = Seen { method, path, raw, body, authorization: header("authorization"), headers };
    let index = {
        let mut s = seen.lock().unwrap();
        s.push(request.clone());
        s.len() - 1
    };
    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    max.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(delay).await;
    let reply = script(index, &request);
    in_flight.fetch_sub(1, Ordering::SeqCst);
    let (status, headers, payload, announced) = match reply {
        Reply::Json { status, headers, body } => {
            let p = body.to_string().into_bytes();
            let l = p.len();
            (status, headers, p, l)
        }
        Reply::Malformed => (200, vec![], b"{\"choices\": [ {\"mess".to_vec(), 19),
        Reply::Text(t) => {
            let l = t.len();
            (200, vec![], t.into_bytes(), l)
        }
        Reply::Truncated => {
            let p = br#"{"choices": [{"index": 0, "message": {"#.to_vec();
            (200, vec![], p, 4000)
        }
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return Ok(());
        }
    };
    let mut out = format!("HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {announced}\r\nconnection: close\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    stream.write_all(out.as_bytes()).await?;
    stream.write_all(&payload).await?;
    stream.flush().await?;
    stream.shutdown().await
}

/// A standard behaviour: `n` choices, each text naming the seed it was sampled with (`s<seed>-<i>`).
pub fn echo_choices(body: &Value, honour_n: bool) -> Reply {
    let n = if honour_n { body["n"].as_u64().unwrap_or(1) as usize } else { 1 };
    let seed = body["seed"].as_u64().map(|s| s.to_string()).unwrap_or_else(|| "none".into());
    Reply::choices(&(0..n).map(|i| format!("s{seed}-{i}")).collect::<Vec<_>>())
}
