//! `wst generate`, `wst train` (killed with SIGKILL, then `--resume`), `wst eval` and
//! `wst plot`, end to end on tiny models the test writes: a llama GGUF serves as both the
//! Teacher and the llama.cpp Student, scored by the real `math` plugin.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn wst() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wst"))
}

/// Questions with multibyte characters (two, three and four bytes), so that every log row the
/// run writes carries them and a kill can tear one inside a character.
fn write_data(dir: &Path, name: &str, range: std::ops::Range<i64>) {
    let rows: String = range
        .map(|i| {
            let question = format!("Combien font {i} € + {i} € ? (問題 {i}, 🧮)");
            format!("{}\n", serde_json::json!({"id": format!("{name}-{i}"), "question": question, "answer": format!("{} \n#### {}", 2 * i, 2 * i)}))
        })
        .collect();
    std::fs::write(dir.join(format!("{name}.jsonl")), rows).unwrap();
}

/// A tiny Llama model (seeded) as a GGUF in `dir`, with train and eval splits; returns the GGUF.
fn tiny_run(dir: &Path, seed: u64, train: std::ops::Range<i64>, eval: std::ops::Range<i64>) -> std::path::PathBuf {
    wst_tests::tiny::write_model(dir, wst_tests::tiny::Arch::Llama, seed);
    let gguf = wst_tests::tiny::write_gguf(dir);
    write_data(dir, "train", train);
    write_data(dir, "eval", eval);
    gguf
}

fn config(dir: &Path, gguf: &Path, steps: usize) -> std::path::PathBuf {
    config_with(dir, gguf, steps, "")
}

/// [`config`] with `wst` lines added (e.g. `async_generation = true`).
fn config_with(dir: &Path, gguf: &Path, steps: usize, wst_extra: &str) -> std::path::PathBuf {
    let plugins = wst_tests::plugin_path("wst_reward_math").parent().unwrap().to_path_buf();
    let text = format!(
        r#"plugin_dirs = ["{plugins}"]
[[rewards]]
plugin = "math"
[teacher]
model = "{gguf}"
dtype = "f32"
[student]
spec = "llamacpp:{gguf}"
cache_dir = "{cache}"
[student.sampling]
max_tokens = 8
temperature = 1.0
[student.llamacpp]
n_ctx = 512
[data.train]
path = "{dir}/train.jsonl"
task = "gsm8k"
[data.train.fields]
id = "id"
[data.eval]
path = "{dir}/eval.jsonl"
task = "gsm8k"
[data.eval.fields]
id = "id"
[grpo]
num_generations = 4
per_device_train_batch_size = 8
max_completion_length = 6
learning_rate = 0.01
max_steps = {steps}
[wst]
student_samples = 2
baseline_samples = 2
{wst_extra}
[output]
output_dir = "{dir}/out"
save_steps = 1
save_total_limit = 2
log_completions_steps = 1
"#,
        plugins = plugins.display(),
        gguf = gguf.display(),
        cache = dir.join("cache").display(),
        dir = dir.display(),
    );
    let p = dir.join("run.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn steps_logged(metrics: &Path) -> Vec<u64> {
    std::fs::read_to_string(metrics)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r.get("reward").is_some())
        .map(|r| r["step"].as_u64().unwrap())
        .collect()
}

