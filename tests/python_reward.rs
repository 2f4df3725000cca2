//! The `python` reward plugin: TRL-style reward functions in Python, through the plugin ABI.
//! Runs in the virtual environment `scripts/setup.sh` prepares (`WST_PYREWARD`, default
//! /var/tmp/wst-pyreward: numpy, math-verify and TRL's reward functions).

use std::path::Path;
use std::sync::Arc;

use wst_sdk::Reward;
use wst_sdk::Weights;
use wst_sdk::reward::{PluginReward, RewardInput, WeightedReward};
use wst_tests::plugin_path;

use wst_tests::python_env::{python as venv_python, rewards_fixture as fixture, trl_rewards_file};

fn load(file: &Path, function: &str, extra: serde_json::Value) -> wst_sdk::Result<PluginReward> {
    let mut config = serde_json::json!({ "file": file, "function": function, "python": venv_python() });
    config.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    PluginReward::load(plugin_path("wst_reward_python"), &config)
}

fn item(answer: &str, solution: Option<&str>, tokens: u64, finish: &str, instruction: Option<&str>) -> RewardInput {
    // A dataset's declared metadata columns are on every row (null where a row has no value).
    let mut metadata = serde_json::Map::new();
    metadata.insert("solution".into(), solution.map_or(serde_json::Value::Null, Into::into));
    RewardInput {
        query: "What is 2 + 2?".into(),
        instruction: instruction.map(Into::into),
        answer: answer.into(),
        gold: Some("4".into()),
        metadata,
        completion_tokens: Some(tokens),
        finish_reason: Some(finish.into()),
    }
}

#[test]
fn a_trl_style_function_scores_and_none_means_no_score() {
    let r = load(&fixture(), "correctness", serde_json::json!({})).unwrap();
    assert_eq!(r.value_names(), ["correctness"], "the values default to the function's name");
    let items = [item("It is 4.", Some("4"), 5, "stop", None), item("It is 5.", Some("4"), 5, "stop", None), item("It is 4.", None, 5, "stop", None)];
    let s = r.score(&items).unwrap();
    assert_eq!(s.iter().map(|s| s.get("correctness")).collect::<Vec<_>>(), [Some(1.0), Some(0.0), None]);

    // None adds nothing to the weighted sum (TRL's nansum); an answer with no weighted value at
    // all is an error, not a silent zero.
    let cost = PluginReward::load(plugin_path("wst_reward_cost"), &serde_json::json!({ "budget": 10 })).unwrap();
    let w = WeightedReward::new(vec![Arc::new(r), Arc::new(cost)], Weights::new([("python/correctness", 1.0), ("cost/token_cost", -1.0)])).unwrap();
    let totals: Vec<f64> = w.score(&items).unwrap().iter().map(|s| s.total).collect();
    assert_eq!(totals, [0.5, -0.5, -0.5]);
    let only = WeightedReward::new(vec![Arc::new(load(&fixture(), "correctness", serde_json::json!({})).unwrap())], Weights::default()).unwrap();
    let err = only.score(&items[2..]).unwrap_err().to_string();
    assert!(err.contains("no weighted value was scored"), "{err}");
}

#[test]
fn a_dict_of_lists_gives_several_named_values() {
    let r = load(&fixture(), "shape", serde_json::json!({ "values": ["tokens", "cut", "instructed"] })).unwrap();
    assert_eq!(r.value_names(), ["tokens", "cut", "instructed"]);
    let s = r.score(&[item("a", None, 7, "stop", Some("Be brief.")), item("b", None, 512, "length", None)]).unwrap();
    assert_eq!((s[0].get("tokens"), s[0].get("cut"), s[0].get("instructed")), (Some(7.0), Some(0.0), Some(1.0)));
    assert_eq!((s[1].get("tokens"), s[1].get("cut"), s[1].get("instructed")), (Some(512.0), Some(1.0), Some(0.0)));
    // Names the config does not give are an error that names both sets.
    let r = load(&fixture(), "shape", serde_json::json!({ "values": ["tokens"] })).unwrap();
    let err = r.score(&[item("a", None, 7, "stop", None)]).unwrap_err().to_string();
    assert!(err.contains("['cut', 'instructed', 'tokens']") && err.contains("['tokens']"), "{err}");
}

#[test]
fn plain_text_when_not_conversational() {
    let r = load(&fixture(), "plain", serde_json::json!({ "conversational": false })).unwrap();
    assert_eq!(r.score(&[item("four", None, 1, "stop", None)]).unwrap()[0].get("plain"), Some(4.0));
}

#[test]
fn numpy_imports_inside_a_reward() {
    let r = load(&fixture(), "with_numpy", serde_json::json!({})).unwrap();
    let s = r.score(&[item("12345", None, 1, "stop", None), item("1234567890", None, 1, "stop", None)]).unwrap();
    assert_eq!((s[0].get("with_numpy"), s[1].get("with_numpy")), (Some(0.5), Some(1.0)));
}

#[test]
fn an_exception_names_the_file_the_function_and_the_line() {
    let r = load(&fixture(), "broken", serde_json::json!({})).unwrap();
    let err = r.score(&[item("a", None, 1, "stop", None)]).unwrap_err().to_string();
    assert!(err.contains("broken in") && err.contains("rewards.py") && err.contains("line 37") && err.contains("IndexError"), "{err}");
    // The plugin goes on after an exception.
    let ok = load(&fixture(), "plain", serde_json::json!({ "conversational": false })).unwrap();
    assert!(ok.score(&[item("x", None, 1, "stop", None)]).is_ok());
}

