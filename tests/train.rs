//! WST end to end through the public API: a tiny Teacher learns to write the hint a Student
//! needs (the Student answers correctly only when the instruction carries it), so the
//! Student's accuracy with instructions rises above its baseline; kill-and-resume continues
//! exactly where an uninterrupted run would be; a stop request leaves a checkpoint.

use std::sync::{Arc, Mutex};

use wst_sdk::config::{GrpoConfig, OutputConfig, WstSettings};
use wst_sdk::eval::{EvalMethod, EvalSettings, InstructionSource, evaluate};
use wst_sdk::reward::PluginReward;
use wst_sdk::student::DEFAULT_STUDENT_TEMPLATE;
use wst_sdk::teacher::{LmTeacher, TeacherOptions};
use wst_sdk::train::TrainHooks;
use wst_sdk::train::log::read_jsonl;
use wst_sdk::{Pipeline, Query, Teacher, TeacherSampling, TrainOptions};
use wst_tests::tiny::{Arch, write_model};
use wst_tests::{HintStudent, f32_teacher, plugin_path};

fn queries(range: std::ops::Range<i64>) -> Vec<Query> {
    range.map(|i| Query::new(format!("q{i}"), format!("What is {} + {}?", i, 2 * i + 1)).with_gold((3 * i + 1).to_string())).collect()
}

fn grpo(max_steps: usize) -> GrpoConfig {
    GrpoConfig {
        num_generations: 8,
        per_device_train_batch_size: 16,
        learning_rate: 2e-2,
        max_completion_length: 6,
        max_steps: Some(max_steps),
        beta: 0.0,
        seed: 3,
        ..Default::default()
    }
}

fn teacher(dir: &std::path::Path) -> LmTeacher {
    LmTeacher::load(dir.to_str().unwrap(), TeacherOptions { teacher: f32_teacher(), seed: 3 }).unwrap()
}

/// A character the untrained Teacher writes in some of its instructions (closest to 35%) that
/// neither a query nor the Student prompt's fixed text contains.
fn pick_hint(t: &mut LmTeacher, qs: &[Query]) -> String {
    let sampling = TeacherSampling { num_generations: 64, temperature: 1.0, top_p: 1.0, top_k: None, max_completion_length: 6, seed: 99, ..Default::default() };
    let samples = t.sample(&qs[..1], &sampling).unwrap().remove(0);
    let texts: Vec<String> = samples.into_iter().map(|s| s.instruction.text).collect();
    let mut best: Option<(f64, char)> = None;
    for c in texts.iter().flat_map(|t| t.chars()).collect::<std::collections::BTreeSet<char>>() {
        if c.is_whitespace() || qs.iter().any(|q| q.text.contains(c)) || DEFAULT_STUDENT_TEMPLATE.contains(c) {
            continue;
        }
        let f = texts.iter().filter(|t| t.contains(c)).count() as f64 / texts.len() as f64;
        let score = (f - 0.35).abs();
        if f > 0.0 && f < 0.8 && best.is_none_or(|(b, _)| score < b) {
            best = Some((score, c));
        }
    }
    best.expect("some character appears in some instructions").1.to_string()
}

fn pipeline(t: LmTeacher, hint: &str) -> Pipeline {
    let math = PluginReward::load(plugin_path("wst_reward_math"), &serde_json::json!({})).unwrap();
    Pipeline::builder().teacher(t).student(HintStudent::new(hint)).reward(math).build().unwrap()
}

fn options(out: &std::path::Path, steps: usize) -> TrainOptions {
    TrainOptions {
        grpo: grpo(steps),
        wst: WstSettings { student_samples: 2, baseline_samples: 2, ..Default::default() },
        output: OutputConfig { output_dir: out.to_path_buf(), save_steps: 1, save_total_limit: None, log_completions_steps: 1, ..Default::default() },
        ..Default::default()
    }
}

