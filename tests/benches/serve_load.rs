//! Load test of `wst serve` on loopback: C concurrent clients send chat completions for a fixed
//! time, (a) straight to an OpenAI-compatible mock Student with a fixed latency, (b) through
//! wst with guidance off (what the server itself adds), (c) through wst with a tiny Teacher
//! (its batching and sampling added), and (d) to a concurrency limit below the load (only clean
//! 429s may appear). Rows run one after another in one process, so they compare side by side.
//!
//! Usage: cargo bench --profile dev --workspace --bench serve_load
//! Env: WST_LOAD_CLIENTS (64), WST_LOAD_SECONDS (10), WST_LOAD_LATENCY_MS (50).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use wst_openai::{OpenAiConfig, OpenAiStudent};
use wst_sdk::config::TeacherConfig;
use wst_sdk::teacher::{LmTeacher, TeacherOptions};
use wst_sdk::{Pipeline, SamplingParams, Student, TeacherSampling};
use wst_serve::{ServeOptions, ServedModel, Server};
use wst_tests::openai_mock::{MockServer, echo_choices};
use wst_tests::tiny::{Arch, write_model};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Outcome of one row.
struct Row {
    label: String,
    ok: usize,
    statuses: std::collections::BTreeMap<u16, usize>,
    latencies: Vec<f64>,
    seconds: f64,
}

impl Row {
    fn quantile(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies.len() - 1) as f64 * q).round() as usize;
        self.latencies[i]
    }
}

/// `clients` tasks post `body` to `url` back to back for `seconds`.
async fn load(label: &str, url: String, body: serde_json::Value, clients: usize, seconds: u64) -> Row {
    wst_openai::install_tls_provider();
    let client = reqwest::Client::builder().pool_max_idle_per_host(clients).build().unwrap();
    let until = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (client, url, mut body) = (client.clone(), url.clone(), body.clone());
            tokio::spawn(async move {
                let mut out = Vec::new();
                let mut i = 0u64;
                while Instant::now() < until {
                    body["seed"] = json!(c as u64 * 1_000_000 + i);
                    i += 1;
                    let t = Instant::now();
                    let status = match client.post(&url).json(&body).send().await {
                        Ok(r) => {
                            let s = r.status().as_u16();
                            let _ = r.bytes().await;
                            s
                        }
                        Err(_) => 0,
                    };
                    out.push((status, t.elapsed().as_secs_f64()));
                    if status == 429 {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                out
            })
        })
        .collect();
    let mut row = Row { label: label.into(), ok: 0, statuses: Default::default(), latencies: Vec::new(), seconds: 0.0 };
    for t in tasks {
        for (status, secs) in t.await.unwrap() {
            *row.statuses.entry(status).or_default() += 1;
            if status == 200 {
                row.ok += 1;
                row.latencies.push(secs);
            }
        }
    }
    row.seconds = start.elapsed().as_secs_f64();
    row.latencies.sort_by(f64::total_cmp);
    row
}

async fn serve(models: Vec<ServedModel>, options: ServeOptions) -> String {
    let server = Server::new(options);
    server.set_models(models).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(server.serve(listener, std::future::pending()));
    base
}

fn main() {
    let clients = env("WST_LOAD_CLIENTS", 64) as usize;
    let seconds = env("WST_LOAD_SECONDS", 10);
    let latency = Duration::from_millis(env("WST_LOAD_LATENCY_MS", 50));
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let mock = MockServer::start(latency, |_, body| echo_choices(body, true)).await;
        let student: Arc<dyn Student> = Arc::new(
            OpenAiStudent::new("mock", &OpenAiConfig { base_urls: vec![mock.base_url()], api_key_env: None, max_concurrency: clients * 2, ..Default::default() }).unwrap(),
        );
        let plain = Pipeline::builder().student_arc(student.clone()).student_sampling(SamplingParams { max_tokens: 16, ..Default::default() }).build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        write_model(dir.path(), Arch::Llama, 3);
        let teacher = LmTeacher::load(dir.path().to_str().unwrap(), TeacherOptions { teacher: TeacherConfig { dtype: "f32".into(), ..Default::default() }, seed: 1 }).unwrap();
        let guided =
            Pipeline::builder().teacher(teacher).student_arc(student.clone()).teacher_sampling(TeacherSampling { max_completion_length: 8, ..Default::default() }).build().unwrap();
        let models = vec![ServedModel { name: "plain".into(), pipeline: Arc::new(plain) }, ServedModel { name: "guided".into(), pipeline: Arc::new(guided) }];
        let base = serve(models, ServeOptions { max_concurrency: clients * 2, max_batch: 64, ..Default::default() }).await;
        let messages = json!([{"role": "user", "content": "What is 2 + 3?"}]);
        let mut rows = Vec::new();
        rows.push(load("mock Student, direct", format!("{}/chat/completions", mock.base_url()), json!({"model": "mock", "messages": messages}), clients, seconds).await);
        rows.push(load("wst serve, guidance off", format!("{base}/v1/chat/completions"), json!({"model": "plain", "messages": messages}), clients, seconds).await);
        rows.push(load("wst serve, tiny Teacher", format!("{base}/v1/chat/completions"), json!({"model": "guided", "messages": messages}), clients, seconds).await);
        // Over the limit: a quarter of the clients may run, as many may queue.
        let (c, q) = ((clients / 4).max(1), (clients / 4).max(1));
        let limited = serve(
            vec![ServedModel { name: "plain".into(), pipeline: Arc::new(Pipeline::builder().student_arc(student.clone()).build().unwrap()) }],
            ServeOptions { max_concurrency: c, max_queue: q, ..Default::default() },
        )
        .await;
        rows.push(
            load(&format!("wst serve, limit {c} + queue {q}"), format!("{limited}/v1/chat/completions"), json!({"model": "plain", "messages": messages}), clients, seconds).await,
        );
        println!("{clients} clients, {seconds} s per row, mock Student latency {} ms", latency.as_millis());
        println!("| row | answered | req/s | p50 ms | p99 ms | statuses |");
        println!("| --- | ---: | ---: | ---: | ---: | --- |");
        for r in &rows {
            println!("| {} | {} | {:.1} | {:.1} | {:.1} | {:?} |", r.label, r.ok, r.ok as f64 / r.seconds, r.quantile(0.5) * 1e3, r.quantile(0.99) * 1e3, r.statuses);
        }
        let added = (rows[1].quantile(0.5) - rows[0].quantile(0.5)) * 1e3;
        println!("wst serve adds {added:.2} ms at p50 with guidance off (goal: under 5 ms)");
        let bad: usize = rows.iter().flat_map(|r| r.statuses.iter()).filter(|(s, _)| **s != 200 && **s != 429).map(|(_, n)| n).sum();
        let refused_below: usize = rows[..3].iter().map(|r| r.statuses.get(&429).copied().unwrap_or(0)).sum();
        println!("failed or lost (not 200, not 429): {bad}; 429 below the limit: {refused_below}");
        if bad > 0 || refused_below > 0 {
            std::process::exit(1);
        }
    });
}
