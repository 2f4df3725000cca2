//! `wst generate`: a Student's answers to one prompt, optionally guided by an instruction.

use std::path::PathBuf;
use std::process::ExitCode;

#[cfg(feature = "candle")]
use wst_candle::CandleStudentConfig;
use wst_llamacpp::LlamaCppConfig;
use wst_openai::OpenAiConfig;
use wst_sdk::config::StudentConfig;
use wst_sdk::student::StudentPrompt;
use wst_sdk::{Instruction, Query, SamplingParams, StudentRequest};

/// Arguments of `wst generate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// `openai:MODEL`, `llamacpp:PATH.gguf` or `candle:PATH_OR_HUB_ID` (a bare `.gguf` path or
    /// catalog name means llama.cpp, as llama.cpp's `-m`).
    #[arg(long, short = 'm', alias = "model")]
    student: String,
    /// The prompt (the query).
    #[arg(long, short = 'p')]
    prompt: String,
    /// Teacher-style instructions added to the prompt with the Student prompt template.
    #[arg(long)]
    instruction: Option<String>,
    /// How many answers (`-n` is llama.cpp's tokens to predict: see `--max-tokens`).
    #[arg(long, default_value_t = 1)]
    num_answers: usize,
    /// Sampling seed (answer i uses seed + i where answers are sampled one by one).
    #[arg(long)]
    seed: Option<u64>,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 0.7)]
    temperature: f64,
    /// Nucleus sampling mass.
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    /// Keep only the k most likely tokens.
    #[arg(long)]
    top_k: Option<usize>,
    /// Maximum tokens per answer (llama.cpp's `-n` / `--n-predict`).
    #[arg(long, short = 'n', alias = "n-predict", default_value_t = 256)]
    max_tokens: usize,
    /// A string that ends an answer (repeatable).
    #[arg(long)]
    stop: Vec<String>,
    /// Base URL of an OpenAI-compatible server (repeatable: load-balanced).
    #[arg(long)]
    base_url: Vec<String>,
    /// Environment variable holding the API key.
    #[arg(long)]
    api_key_env: Option<String>,
    /// CPU threads (llamacpp).
    #[arg(long, short = 't')]
    threads: Option<usize>,
    /// KV cells in all (llamacpp), split evenly between the answers decoded together, as
    /// llama-server's `-c` with `-np`.
    #[arg(long, short = 'c', alias = "ctx-size")]
    n_ctx: Option<u32>,
    /// Layers offloaded to the GPU (llamacpp built with a GPU backend).
    #[arg(long, alias = "ngl", alias = "gpu-layers")]
    n_gpu_layers: Option<u32>,
    /// Device for candle: cpu, cuda or cuda:N.
    #[arg(long)]
    device: Option<String>,
    /// Cache answers in this folder (reused across runs).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Print JSON lines (text, finish reason, tokens) instead of plain text.
    #[arg(long)]
    json: bool,
}

/// The Student spec `-m` names: a bare `.gguf` path or catalog name (no `BACKEND:` prefix) is
/// llama.cpp's, as llama.cpp's own `-m`; anything else is passed on as written.
fn student_spec(model: &str) -> String {
    if !model.contains(':') && (model.ends_with(".gguf") || wst_sdk::models::catalog::find(model).is_some()) { format!("llamacpp:{model}") } else { model.to_string() }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.num_answers == 0 {
        return Err(crate::commands::UsageError("--num-answers must be at least 1".into()).into());
    }
    let spec = student_spec(&args.student);
    let mut config = StudentConfig { spec, cache_dir: args.cache_dir.clone(), ..Default::default() };
    let mut openai: OpenAiConfig = config.backend_settings("openai")?;
    if !args.base_url.is_empty() {
        openai.base_urls = args.base_url.clone();
    }
    if args.api_key_env.is_some() {
        openai.api_key_env = args.api_key_env.clone();
    }
    let mut llamacpp: LlamaCppConfig = config.backend_settings("llamacpp")?;
    if let Some(t) = args.threads {
        llamacpp.n_threads = t;
    }
    if let Some(c) = args.n_ctx {
        llamacpp.n_ctx = c;
    }
    if let Some(g) = args.n_gpu_layers {
        llamacpp.n_gpu_layers = g;
    }
    config.set_backend_settings("openai", &openai)?;
    config.set_backend_settings("llamacpp", &llamacpp)?;
    #[cfg(feature = "candle")]
    {
        let mut candle: CandleStudentConfig = config.backend_settings("candle")?;
        if let Some(d) = &args.device {
            candle.device = d.clone();
        }
        config.set_backend_settings("candle", &candle)?;
    }
    #[cfg(not(feature = "candle"))]
    if args.device.is_some() {
        return Err(crate::commands::UsageError("--device is for the candle Student, which this `wst` was built without (`--features candle`)".into()).into());
    }
    let student = crate::run::student_from(&config)?;
    let instruction = args.instruction.as_deref().map(Instruction::from);
    let messages = StudentPrompt::default().render(&Query::new("cli", args.prompt.clone()), instruction.as_ref())?;
    let params = SamplingParams { temperature: args.temperature, top_p: args.top_p, top_k: args.top_k, max_tokens: args.max_tokens, seed: args.seed, stop: args.stop.clone() };
    let request = StudentRequest { messages, n: args.num_answers, params };
    let runtime = tokio::runtime::Runtime::new()?;
    let answers = runtime.block_on(student.generate(&request))?;
    for (i, a) in answers.iter().enumerate() {
        if args.json {
            println!(
                "{}",
                serde_json::json!({"index": i, "text": a.text, "finish_reason": a.finish_reason, "prompt_tokens": a.usage.prompt_tokens, "completion_tokens": a.usage.completion_tokens})
            );
        } else {
            if i > 0 {
                println!("---");
            }
            println!("{}", a.text);
        }
    }
    let usage = student.usage();
    tracing::info!(
        requests = usage.requests,
        prompt_tokens = usage.prompt_tokens,
        completion_tokens = usage.completion_tokens,
        cost_usd = usage.cost_usd,
        cache_hits = usage.cache_hits,
        "usage"
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::student_spec;

    #[test]
    fn a_bare_gguf_path_or_catalog_name_is_llamacpps() {
        assert_eq!(student_spec("qwen2.5-coder-1.5b-instruct"), "llamacpp:qwen2.5-coder-1.5b-instruct");
        assert_eq!(student_spec("models/a.gguf"), "llamacpp:models/a.gguf");
        // Prefixed specs pass unchanged; an unknown bare name is left for the spec parser to refuse.
        assert_eq!(student_spec("candle:qwen2.5-coder-1.5b-instruct"), "candle:qwen2.5-coder-1.5b-instruct");
        assert_eq!(student_spec("gpt-4o-mini"), "gpt-4o-mini");
    }
}