async fn accuracy_with_teacher(p: &Pipeline, qs: &[Query]) -> f64 {
    let sampling = TeacherSampling { num_generations: 1, temperature: 1.0, top_p: 1.0, top_k: None, max_completion_length: 6, seed: 5, ..Default::default() };
    let m = EvalMethod { name: "teacher".into(), source: InstructionSource::Teacher(sampling.clone()), prompt: None };
    let mut total = 0.0;
    // Several sampled instructions per query, so the estimate is not one coin flip per query.
    for seed in 0..4 {
        let settings = EvalSettings { student_samples: 1, seed, ..Default::default() };
        let m = EvalMethod { source: InstructionSource::Teacher(TeacherSampling { seed: 100 + seed, ..sampling.clone() }), ..m.clone() };
        total += evaluate(p, qs, &m, &settings).await.unwrap().0.value;
    }
    total / 4.0
}

/// The hint task: a tiny Teacher (seed 5), training and held-out queries, the hint it must
/// learn to write, and the pipeline (the model's folder must outlive it).
fn hint_task() -> (tempfile::TempDir, Vec<Query>, Vec<Query>, String, Pipeline) {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), Arch::Qwen2, 5);
    let train = queries(1..9);
    let held_out = queries(20..26);
    let mut t = teacher(dir.path());
    let hint = pick_hint(&mut t, &train);
    let p = pipeline(t, &hint);
    (dir, train, held_out, hint, p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_raises_the_students_accuracy_above_its_baseline() {
    let (_dir, train, held_out, hint, p) = hint_task();
    // Progress reaches (n, n) once per query.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let progress = wst_sdk::eval::Progress(Arc::new(move |done, total| s2.lock().unwrap().push((done, total))));
    let settings = EvalSettings { student_samples: 2, progress: Some(progress), ..Default::default() };
    let direct = evaluate(&p, &held_out, &EvalMethod { name: "direct".into(), source: InstructionSource::None, prompt: None }, &settings).await.unwrap().0;
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, (1..=6).map(|d| (d, 6)).collect::<Vec<_>>());
    let before = accuracy_with_teacher(&p, &held_out).await;
    let out = tempfile::tempdir().unwrap();
    let summary = p.train(&train, TrainOptions { eval_queries: held_out.clone(), ..options(out.path(), 25) }).await.unwrap();
    let after = accuracy_with_teacher(&p, &held_out).await;
    eprintln!("hint {hint:?}: direct {:.2}, untrained Teacher {before:.2}, trained Teacher {after:.2}", direct.value);
    assert_eq!(direct.value, 0.0, "without the hint the Student is always wrong");
    assert!(after > before + 0.2 && after > 0.7, "accuracy with instructions {before:.2} → {after:.2}");
    assert_eq!(summary.steps_done, 25);
    assert!(!summary.interrupted);

    // The logs: one metrics line per step with TRL's and WST's names, an eval record, a
    // completions table, checkpoints, the exported Teacher.
    let rows = read_jsonl(&out.path().join("metrics.jsonl")).unwrap();
    let steps: Vec<u64> = rows.iter().filter(|r| r.get("reward").is_some()).map(|r| r["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, (1..=25).collect::<Vec<_>>());
    for key in [
        "loss",
        "reward",
        "reward_std",
        "frac_reward_zero_std",
        "grad_norm",
        "learning_rate",
        "entropy",
        "num_tokens",
        "completions/mean_length",
        "completions/min_terminated_length",
        "completions/max_terminated_length",
        "clip_ratio/low_min",
        "clip_ratio/high_max",
        "wst/student_score",
        "wst/student_baseline",
        "wst/failed_queries",
        "student/requests",
        "rewards/accuracy/mean",
        "rewards/accuracy/std",
    ] {
        assert!(rows[0].get(key).is_some(), "metrics lack `{key}`: {}", rows[0]);
    }
    let first: f64 = rows[..3].iter().map(|r| r["wst/student_score"].as_f64().unwrap()).sum::<f64>() / 3.0;
    let last: f64 = rows.iter().filter(|r| r.get("reward").is_some()).rev().take(3).map(|r| r["wst/student_score"].as_f64().unwrap()).sum::<f64>() / 3.0;
    assert!(last > first, "training score {first:.2} → {last:.2}");
    assert_eq!(rows[0]["wst/student_baseline"], 0.0);
    assert!(rows[0]["entropy"].as_f64().unwrap() > 0.0, "a sampling policy has entropy");
    assert!(rows[1]["num_tokens"].as_u64().unwrap() > rows[0]["num_tokens"].as_u64().unwrap(), "num_tokens is cumulative");
    let eval = summary.last_eval.expect("an evaluation at the end");
    assert!(eval["eval/student_score"].as_f64().unwrap() > eval["eval/student_baseline"].as_f64().unwrap());
    assert!(read_jsonl(&out.path().join("completions.jsonl")).unwrap().len() >= 25 * 16);
    assert!(out.path().join("checkpoints/checkpoint-25/trainer_state.json").is_file());
    assert!(out.path().join("final/model.safetensors").is_file() && out.path().join("final/config.json").is_file());
}

fn comparable(rows: &[serde_json::Value]) -> Vec<serde_json::Value> {
    rows.iter()
        .map(|r| {
            let mut r = r.clone();
            let o = r.as_object_mut().unwrap();
            o.retain(|k, _| !k.starts_with("time/") && !k.starts_with("student/"));
            r
        })
        .collect()
}

/// Pipelined training (`wst.async_generation`): one step's instructions are sampled ahead.
fn pipelined(o: TrainOptions) -> TrainOptions {
    TrainOptions { wst: WstSettings { async_generation: true, ..o.wst.clone() }, ..o }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_training_also_raises_the_students_accuracy() {
    let (_dir, train, held_out, hint, p) = hint_task();
    let before = accuracy_with_teacher(&p, &held_out).await;
    let out = tempfile::tempdir().unwrap();
    let summary = p.train(&train, pipelined(options(out.path(), 25))).await.unwrap();
    let after = accuracy_with_teacher(&p, &held_out).await;
    eprintln!("pipelined, hint {hint:?}: untrained Teacher {before:.2}, trained Teacher {after:.2}");
    assert!(after > before + 0.2 && after > 0.7, "accuracy with instructions {before:.2} → {after:.2}");
    assert_eq!(summary.steps_done, 25);
    let rows: Vec<serde_json::Value> = read_jsonl(&out.path().join("metrics.jsonl")).unwrap().into_iter().filter(|r| r.get("reward").is_some()).collect();
    assert_eq!(rows.iter().map(|r| r["wst/staleness"].as_u64().unwrap()).collect::<Vec<_>>(), std::iter::once(0).chain([1; 24]).collect::<Vec<_>>());
    for r in rows.iter().filter(|r| r.get("loss").is_some()) {
        let (lo, mean, hi) = (
            r["sampling/importance_sampling_ratio/min"].as_f64().unwrap(),
            r["sampling/importance_sampling_ratio/mean"].as_f64().unwrap(),
            r["sampling/importance_sampling_ratio/max"].as_f64().unwrap(),
        );
        assert!(0.0 < lo && lo <= mean && mean <= hi && hi <= 2.0, "{r}");
        assert!(r["time/teacher_secs"].as_f64().unwrap() > 0.0 && r.get("time/student_wait_secs").is_some());
    }
    // The first step's samples are the policy's own: the sampler's and the trainer's
    // log-probs agree (the weights are 1 up to rounding).
    let first = &rows[0];
    assert!(first["sampling/sampling_logp_difference/max"].as_f64().unwrap() < 1e-3, "{first}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_resumes_exactly_where_it_stopped() {
    resumes_exactly(false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_pipelined_run_resumes_exactly_where_it_stopped() {
    resumes_exactly(true).await
}

async fn resumes_exactly(pipelined_run: bool) {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), Arch::Qwen2, 7);
    let train = queries(1..7);
    let hint = pick_hint(&mut teacher(dir.path()), &train);
    let options = |out: &std::path::Path, steps| if pipelined_run { pipelined(options(out, steps)) } else { options(out, steps) };

    let straight = tempfile::tempdir().unwrap();
    pipeline(teacher(dir.path()), &hint).train(&train, options(straight.path(), 6)).await.unwrap();

    let killed = tempfile::tempdir().unwrap();
    // Stop after three steps, as a cancellation does (a callback's Control).
    struct StopAfter(usize);
    impl wst_sdk::train::callback::TrainerCallback for StopAfter {
        fn on_step_end(&self, step: usize, _: &serde_json::Value) -> wst_sdk::train::callback::Control {
            wst_sdk::train::callback::Control { stop: step >= self.0, save: false }
        }
    }
    let stop: Arc<dyn wst_sdk::train::callback::TrainerCallback> = Arc::new(StopAfter(3));
    let first =
        pipeline(teacher(dir.path()), &hint).train(&train, TrainOptions { hooks: TrainHooks { callbacks: vec![stop], cancel: None }, ..options(killed.path(), 6) }).await.unwrap();
    assert!(first.interrupted && first.steps_done == 3);
    // Pipelined, the checkpoint keeps step 4's instructions, sampled before step 3's update.
    let state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(killed.path().join("checkpoints/checkpoint-3/trainer_state.json")).unwrap()).unwrap();
    let pending: Vec<(u64, u64)> = state["pending"].as_array().unwrap().iter().map(|b| (b["step"].as_u64().unwrap(), b["version"].as_u64().unwrap())).collect();
    assert_eq!(pending, if pipelined_run { vec![(3, 2)] } else { vec![] });
    // A kill during step 4 leaves a half-written temporary checkpoint and a partial log line.
    std::fs::create_dir_all(killed.path().join("checkpoints/.checkpoint-4.tmp/teacher")).unwrap();
    std::fs::remove_dir_all(killed.path().join("final")).ok();
    let resumed = pipeline(teacher(dir.path()), &hint).train(&train, TrainOptions { resume: true, ..options(killed.path(), 6) }).await.unwrap();
    assert_eq!((resumed.resumed_from, resumed.steps_done), (3, 6));

    let a = comparable(&read_jsonl(&straight.path().join("metrics.jsonl")).unwrap());
    let b = comparable(&read_jsonl(&killed.path().join("metrics.jsonl")).unwrap());
    assert_eq!(a, b, "the resumed run logs what the uninterrupted run logged");
    let wa = candle_core::safetensors::load(straight.path().join("final/model.safetensors"), &candle_core::Device::Cpu).unwrap();
    let wb = candle_core::safetensors::load(killed.path().join("final/model.safetensors"), &candle_core::Device::Cpu).unwrap();
    for (name, x) in &wa {
        let d = (x - &wb[name]).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert_eq!(d, 0.0, "{name} differs after resume");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_request_writes_a_checkpoint_and_resume_refuses_other_data() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), Arch::Qwen2, 9);
    let train = queries(1..5);
    let out = tempfile::tempdir().unwrap();
    let cancel = wst_sdk::train::CancellationToken::new();
    cancel.cancel();
    let s =
        pipeline(teacher(dir.path()), "x").train(&train, TrainOptions { hooks: TrainHooks { callbacks: vec![], cancel: Some(cancel) }, ..options(out.path(), 4) }).await.unwrap();
    assert!(s.interrupted && s.steps_done == 0);
    assert!(out.path().join("checkpoints/checkpoint-0/trainer_state.json").is_file());
    let other = queries(10..14);
    let err = pipeline(teacher(dir.path()), "x").train(&other, TrainOptions { resume: true, ..options(out.path(), 4) }).await.unwrap_err().to_string();
    assert!(err.contains("would change the experiment") && err.contains("data: 4 queries"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_a_finished_run_does_not_repeat_its_final_evaluation() {
    // A kill after the final checkpoint but before the process exits leaves a finished run;
    // `--resume` then redoes only the final evaluation, and its log line must not appear twice.
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), Arch::Qwen2, 11);
    let train = queries(1..5);
    let held_out = queries(20..22);
    let out = tempfile::tempdir().unwrap();
    let opts = || TrainOptions { eval_queries: held_out.clone(), ..options(out.path(), 2) };
    pipeline(teacher(dir.path()), "x").train(&train, opts()).await.unwrap();
    let before = comparable(&read_jsonl(&out.path().join("metrics.jsonl")).unwrap());
    assert_eq!(before.iter().filter(|r| r.get("eval/student_score").is_some()).count(), 1);
    let again = pipeline(teacher(dir.path()), "x").train(&train, TrainOptions { resume: true, ..opts() }).await.unwrap();
    assert_eq!((again.resumed_from, again.steps_done), (2, 2));
    let after = comparable(&read_jsonl(&out.path().join("metrics.jsonl")).unwrap());
    assert_eq!(before, after, "the log of a finished run reads the same after a resume");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_to_tensorboard_writes_an_event_file_per_run() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), Arch::Qwen2, 12);
    let train = queries(1..5);
    let out = tempfile::tempdir().unwrap();
    let mut opts = options(out.path(), 3);
    opts.output.report_to = vec![wst_sdk::config::ReportTo::Tensorboard];
    pipeline(teacher(dir.path()), "x").train(&train, opts).await.unwrap();
    let files: Vec<_> = std::fs::read_dir(out.path().join("runs")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].file_name().unwrap().to_string_lossy().starts_with("events.out.tfevents."));
    // TFRecord framing: u64 length, u32 masked crc, data, u32 masked crc.
    let bytes = std::fs::read(&files[0]).unwrap();
    let (mut at, mut events) = (0, Vec::new());
    while at < bytes.len() {
        let len = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
        events.push(bytes[at + 12..at + 12 + len].to_vec());
        at += 16 + len;
    }
    assert_eq!(at, bytes.len());
    assert_eq!(events.len(), 1 + 3, "the version event, then one per step");
    assert!(events[0].windows(13).any(|w| w == b"brain.Event:2"));
    for e in &events[1..] {
        for tag in [&b"reward"[..], b"wst/student_score", b"learning_rate"] {
            assert!(e.windows(tag.len()).any(|w| w == tag), "a step's event carries {}", String::from_utf8_lossy(tag));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn into_parts_hands_back_the_trained_teacher_as_its_own_type() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), Arch::Qwen2, 13);
    let lora = wst_sdk::config::LoraConfig { r: 4, ..Default::default() };
    let options_lora = TeacherOptions { teacher: wst_sdk::config::TeacherConfig { lora: Some(lora), ..f32_teacher() }, seed: 3 };
    let t = LmTeacher::load(dir.path().to_str().unwrap(), options_lora).unwrap();
    let out = tempfile::tempdir().unwrap();
    let p = pipeline(t, "x");
    p.train(&queries(1..3), options(out.path(), 1)).await.unwrap();
    let parts = p.into_parts().unwrap();
    assert_eq!(parts.student.name(), "hint-student");
    let teacher = parts.teacher.expect("built with a Teacher");
    assert!(teacher.downcast_ref::<wst_tests::ScriptedTeacher>().is_none(), "another type is refused");
    let lm = teacher.downcast::<LmTeacher>().unwrap_or_else(|_| panic!("an LmTeacher"));
    let adapter = out.path().join("adapter");
    lm.save_adapter(&adapter).unwrap();
    assert!(adapter.join("adapter_model.safetensors").is_file() && adapter.join("adapter_config.json").is_file());
}