#[test]
fn generate_prints_seeded_answers() {
    let dir = tempfile::tempdir().unwrap();
    wst_tests::tiny::write_model(dir.path(), wst_tests::tiny::Arch::Llama, 3);
    let gguf = wst_tests::tiny::write_gguf(dir.path());
    let run = || {
        let out = wst()
            .args(["generate", "--student"])
            .arg(format!("llamacpp:{}", gguf.display()))
            .args(["--prompt", "hello", "--instruction", "think", "--num-answers", "3", "--seed", "4", "-n", "6", "--json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let a = run();
    assert_eq!(a.lines().count(), 3);
    assert_eq!(a, run());
    let bad = wst().args(["generate", "--student", "gpt4", "--prompt", "x"]).output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no backend prefix"));
}

#[test]
fn train_survives_a_kill_then_eval_and_plot() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = tiny_run(dir.path(), 5, 1..7, 20..23);
    let cfg = config(dir.path(), &gguf, 6);
    let out = dir.path().join("out");
    let metrics = out.join("metrics.jsonl");

    // Kill -9 once two steps are logged.
    let mut child = wst().args(["train", "--no-progress", "--config"]).arg(&cfg).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let t0 = Instant::now();
    while steps_logged(&metrics).len() < 2 {
        assert!(t0.elapsed() < Duration::from_secs(240), "training made no progress");
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("wst train exited early ({status}): {err}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let logged = steps_logged(&metrics);
    assert!(logged.len() >= 2 && logged.len() < 6, "{logged:?}");

    // Progress on, stderr a pipe: no bar can be drawn, so each step is a line.
    let resumed = wst().args(["train", "--resume", "--config"]).arg(&cfg).output().unwrap();
    let err = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "{err}");
    assert_eq!(steps_logged(&metrics), (1..=6).collect::<Vec<_>>(), "each step logged once after the resume");
    let lines = err.lines().filter(|l| l.starts_with("step ") && l.contains("/6: reward ")).count();
    assert!(err.contains("step 6/6: reward ") && lines >= 6 - logged.len(), "{err}");
    // The final evaluation on data.eval is announced and its result printed.
    assert!(err.contains("step 6: evaluating the Teacher on data.eval") && err.contains("step 6: eval student "), "{err}");
    assert!(std::fs::read_to_string(&metrics).unwrap().contains("eval/student_score"));
    assert!(out.join("final/model.safetensors").is_file());
    let kept: Vec<_> = std::fs::read_dir(out.join("checkpoints")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(kept.len(), 2, "save_total_limit = 2: {kept:?}");
    assert!(out.join("plots/training.svg").is_file());

    let eval = wst().args(["eval", "--k", "2", "--few-shot", "1", "--instruction", "Be brief.", "--config"]).arg(&cfg).output().unwrap();
    assert!(eval.status.success(), "{}", String::from_utf8_lossy(&eval.stderr));
    let table = String::from_utf8(eval.stdout).unwrap();
    let log = String::from_utf8_lossy(&eval.stderr);
    assert!(log.contains("fixed-instruction: 3/3 queries") && log.contains("trained-teacher: 3/3 queries"), "progress lines in a log: {log}");
    for row in ["| direct |", "| direct-cot-fewshot |", "| fixed-instruction |", "| untrained-teacher |", "| trained-teacher |"] {
        assert!(table.contains(row), "{table}");
    }
    let results: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("eval/results.json")).unwrap()).unwrap();
    for m in results["methods"].as_array().unwrap() {
        assert_eq!(m["n_queries"], 3);
        assert!(m["ci_low"].as_f64().unwrap() <= m["value"].as_f64().unwrap() && m["value"].as_f64().unwrap() <= m["ci_high"].as_f64().unwrap());
        assert_eq!(m["metric"], "accuracy@K=2");
    }
    assert!(out.join("eval/results.csv").is_file() && out.join("eval/results.md").is_file());

    let plot = wst()
        .args(["plot", "--metrics"])
        .arg(&metrics)
        .arg("--pareto")
        .arg(out.join("eval/results.json"))
        .args(["--x", "accuracy", "--y", "accuracy", "--out"])
        .arg(dir.path().join("plots"))
        .output()
        .unwrap();
    assert!(plot.status.success(), "{}", String::from_utf8_lossy(&plot.stderr));
    // SVG only, its text written as text: no font needed, every row and axis named.
    let pareto = std::fs::read_to_string(dir.path().join("plots/pareto.svg")).unwrap();
    for text in ["trained-teacher", "untrained-teacher", "direct", "accuracy"] {
        assert!(pareto.lines().any(|line| line.trim() == text), "`{text}` not in pareto.svg");
    }
    assert!(std::fs::read_to_string(dir.path().join("plots/training.svg")).unwrap().contains("<text"));
    assert!(!dir.path().join("plots/pareto.png").exists());
}

#[test]
fn no_eval_trains_and_exports_without_scoring_data_eval() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = tiny_run(dir.path(), 7, 1..3, 20..23);
    let cfg = config(dir.path(), &gguf, 1);
    let run = wst().args(["train", "--no-eval", "--config"]).arg(&cfg).output().unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{err}");
    assert!(!err.contains("evaluating"), "{err}");
    let metrics = dir.path().join("out/metrics.jsonl");
    assert_eq!(steps_logged(&metrics), vec![1]);
    let text = std::fs::read_to_string(&metrics).unwrap();
    assert!(!text.contains("eval/"), "{text}");
    assert!(dir.path().join("out/final/config.json").is_file());
}

#[test]
fn quiet_leaves_only_errors_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = tiny_run(dir.path(), 8, 1..3, 20..22);
    let cfg = config(dir.path(), &gguf, 1);
    // stderr is a pipe, where progress would go out as lines: -q silences them and the status lines.
    let train = wst().args(["-q", "train", "--no-eval", "--config"]).arg(&cfg).output().unwrap();
    assert!(train.status.success(), "{}", String::from_utf8_lossy(&train.stderr));
    assert_eq!(String::from_utf8_lossy(&train.stderr), "", "wst -q train");
    assert!(String::from_utf8_lossy(&train.stdout).contains("steps_done"), "the summary still goes to stdout");
    let eval = wst().args(["-q", "eval", "--k", "1", "--few-shot", "0", "--instruction", "Be brief.", "--config"]).arg(&cfg).output().unwrap();
    assert!(eval.status.success(), "{}", String::from_utf8_lossy(&eval.stderr));
    assert_eq!(String::from_utf8_lossy(&eval.stderr), "", "wst -q eval");
    assert!(String::from_utf8_lossy(&eval.stdout).contains("| trained-teacher |"));
    // An error still reaches stderr under -q.
    let bad = wst().args(["-q", "eval", "--config"]).arg(dir.path().join("missing.toml")).output().unwrap();
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("missing.toml"));
}

