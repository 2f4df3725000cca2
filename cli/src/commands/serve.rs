//! `wst serve`: trained Teachers in front of a Student, behind an OpenAI-compatible endpoint.
//! This file only reads flags, builds the pipelines and wires them to `wst-serve`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use wst_sdk::config::{StudentConfig, WstConfig};
use wst_sdk::student::StudentPrompt;
use wst_sdk::teacher::{LmTeacher, TeacherCard, TeacherOptions};
use wst_sdk::{Pipeline, Student, TeacherSampling};
use wst_serve::{ServeOptions, ServedModel, Server};

use crate::commands::UsageError;

/// Arguments of `wst serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A run configuration: its `teacher.model`, `student.spec`, prompts and sampling apply
    /// where no flag says otherwise.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// A trained Teacher's folder (full model or PEFT adapter); repeatable, each served under
    /// its own name.
    #[arg(long, short = 'm')]
    teacher: Vec<String>,
    /// The name of each `--teacher`, in order (default: the folder's name).
    #[arg(long)]
    name: Vec<String>,
    /// Also serve the Student alone, named after its spec (or only it, without `--teacher`).
    #[arg(long)]
    no_teacher: bool,
    /// The Student (`llamacpp:…`, `openai:…`, `candle:…`); default: the config's.
    #[arg(long, short = 's')]
    student: Option<String>,
    /// Address to bind; anything but loopback exposes the server to the network.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port (0 picks a free one; the address is printed).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Environment variable holding the accepted API keys (comma-separated); unset: no key needed.
    #[arg(long)]
    api_key_env: Option<String>,
    /// Requests processed at once.
    #[arg(long, default_value_t = 64)]
    max_concurrency: usize,
    /// Requests that may wait for a slot; one more gets 429.
    #[arg(long, default_value_t = 256)]
    max_queue: usize,
    /// Longest a request may take, in seconds (then 504).
    #[arg(long, default_value_t = 600.0)]
    timeout: f64,
    /// How long the first request of a Teacher batch waits for others, in milliseconds.
    #[arg(long, default_value_t = 5)]
    batch_wait_ms: u64,
    /// Most requests in one Teacher batch.
    #[arg(long, default_value_t = 8)]
    max_batch: usize,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 4 << 20)]
    max_body_bytes: usize,
    /// Do not send the instruction back (no `wst.instruction`, no `x-wst-instruction`).
    #[arg(long)]
    no_echo_instruction: bool,
    /// Teacher device: cpu, cuda or cuda:N.
    #[arg(long)]
    device: Option<String>,
    /// Override any config field: `--set student.sampling.max_tokens=256` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let cfg = match &args.config {
        Some(path) => crate::run::load_config(path, &args.overrides)?,
        None if !args.overrides.is_empty() => return Err(UsageError("--set needs --config".into()).into()),
        None => WstConfig::default(),
    };
    let spec = match (&args.student, &args.config) {
        (Some(s), _) => s.clone(),
        (None, Some(_)) => cfg.student.spec.clone(),
        (None, None) => return Err(UsageError("give the Student with --student SPEC (or a --config that names one)".into()).into()),
    };
    let mut teachers = args.teacher.clone();
    if teachers.is_empty() && args.config.is_some() && !args.no_teacher {
        teachers.push(cfg.teacher.model.clone());
    }
    if teachers.is_empty() && !args.no_teacher {
        return Err(UsageError("give a Teacher with --teacher DIR (or --no-teacher to serve the Student alone)".into()).into());
    }
    if args.name.len() > teachers.len() {
        return Err(UsageError(format!("{} --name given for {} Teachers", args.name.len(), teachers.len())).into());
    }
    if args.timeout <= 0.0 || !args.timeout.is_finite() {
        return Err(UsageError("--timeout must be a positive number of seconds".into()).into());
    }
    let api_keys = match &args.api_key_env {
        None => Vec::new(),
        Some(var) => {
            let keys: Vec<String> = std::env::var(var).unwrap_or_default().split(',').map(str::trim).filter(|k| !k.is_empty()).map(String::from).collect();
            if keys.is_empty() {
                return Err(UsageError(format!("--api-key-env {var}: the variable is unset or holds no key")).into());
            }
            keys
        }
    };
    let options = ServeOptions {
        api_keys,
        max_body_bytes: args.max_body_bytes,
        max_concurrency: args.max_concurrency,
        max_queue: args.max_queue,
        request_timeout: Duration::from_secs_f64(args.timeout),
        batch_wait: Duration::from_millis(args.batch_wait_ms),
        max_batch: args.max_batch,
        echo_instruction: !args.no_echo_instruction,
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        // Bind first, so /health answers 503 while the models load.
        let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port)).await.map_err(|e| anyhow::anyhow!("cannot listen on {}:{}: {e}", args.host, args.port))?;
        let addr = listener.local_addr()?;
        let server = Server::new(options);
        let serving = tokio::spawn(server.clone().serve(listener, shutdown_signal()));
        crate::progress::status!("listening on http://{addr} (loading the models; /health answers 503 until they are ready)");
        let student_cfg = StudentConfig { spec: spec.clone(), cache_dir: None, ..cfg.student.clone() };
        let loading = tokio::task::spawn_blocking(move || build_models(&cfg, &args, &teachers, student_cfg)).await?;
        let models = match loading {
            Ok(m) => m,
            Err(e) => {
                serving.abort();
                return Err(e);
            }
        };
        let names: Vec<String> = models.iter().map(|m| m.name.clone()).collect();
        server.set_models(models)?;
        crate::progress::status!("ready: serving {} on http://{addr}/v1", names.join(", "));
        serving.await??;
        crate::progress::status!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// One pipeline per Teacher (and one without, under `--no-teacher`), all sharing one Student.