/// Records every callback, and asks for a save after step 1 and a stop after step 2.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl wst_sdk::train::TrainerCallback for Recorder {
    fn on_train_begin(&self, step: usize, total: usize) {
        self.0.lock().unwrap().push(format!("begin {step}/{total}"));
    }
    fn on_phase(&self, step: usize, phase: wst_sdk::train::Phase) {
        self.0.lock().unwrap().push(format!("{step}:{}", phase.label()));
    }
    fn on_step_end(&self, step: usize, record: &serde_json::Value) -> wst_sdk::train::Control {
        assert_eq!(record["step"], step);
        self.0.lock().unwrap().push(format!("end {step}"));
        wst_sdk::train::Control { save: step == 1, stop: step == 2 }
    }
    fn on_checkpoint(&self, step: usize, dir: &std::path::Path) {
        assert!(dir.join("trainer_state.json").is_file());
        self.0.lock().unwrap().push(format!("checkpoint {step}"));
    }
    fn on_train_end(&self, summary: &wst_sdk::TrainSummary) {
        self.0.lock().unwrap().push(format!("done {} interrupted={}", summary.steps_done, summary.interrupted));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_see_each_phase_and_can_save_and_stop() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), Arch::Qwen2, 14);
    let out = tempfile::tempdir().unwrap();
    let rec = Arc::new(Recorder::default());
    let mut opts = options(out.path(), 5);
    opts.output.save_steps = 0;
    opts.hooks.callbacks = vec![rec.clone()];
    let s = pipeline(teacher(dir.path()), "x").train(&queries(1..3), opts).await.unwrap();
    assert!(s.interrupted && s.steps_done == 2);
    let events = rec.0.lock().unwrap().clone();
    let want = [
        "begin 0/5",
        "0:instructions",
        "0:baselines",
        "0:answers",
        "0:update",
        "end 1",
        "1:checkpoint",
        "checkpoint 1",
        "1:instructions",
        "1:answers",
        "1:update",
        "end 2",
        "2:checkpoint",
        "checkpoint 2",
        "done 2 interrupted=true",
    ];
    // A step whose groups all have zero spread has no update phase; everything else is fixed.
    let without_update = |v: &[String]| v.iter().filter(|e| !e.ends_with(":update")).cloned().collect::<Vec<_>>();
    assert_eq!(without_update(&events), without_update(&want.map(String::from)), "{events:#?}");
    assert!(out.path().join("checkpoints/checkpoint-1").is_dir(), "the save request wrote a checkpoint");
}