fn comparable(metrics: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(metrics)
        .unwrap()
        .lines()
        .map(|l| {
            let mut r: serde_json::Value = serde_json::from_str(l).unwrap();
            r.as_object_mut().unwrap().retain(|k, _| !k.starts_with("time/") && !k.starts_with("student/"));
            r
        })
        .collect()
}

/// `kill -9` at seeded pseudo-random moments, three times, then `--resume` to the end: the
/// metrics and the final weights equal those of an uninterrupted run, bit for bit.
#[test]
fn sigkill_at_random_moments_loses_nothing_but_the_unfinished_step() {
    sigkill_then_resume("")
}

/// The same for pipelined training, whose checkpoints hold the batch sampled ahead.
#[test]
fn sigkill_of_a_pipelined_run_loses_nothing_but_the_unfinished_step() {
    sigkill_then_resume("async_generation = true")
}

fn sigkill_then_resume(wst_extra: &str) {
    let dir = tempfile::tempdir().unwrap();
    let gguf = tiny_run(dir.path(), 6, 1..9, 20..22);
    let steps = 6;
    let config = |d: &Path, g: &Path, s| config_with(d, g, s, wst_extra);

    let straight_dir = dir.path().join("straight");
    std::fs::create_dir_all(&straight_dir).unwrap();
    for f in ["train.jsonl", "eval.jsonl"] {
        std::fs::copy(dir.path().join(f), straight_dir.join(f)).unwrap();
    }
    let started = std::time::Instant::now();
    let straight = wst().args(["train", "--no-progress", "--config"]).arg(config(&straight_dir, &gguf, steps)).output().unwrap();
    assert!(straight.status.success(), "{}", String::from_utf8_lossy(&straight.stderr));
    // Kill moments are drawn within the uninterrupted run's own duration, so they land inside
    // the run however fast this machine is.
    let whole = started.elapsed();

    let cfg = config(dir.path(), &gguf, steps);
    let metrics = dir.path().join("out/metrics.jsonl");
    // A fixed-seed LCG: the kill moments differ from each other but repeat from run to run.
    let mut state: u64 = 0x5DEECE66D;
    let mut kills = Vec::new();
    // A run can end before its kill (a warm run is faster than the cold one measured above):
    // if none has landed yet, it starts over with the moments halved.
    let (mut scale, mut resume) = (1.0, false);
    for _ in 0..8 {
        let mut cmd = wst();
        cmd.args(["train", "--no-progress", "--config"]).arg(&cfg);
        if resume {
            cmd.arg("--resume");
        }
        let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let wait = whole.mul_f64(scale * (0.15 + 0.7 * ((state >> 33) % 1000) as f64 / 1000.0));
        std::thread::sleep(wait);
        let finished = child.try_wait().unwrap().is_some();
        child.kill().ok();
        child.wait().unwrap();
        kills.push((wait, steps_logged(&metrics).len(), finished));
        let landed = kills.iter().filter(|(_, _, finished)| !finished).count();
        if finished && landed == 0 {
            std::fs::remove_dir_all(dir.path().join("out")).unwrap();
            (scale, resume) = (scale * 0.5, false);
            continue;
        }
        if finished || landed == 3 {
            break;
        }
        resume = true;
    }
    let resumed = wst().args(["train", "--no-progress", "--resume", "--config"]).arg(&cfg).output().unwrap();
    assert!(resumed.status.success(), "kills {kills:?}: {}", String::from_utf8_lossy(&resumed.stderr));
    eprintln!("killed at (wait, steps logged, already finished): {kills:?}");
    assert!(kills.iter().any(|(_, _, finished)| !finished), "no kill landed inside the run: {kills:?}");
    assert_eq!(steps_logged(&metrics), (1..=steps as u64).collect::<Vec<_>>(), "kills {kills:?}");
    assert_eq!(comparable(&metrics), comparable(&straight_dir.join("out/metrics.jsonl")), "kills {kills:?}");
    // The completions table too: every row whole, multibyte text intact, as the uninterrupted run's.
    let rows = |p: &Path| {
        std::fs::read_to_string(p.join("out/completions.jsonl")).expect("valid UTF-8").lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()).collect::<Vec<_>>()
    };
    let (a, b) = (rows(dir.path()), rows(&straight_dir));
    assert!(a.iter().all(|r| r["query"].as_str().unwrap().contains("問題 ")) && a.len() == steps * 8, "{} rows", a.len());
    assert_eq!(a, b, "kills {kills:?}");
    let a = candle_core::safetensors::load(straight_dir.join("out/final/model.safetensors"), &candle_core::Device::Cpu).unwrap();
    let b = candle_core::safetensors::load(dir.path().join("out/final/model.safetensors"), &candle_core::Device::Cpu).unwrap();
    for (name, x) in &a {
        let d = (x - &b[name]).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert_eq!(d, 0.0, "{name} differs after kills {kills:?}");
    }
}