fn build_models(cfg: &WstConfig, args: &Args, teachers: &[String], student_cfg: StudentConfig) -> anyhow::Result<Vec<ServedModel>> {
    // A server answers every request afresh: never from a response cache.
    let student: Arc<dyn Student> = crate::run::student_from(&student_cfg)?;
    let defaults = WstConfig::default();
    let mut models = Vec::new();
    for (i, dir) in teachers.iter().enumerate() {
        let card = TeacherCard::read(Path::new(dir))?;
        let mut teacher_cfg = cfg.teacher.clone();
        if let Some(d) = &args.device {
            teacher_cfg.device = d.clone();
        }
        // The config's Student prompt and Teacher sampling where it sets them, else the card's.
        let prompt = match (&card, cfg.student.prompt == defaults.student.prompt) {
            (Some(TeacherCard { student_prompt: Some(p), .. }), true) => p.clone(),
            _ => cfg.student.prompt.clone(),
        };
        let mut sampling = TeacherSampling::from_grpo(&cfg.grpo, cfg.grpo.seed);
        if args.config.is_none()
            && let Some(s) = card.as_ref().and_then(|c| c.sampling.clone())
        {
            sampling = TeacherSampling { temperature: s.temperature, top_p: s.top_p, top_k: s.top_k, max_completion_length: s.max_completion_length, ..sampling };
        }
        let teacher = LmTeacher::load(dir, TeacherOptions::from_config(&teacher_cfg, cfg.grpo.seed))?;
        let pipeline = Pipeline::builder()
            .student_arc(student.clone())
            .student_prompt(prompt)
            .student_sampling(cfg.student.sampling.clone())
            .teacher_sampling(sampling)
            .teacher(teacher)
            .build()?;
        let name = args.name.get(i).cloned().unwrap_or_else(|| folder_name(dir));
        tracing::info!(name, teacher = dir, student = student.name(), "loaded");
        models.push(ServedModel { name, pipeline: Arc::new(pipeline) });
    }
    if args.no_teacher {
        let pipeline = Pipeline::builder().student_arc(student.clone()).student_prompt(StudentPrompt::default()).student_sampling(cfg.student.sampling.clone()).build()?;
        let name = student_name(&student_cfg.spec);
        models.push(ServedModel { name, pipeline: Arc::new(pipeline) });
    }
    Ok(models)
}

/// The Student's served name under `--no-teacher`: the spec's model (a catalog name as it is, a
/// file by its name without `.gguf`). Not `file_stem`, which cut `qwen2.5-coder-0.5b-instruct`
/// to `qwen2.5-coder-0`.
fn student_name(spec: &str) -> String {
    let model = spec.split_once(':').map(|(_, m)| m).unwrap_or(spec);
    let base = Path::new(model).file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| model.to_string());
    base.strip_suffix(".gguf").unwrap_or(&base).to_string()
}

/// A Teacher's default served name: its folder's name, with the parent's in front when the
/// folder is a run's `final` or `adapter` (`run/final`).
fn folder_name(dir: &str) -> String {
    let path = Path::new(dir.trim_end_matches('/'));
    let last = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| dir.to_string());
    match path.parent().and_then(Path::file_name) {
        Some(parent) if matches!(last.as_str(), "final" | "adapter") => format!("{}/{last}", parent.to_string_lossy()),
        _ => last,
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_student_is_served_under_its_whole_model_name() {
        assert_eq!(student_name("llamacpp:qwen2.5-coder-0.5b-instruct"), "qwen2.5-coder-0.5b-instruct");
        assert_eq!(student_name("llamacpp:/models/Qwen2.5-1.5B.Q4_K_M.gguf"), "Qwen2.5-1.5B.Q4_K_M");
        assert_eq!(student_name("openai:gpt-4o-mini"), "gpt-4o-mini");
    }
}