/// Notes whether `final/` was already written when the final evaluation began.
struct ExportWatch {
    out: std::path::PathBuf,
    total: usize,
    exported_before_eval: Mutex<Option<bool>>,
}

impl wst_sdk::train::TrainerCallback for ExportWatch {
    fn on_phase(&self, step: usize, phase: wst_sdk::train::Phase) {
        if step == self.total && phase == wst_sdk::train::Phase::Eval {
            *self.exported_before_eval.lock().unwrap() = Some(self.out.join("final/config.json").is_file());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trained_teacher_is_exported_before_the_final_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), Arch::Qwen2, 15);
    let out = tempfile::tempdir().unwrap();
    let cb = Arc::new(ExportWatch { out: out.path().to_path_buf(), total: 2, exported_before_eval: Mutex::new(None) });
    let mut opts = options(out.path(), 2);
    opts.eval_queries = queries(20..22);
    opts.hooks.callbacks = vec![cb.clone()];
    let s = pipeline(teacher(dir.path()), "x").train(&queries(1..3), opts).await.unwrap();
    assert_eq!(s.steps_done, 2);
    assert!(s.last_eval.is_some(), "the final evaluation ran");
    assert_eq!(*cb.exported_before_eval.lock().unwrap(), Some(true), "final/ existed when the final evaluation began");
}