#[test]
fn wrong_results_are_errors_that_say_what_was_wrong() {
    let err = load(&fixture(), "too_few", serde_json::json!({})).unwrap().score(&[item("a", None, 1, "stop", None), item("b", None, 1, "stop", None)]).unwrap_err().to_string();
    assert!(err.contains("has 1 values for 2 completions"), "{err}");
    let err = load(&fixture(), "not_numbers", serde_json::json!({})).unwrap().score(&[item("a", None, 1, "stop", None)]).unwrap_err().to_string();
    assert!(err.contains("not_numbers") && err.contains("str 'yes', not a number or None"), "{err}");
}

#[test]
fn a_missing_file_or_function_fails_at_load() {
    let err = load(Path::new("/nonexistent/rewards.py"), "correctness", serde_json::json!({})).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/rewards.py") && err.contains("does not exist"), "{err}");
    let err = load(&fixture(), "nope", serde_json::json!({})).unwrap_err().to_string();
    assert!(err.contains("no function `nope`") && err.contains("correctness") && err.contains("rewards.py"), "{err}");
    let err = PluginReward::load(plugin_path("wst_reward_python"), &serde_json::json!({ "file": fixture(), "function": "plain", "python": "/nonexistent/python" }))
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot run the Python interpreter `/nonexistent/python`"), "{err}");
}

/// TRL's own `accuracy_reward` (math-verify), from the TRL package installed in the test
/// environment, unchanged.
#[test]
fn trls_accuracy_reward_runs_unchanged() {
    let r = load(&trl_rewards_file("accuracy_rewards.py"), "accuracy_reward", serde_json::json!({})).unwrap();
    let s = r
        .score(&[item(r"The answer is $\boxed{\frac{1}{3}}$", Some(r"$\frac{1}{3}$"), 9, "stop", None), item(r"So $\boxed{\frac{1}{2}}$", Some(r"$\frac{1}{3}$"), 9, "stop", None)])
        .unwrap();
    assert_eq!((s[0].get("accuracy_reward"), s[1].get("accuracy_reward")), (Some(1.0), Some(0.0)));
}

/// A Python with no shared libpython (a static build) is named, with what to install.
#[test]
fn a_python_without_a_shared_libpython_says_what_to_install() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("python");
    let describe = r#"{"version": [3, 12], "base_prefix": "/opt/py", "base_exec_prefix": "/opt/py", "libdir": "/opt/py/lib", "ldlibrary": "libpython3.12.a", "instsoname": "libpython3.12.a", "shared": 0, "needs_home": false, "sys_path": []}"#;
    std::fs::write(&fake, format!("#!/bin/sh\necho '{describe}'\n")).unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let err = PluginReward::load(plugin_path("wst_reward_python"), &serde_json::json!({ "file": fixture(), "function": "plain", "python": fake })).unwrap_err().to_string();
    assert!(err.contains("has no shared libpython") && err.contains("--enable-shared") && err.contains("libpython3-dev"), "{err}");
}

/// Through training: a Python reward's named values reach metrics.jsonl, mixed with `math`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_values_reach_the_training_metrics_under_their_names() {
    use wst_candle::CandleBackend;
    use wst_sdk::backend::Backends;
    use wst_sdk::config::WstConfig;
    use wst_sdk::dataset::load_queries;
    use wst_sdk::{Pipeline, TrainOptions};

    wst_tests::build_plugins();
    let dir = tempfile::tempdir().unwrap();
    wst_tests::tiny::write_teacher_and_student(dir.path());
    let rows: String = (1..5).map(|i| format!("{{\"id\": \"q{i}\", \"question\": \"What is {i} + {i}?\", \"answer\": \"{}\", \"solution\": \"{}\"}}\n", 2 * i, 2 * i)).collect();
    std::fs::write(dir.path().join("train.jsonl"), rows).unwrap();
    let d = dir.path().display();
    let text = format!(
        r#"
plugin_dirs = ["{plugins}"]
[teacher]
model = "{d}/teacher"
dtype = "f32"
[student]
spec = "candle:{d}/student"
cache_dir = "{d}/cache"
[student.sampling]
max_tokens = 6
[[rewards]]
plugin = "math"
[[rewards]]
plugin = "python"
config = {{ file = "{fixture}", function = "shape", values = ["tokens", "cut", "instructed"], python = "{python}" }}
[reward_weights]
"math/accuracy" = 1.0
"python/tokens" = -0.01
[data.train]
path = "{d}/train.jsonl"
task = "gsm8k"
[data.train.fields]
query = "question"
gold = "answer"
id = "id"
metadata = ["solution"]
[grpo]
num_generations = 2
per_device_train_batch_size = 2
max_steps = 1
max_completion_length = 4
seed = 5
[wst]
student_samples = 2
baseline_samples = 2
[output]
output_dir = "{d}/out"
"#,
        plugins = wst_tests::artifact_dir().display(),
        fixture = fixture().display(),
        python = venv_python().display(),
    );
    let cfg = WstConfig::from_toml_str(&text, "run.toml").unwrap();
    let backends = Backends::new().with(CandleBackend);
    let pipeline = Pipeline::from_config(&cfg, &backends).unwrap();
    let queries = load_queries(&cfg.data.train).unwrap();
    let summary = pipeline.train(&queries, TrainOptions::from_config(&cfg).unwrap()).await.unwrap();
    assert_eq!(summary.steps_done, 1);
    let metrics = std::fs::read_to_string(dir.path().join("out/metrics.jsonl")).unwrap();
    let step: serde_json::Value = metrics.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()).find(|r| r.get("reward").is_some()).unwrap();
    for name in ["python/tokens", "python/cut", "python/instructed", "math/accuracy"] {
        assert!(step[format!("rewards/{name}/mean")].is_number(), "rewards/{name}/mean missing from {step}");
    }
    assert_eq!(step["rewards/python/instructed/mean"].as_f64(), Some(1.0), "every training answer had an instruction: {step}");
}
