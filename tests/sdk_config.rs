//! A run configuration through the SDK alone, as an app embedding wst would use it: a TOML
//! string to a trained Teacher (`Pipeline::from_config`, `TrainOptions::from_config`) and to
//! the paper's comparison table (`eval::run_plan`), which must equal what `wst eval` writes for
//! the same config and seed.

use std::path::Path;

use wst_llamacpp::LlamaCppBackend;
use wst_sdk::backend::Backends;
use wst_sdk::config::WstConfig;
use wst_sdk::dataset::load_queries;
use wst_sdk::eval::{EvalPlan, Report, run_plan};
use wst_sdk::{Pipeline, TrainOptions};
use wst_tests::tiny::write_teacher_and_student;
use wst_tests::{artifact_dir, build_plugins};

fn write_data(path: &Path, from: i64) {
    let rows: String = (from..from + 4).map(|i| format!("{{\"id\": \"q{i}\", \"question\": \"What is {i} + {i}?\", \"answer\": \"{}\"}}\n", 2 * i)).collect();
    std::fs::write(path, rows).unwrap();
}

fn config(dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"
plugin_dirs = ["{plugins}"]
[teacher]
model = "{d}/teacher"
dtype = "f32"
[teacher.lora]
r = 2
lora_alpha = 4.0
[student]
spec = "llamacpp:{d}/student/model.gguf"
cache_dir = "{d}/sdk-cache"
[student.sampling]
max_tokens = 6
temperature = 0.8
[student.llamacpp]
n_ctx = 512
[[rewards]]
plugin = "math"
[data.train]
path = "{d}/train.jsonl"
task = "gsm8k"
[data.train.fields]
query = "question"
gold = "answer"
id = "id"
[data.eval]
path = "{d}/eval.jsonl"
task = "gsm8k"
[data.eval.fields]
query = "question"
gold = "answer"
id = "id"
[grpo]
num_generations = 2
per_device_train_batch_size = 2
max_steps = 2
max_completion_length = 4
learning_rate = 1e-3
seed = 5
[wst]
student_samples = 2
baseline_samples = 2
max_concurrency = 2
[output]
output_dir = "{d}/out"
save_steps = 1
"#,
        plugins = artifact_dir().display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_toml_string_trains_and_evaluates_through_the_sdk_as_wst_eval_does() {
    build_plugins();
    let dir = tempfile::tempdir().unwrap();
    write_teacher_and_student(dir.path());
    // The Student runs in llama.cpp (f32 weights), which the default build of `wst` links.
    wst_tests::tiny::write_gguf(&dir.path().join("student"));
    write_data(&dir.path().join("train.jsonl"), 1);
    write_data(&dir.path().join("eval.jsonl"), 20);
    let text = config(dir.path());
    let cfg = WstConfig::from_toml_str(&text, "run.toml").unwrap();
    let backends = Backends::new().with(LlamaCppBackend);
    backends.check(&cfg.student).unwrap();

    // Train: one call from the config.
    let pipeline = Pipeline::from_config(&cfg, &backends).unwrap();
    let queries = load_queries(&cfg.data.train).unwrap();
    let summary = pipeline.train(&queries, TrainOptions::from_config(&cfg).unwrap()).await.unwrap();
    assert_eq!(summary.steps_done, 2);
    let trained = summary.final_dir.expect("the trained Teacher was exported");
    assert!(dir.path().join("out/config.toml").is_file(), "the run's config is recorded");
    // The exported Teacher says how it was sampled and which Student prompt it wrote for.
    let card = wst_sdk::teacher::TeacherCard::read(&trained).unwrap().expect("final/ has wst_teacher.json");
    assert_eq!(card.sampling.as_ref().map(|s| s.max_completion_length), Some(4));
    assert_eq!(card.student_prompt, Some(cfg.student.prompt.clone()));
    let adapter_card = wst_sdk::teacher::TeacherCard::read(&trained.join("adapter")).unwrap().expect("final/adapter/ has its card too");
    assert_eq!(adapter_card, card, "the PEFT adapter's card is as complete as the model's");

    // Evaluate: one call from the config and a plan.
    let sdk_out = dir.path().join("sdk-eval");
    let plan = EvalPlan { trained: vec![("trained-teacher".into(), trained.display().to_string())], few_shot: 0, out: Some(sdk_out.clone()), ..EvalPlan::new(&cfg) };
    let report = run_plan(&cfg, &backends, &plan, &Default::default()).await.unwrap();
    let names: Vec<&str> = report.methods.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["direct", "untrained-teacher", "trained-teacher"]);
    assert_eq!(report.methods[0].metric, "accuracy@K=2");

    // `wst eval` on the same config file writes the same results.json.
    let wst = artifact_dir().join("wst");
    assert!(wst.is_file(), "{} is missing (cargo test --workspace builds it)", wst.display());
    std::fs::write(dir.path().join("run.toml"), &text).unwrap();
    let cli_out = dir.path().join("cli-eval");
    // Its own response cache, so that every answer is computed again, not read back from the
    // SDK's run.
    let cli_cache = dir.path().join("cli-cache");
    let out = std::process::Command::new(&wst)
        .current_dir(dir.path())
        .args(["eval", "-q", "--config"])
        .arg(dir.path().join("run.toml"))
        .arg("--set")
        .arg(format!("student.cache_dir=\"{}\"", cli_cache.display()))
        .args(["--few-shot", "0", "--teacher"])
        .arg(&trained)
        .arg("--out")
        .arg(&cli_out)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(cli_cache.join("responses.jsonl").is_file(), "wst eval answered with its own Student");
    let read = |p: &Path| -> Report { serde_json::from_str(&std::fs::read_to_string(p.join("results.json")).unwrap()).unwrap() };
    assert_eq!(read(&sdk_out), read(&cli_out));
}
