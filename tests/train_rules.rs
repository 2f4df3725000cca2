//! The training loop's rules, through `Pipeline::train` with a scripted Teacher (so every
//! instruction, advantage and learning rate it is handed can be checked by hand): zero-std
//! groups kept, skipped or resampled; batch scaling and uncentred advantages; num_iterations
//! and the schedule; failed queries; output folders that hold an earlier run; bad input.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use wst_sdk::config::{GrpoConfig, OutputConfig, WstSettings, ZeroStdGroups};
use wst_sdk::grpo::{Centring, ScaleRewards};
use wst_sdk::reward::RewardInput;
use wst_sdk::train::log::read_jsonl;
use wst_sdk::{Error, Pipeline, Query, Result, Reward, Score, Student, StudentRequest, StudentSample, TrainOptions};
use wst_tests::{HintStudent, ScriptedStep, ScriptedTeacher};

/// 1 when the answer states the gold answer.
struct States;

impl Reward for States {
    fn name(&self) -> &str {
        "accuracy"
    }
    fn value_names(&self) -> Vec<String> {
        vec!["accuracy".into()]
    }
    fn score(&self, inputs: &[RewardInput]) -> Result<Vec<Score>> {
        Ok(inputs.iter().map(|i| Score::single("accuracy", i.answer.contains(&format!("is {}.", i.gold.clone().unwrap_or_default())) as u8 as f64)).collect())
    }
}

fn queries(n: i64) -> Vec<Query> {
    (1..=n).map(|i| Query::new(format!("q{i}"), format!("What is {i} + {i}?")).with_gold((2 * i).to_string())).collect()
}

/// Query 1 of each step gets two helpful instructions of four; query 2 none (a zero-std group);
/// a second sampling (a resample) of query 2 gets helpful ones again.
const SCRIPT: [&str; 8] = ["use the hint", "guess", "use the hint", "guess", "guess", "guess", "guess", "guess"];

fn grpo(steps: usize) -> GrpoConfig {
    GrpoConfig {
        num_generations: 4,
        per_device_train_batch_size: 8,
        max_steps: Some(steps),
        learning_rate: 1.0,
        lr_scheduler_type: wst_sdk::config::LrScheduler::Linear,
        seed: 1,
        ..Default::default()
    }
}

fn options(out: &std::path::Path, grpo: GrpoConfig, wst: WstSettings) -> TrainOptions {
    TrainOptions { grpo, wst, output: OutputConfig { output_dir: out.to_path_buf(), save_steps: 1, ..Default::default() }, ..Default::default() }
}

fn wst(zero_std: ZeroStdGroups) -> WstSettings {
    WstSettings { student_samples: 2, baseline_samples: 2, zero_std_groups: zero_std, ..Default::default() }
}

async fn train(student: Arc<dyn Student>, qs: &[Query], opts: TrainOptions) -> (Result<wst_sdk::TrainSummary>, Vec<ScriptedStep>) {
    let teacher = ScriptedTeacher::new(&SCRIPT);
    let steps = teacher.steps.clone();
    let p = Pipeline::builder().teacher(teacher).student_arc(student).reward(States).build().unwrap();
    let r = p.train(qs, opts).await;
    let seen = steps.lock().unwrap().clone();
    (r, seen)
}

fn metrics(out: &std::path::Path) -> Vec<serde_json::Value> {
    read_jsonl(&out.join("metrics.jsonl")).unwrap().into_iter().filter(|r| r.get("reward").is_some() || r.get("wst/step_skipped").is_some()).collect()
}

fn close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
    }
}

#[tokio::test]
async fn zero_std_groups_are_kept_skipped_or_resampled() {
    let qs = queries(2);
    let hint: Arc<dyn Student> = Arc::new(HintStudent::new("hint"));
    // Rewards of query 1: [1, 0, 1, 0] − s, with s = 0 (the Student alone is wrong): A = ±0.5/(std + 1e-4).
    let a = 0.5 / ((1.0f64 / 3.0).sqrt() + 1e-4);
    let q1 = [a as f32, -a as f32, a as f32, -a as f32];

    let out = tempfile::tempdir().unwrap();
    let (r, steps) = train(hint.clone(), &qs, options(out.path(), grpo(1), wst(ZeroStdGroups::Keep))).await;
    r.unwrap();
    assert_eq!(steps[0].advantages.len(), 8, "both groups trained on");
    let m = &metrics(out.path())[0];
    assert_eq!((m["frac_reward_zero_std"].as_f64(), m["wst/skipped_groups"].as_u64()), (Some(0.5), Some(0)));
    let zero: Vec<f32> = steps[0].advantages.iter().copied().filter(|x| *x == 0.0).collect();
    assert_eq!(zero.len(), 4, "the zero-std group's advantages are 0: {:?}", steps[0].advantages);

    let out = tempfile::tempdir().unwrap();
    let (r, steps) = train(hint.clone(), &qs, options(out.path(), grpo(1), wst(ZeroStdGroups::Skip))).await;
    r.unwrap();
    close(&steps[0].advantages, &q1);
    assert_eq!(metrics(out.path())[0]["wst/skipped_groups"], 1);

    let out = tempfile::tempdir().unwrap();
    let (r, steps) = train(hint.clone(), &qs, options(out.path(), grpo(1), wst(ZeroStdGroups::Resample))).await;
    r.unwrap();
    assert_eq!(steps[0].instructions[4..], ["use the hint", "guess", "use the hint", "guess"], "query 2's group was sampled again");
    close(&steps[0].advantages[4..], &q1);
    let m = &metrics(out.path())[0];
    assert_eq!((m["wst/resampled_groups"].as_u64(), m["wst/frac_zero_std_before_resample"].as_f64(), m["frac_reward_zero_std"].as_f64()), (Some(1), Some(0.5), Some(0.0)));
}

#[tokio::test]
async fn batch_scaling_and_uncentred_advantages_by_hand() {
    let qs = queries(2);
    let hint: Arc<dyn Student> = Arc::new(HintStudent::new("hint"));
    // Rewards [1, 0, 1, 0, 0, 0, 0, 0]: batch std (n − 1) = √(2·(1−0.25)²... ) computed below.
    let r = [1.0f64, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0];
    let mean = 0.25;
    let std = (r.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / 7.0).sqrt();
    let out = tempfile::tempdir().unwrap();
    let g = GrpoConfig { scale_rewards: ScaleRewards::Batch, ..grpo(1) };
    let (res, steps) = train(hint.clone(), &qs, options(out.path(), g, wst(ZeroStdGroups::Keep))).await;
    res.unwrap();
    let a = (0.5 / (std + 1e-4)) as f32;
    close(&steps[0].advantages, &[a, -a, a, -a, 0.0, 0.0, 0.0, 0.0]);

    // The paper's r = mean − s as it is: s matters. A Student right half the time on its own
    // (baseline 0.5) turns the same answers into r = [0.5, −0.5, 0.5, −0.5] and [−0.5; 4].
    struct Half(HintStudent);
    #[async_trait]
    impl Student for Half {
        fn name(&self) -> &str {
            "half"
        }
        async fn generate(&self, r: &StudentRequest) -> Result<Vec<StudentSample>> {
            let mut a = self.0.generate(r).await?;
            if !r.messages.last().unwrap().content.contains("Instructions") {
                // Without an instruction: answer 0 right, answer 1 wrong.
                let right =
                    self.0.generate(&StudentRequest { messages: vec![wst_sdk::ChatMessage::user(format!("{} hint", r.messages.last().unwrap().content))], ..r.clone() }).await?;
                a[0] = right[0].clone();
            }
            Ok(a)
        }
    }
    let out = tempfile::tempdir().unwrap();
    let g = GrpoConfig { scale_rewards: ScaleRewards::None, ..grpo(1) };
    let w = WstSettings { centring: Centring::None, ..wst(ZeroStdGroups::Keep) };
    let (res, steps) = train(Arc::new(Half(HintStudent::new("hint"))), &qs, options(out.path(), g, w)).await;
    res.unwrap();
    close(&steps[0].advantages, &[0.5, -0.5, 0.5, -0.5, -0.5, -0.5, -0.5, -0.5]);
    assert_eq!(metrics(out.path())[0]["wst/student_baseline"], 0.5);
}

#[tokio::test]
async fn each_generation_step_gets_num_iterations_learning_rates_from_one_schedule() {
    let qs = queries(2);
    let out = tempfile::tempdir().unwrap();
    let g = GrpoConfig { num_iterations: 2, per_device_train_batch_size: 4, ..grpo(3) };
    let (r, steps) = train(Arc::new(HintStudent::new("hint")), &qs, options(out.path(), g, wst(ZeroStdGroups::Keep))).await;
    r.unwrap();
    // 3 steps × μ 2 = 6 optimiser steps, linear decay from 1: 1, 5/6, 4/6, 3/6, 2/6, 1/6.
    let rates: Vec<f64> = steps.iter().flat_map(|s| s.learning_rates.clone()).collect();
    let want = [1.0, 5.0 / 6.0, 4.0 / 6.0, 3.0 / 6.0, 2.0 / 6.0, 1.0 / 6.0];
    assert_eq!(rates.len(), 6);
    for (a, b) in rates.iter().zip(want) {
        assert!((a - b).abs() < 1e-12, "{rates:?}");
    }
    assert!((metrics(out.path())[2]["learning_rate"].as_f64().unwrap() - 1.0 / 6.0).abs() < 1e-12, "the last optimisation step of a batch is logged");
}

/// Fails every request for a query whose text contains `boom`.
struct Flaky {
    inner: HintStudent,
    failures: AtomicUsize,
}

#[async_trait]
impl Student for Flaky {
    fn name(&self) -> &str {
        "flaky"
    }
    async fn generate(&self, r: &StudentRequest) -> Result<Vec<StudentSample>> {
        if r.messages.iter().any(|m| m.content.contains("boom")) {
            self.failures.fetch_add(1, Ordering::SeqCst);
            return Err(Error::Student { student: "flaky".into(), message: "HTTP 500 after 6 retries".into() });
        }
        self.inner.generate(r).await
    }
}

#[tokio::test]
async fn a_failing_query_is_left_out_and_too_many_stop_the_run_after_a_checkpoint() {
    let mut qs = queries(4);
    qs[1].text = "What is 2 + 2? boom".into();
    let flaky = Arc::new(Flaky { inner: HintStudent::new("hint"), failures: AtomicUsize::new(0) });
    // Two queries per step, 2 steps: the step with the failing query trains on the other one.
    let out = tempfile::tempdir().unwrap();
    let (r, steps) = train(flaky.clone(), &qs, options(out.path(), grpo(2), wst(ZeroStdGroups::Keep))).await;
    let summary = r.unwrap();
    assert_eq!(summary.steps_done, 2);
    let m = metrics(out.path());
    let failed: Vec<u64> = m.iter().map(|r| r["wst/failed_queries"].as_u64().unwrap()).collect();
    assert_eq!(failed.iter().sum::<u64>(), 1, "{failed:?}");
    let with_failure = failed.iter().position(|&f| f == 1).unwrap();
    assert_eq!(steps[with_failure].advantages.len(), 4, "only the healthy query of that step was trained on");
    assert!(flaky.failures.load(Ordering::SeqCst) >= 1);

    // Allowing fewer than 1 in 10 recent queries to fail: the run stops at that step with the
    // error, after a checkpoint of the last completed step.
    let out = tempfile::tempdir().unwrap();
    let w = WstSettings { max_failed_fraction: 0.05, ..wst(ZeroStdGroups::Keep) };
    let (r, _) = train(flaky.clone(), &qs, options(out.path(), grpo(2), w)).await;
    let err = r.unwrap_err();
    let Error::StepFailed { step, failed, total, .. } = &err else { panic!("{err}") };
    assert_eq!((*step, *failed, *total), (with_failure + 1, 1, 10));
    assert!(err.to_string().contains("HTTP 500 after 6 retries"), "{err}");
    assert!(out.path().join(format!("checkpoints/checkpoint-{with_failure}/trainer_state.json")).is_file());
}

#[tokio::test]
async fn an_output_folder_with_an_earlier_run_needs_resume_or_overwrite() {
    let qs = queries(2);
    let student: Arc<dyn Student> = Arc::new(HintStudent::new("hint"));
    let out = tempfile::tempdir().unwrap();
    train(student.clone(), &qs, options(out.path(), grpo(2), wst(ZeroStdGroups::Keep))).await.0.unwrap();
    assert!(out.path().join("checkpoints/checkpoint-2").is_dir());
    let err = train(student.clone(), &qs, options(out.path(), grpo(1), wst(ZeroStdGroups::Keep))).await.0.unwrap_err().to_string();
    assert!(err.contains("earlier run") && err.contains("--overwrite") && err.contains("checkpoints"), "{err}");
    assert!(out.path().join("checkpoints/checkpoint-2").is_dir(), "nothing of the earlier run was touched");
    assert_eq!(metrics(out.path()).len(), 2);
    let o = TrainOptions { overwrite_output_dir: true, ..options(out.path(), grpo(1), wst(ZeroStdGroups::Keep)) };
    train(student.clone(), &qs, o).await.0.unwrap();
    assert!(!out.path().join("checkpoints/checkpoint-2").exists(), "the earlier run's checkpoints are gone");
    assert_eq!(metrics(out.path()).len(), 1);
}

#[tokio::test]
async fn duplicate_ids_and_greedy_sampling_are_refused() {
    let student: Arc<dyn Student> = Arc::new(HintStudent::new("hint"));
    let mut qs = queries(3);
    qs[2].id = "q1".into();
    let out = tempfile::tempdir().unwrap();
    let err = train(student.clone(), &qs, options(out.path(), grpo(1), wst(ZeroStdGroups::Keep))).await.0.unwrap_err().to_string();
    assert!(err.contains("`q1` appears twice"), "{err}");
    let g = GrpoConfig { temperature: 0.0, ..grpo(1) };
    let err = train(student, &queries(2), options(out.path(), g, wst(ZeroStdGroups::Keep))).await.0.unwrap_err().to_string();
    assert!(err.contains("grpo.temperature") && err.contains("zero spread"), "{err}");
}

#[tokio::test]
async fn resume_refuses_a_changed_experiment_naming_the_setting_unless_allowed() {
    let qs = queries(2);
    let student: Arc<dyn Student> = Arc::new(HintStudent::new("hint"));
    let out = tempfile::tempdir().unwrap();
    train(student.clone(), &qs, options(out.path(), grpo(1), wst(ZeroStdGroups::Keep))).await.0.unwrap();
    let resume = |g: GrpoConfig, w: WstSettings| TrainOptions { resume: true, ..options(out.path(), g, w) };
    // K changed: refused, naming the setting and both values.
    let k3 = WstSettings { student_samples: 3, ..wst(ZeroStdGroups::Keep) };
    let err = train(student.clone(), &qs, resume(grpo(2), k3.clone())).await.0.unwrap_err().to_string();
    assert!(err.contains("wst.student_samples: 2 → 3") && err.contains("--allow-changes"), "{err}");
    // A query's text changed (same ids): refused as a change of the data.
    let mut edited = qs.clone();
    edited[1].text.push_str(" Show your work.");
    let err = train(student.clone(), &edited, resume(grpo(2), wst(ZeroStdGroups::Keep))).await.0.unwrap_err().to_string();
    assert!(err.contains("data: 2 queries, sha256:"), "{err}");
    assert_eq!(metrics(out.path()).len(), 1, "a refused resume leaves the run as it was");
    // More steps (max_steps) is not a change of the experiment.
    train(student.clone(), &qs, resume(grpo(2), wst(ZeroStdGroups::Keep))).await.0.unwrap();
    assert_eq!(metrics(out.path()).len(), 2);
    // Allowed, the changed run goes on.
    let o = TrainOptions { allow_changes: true, ..resume(grpo(3), k3) };
    train(student, &qs, o).await.0.unwrap();
    assert_eq!(metrics(out.path()).len(), 3);
}

#[tokio::test]
async fn a_refused_run_leaves_the_earlier_config_and_a_finished_run_is_not_deleted_by_resume() {
    let qs = queries(2);
    let student: Arc<dyn Student> = Arc::new(HintStudent::new("hint"));
    let out = tempfile::tempdir().unwrap();
    let with_config = |text: &str, o: TrainOptions| TrainOptions { config_toml: Some(text.into()), ..o };
    train(student.clone(), &qs, with_config("# run one", options(out.path(), grpo(1), wst(ZeroStdGroups::Keep)))).await.0.unwrap();
    let err = train(student.clone(), &qs, with_config("# run two", options(out.path(), grpo(1), wst(ZeroStdGroups::Keep)))).await.0.unwrap_err();
    assert!(err.to_string().contains("earlier run"), "{err}");
    assert_eq!(std::fs::read_to_string(out.path().join("config.toml")).unwrap(), "# run one", "the refused run wrote nothing");
    // No checkpoint left, but a trained Teacher's folder: --resume must not delete it.
    std::fs::remove_dir_all(out.path().join("checkpoints")).unwrap();
    std::fs::create_dir_all(out.path().join("final")).unwrap();
    std::fs::write(out.path().join("final/model.safetensors"), "weights").unwrap();
    let err = train(student.clone(), &qs, TrainOptions { resume: true, ..options(out.path(), grpo(1), wst(ZeroStdGroups::Keep)) }).await.0.unwrap_err().to_string();
    assert!(err.contains("nothing to resume") && err.contains("final"), "{err}");
    assert!(out.path().join("final/model.safetensors").is_file());
    // --overwrite removes everything of the earlier run, TensorBoard events and plots included.
    for d in ["runs", "plots", "eval"] {
        std::fs::create_dir_all(out.path().join(d)).unwrap();
        std::fs::write(out.path().join(d).join("old"), "x").unwrap();
    }
    let o = TrainOptions { overwrite_output_dir: true, ..with_config("# run three", options(out.path(), grpo(1), wst(ZeroStdGroups::Keep))) };
    train(student, &qs, o).await.0.unwrap();
    for d in ["runs/old", "plots/old", "eval/old", "final/model.safetensors"] {
        assert!(!out.path().join(d).exists(), "{d} is left from the earlier run");
    }
    assert_eq!(std::fs::read_to_string(out.path().join("config.toml")).unwrap(), "# run three");
}

#[tokio::test]
async fn at_the_defaults_one_failing_query_of_one_per_step_is_left_out_and_a_persistent_failure_stops() {
    // One query per step (batch = G), the default max_failed_fraction 0.5: the run goes past a
    // failing query, and stops once more than half of the last ten have failed.
    let mut qs = queries(12);
    qs[0].text = "What is 1 + 1? boom".into();
    let flaky = Arc::new(Flaky { inner: HintStudent::new("hint"), failures: AtomicUsize::new(0) });
    let one_per_step = |steps| GrpoConfig { per_device_train_batch_size: 4, ..grpo(steps) };
    let out = tempfile::tempdir().unwrap();
    let w = WstSettings { max_failed_fraction: 0.5, ..wst(ZeroStdGroups::Keep) };
    let (r, _) = train(flaky.clone(), &qs, options(out.path(), one_per_step(12), w.clone())).await;
    let summary = r.unwrap();
    assert_eq!(summary.steps_done, 12);
    let failed: u64 = metrics(out.path()).iter().map(|r| r["wst/failed_queries"].as_u64().unwrap_or(0)).sum();
    assert_eq!(failed, 1);
    // Every query fails: the sixth failure of ten is more than half.
    let all: Vec<Query> = queries(12)
        .into_iter()
        .map(|mut q| {
            q.text.push_str(" boom");
            q
        })
        .collect();
    let out = tempfile::tempdir().unwrap();
    let err = train(flaky, &all, options(out.path(), one_per_step(12), w)).await.0.unwrap_err();
    let Error::StepFailed { step, failed, total, .. } = &err else { panic!("{err}") };
    assert_eq!((*step, *failed, *total), (6, 6, 10));
}

#[tokio::test]
async fn pipelined_training_samples_ahead_and_weights_its_samples() {
    let qs = queries(2);
    let run = |w: WstSettings| {
        let qs = qs.clone();
        async move {
            let out = tempfile::tempdir().unwrap();
            let (r, seen) = train(Arc::new(HintStudent::new("hint")), &qs, options(out.path(), grpo(4), w)).await;
            r.unwrap();
            let staleness: Vec<Option<u64>> = metrics(out.path()).iter().map(|m| m.get("wst/staleness").and_then(|v| v.as_u64())).collect();
            (seen, staleness)
        }
    };
    let (sequential, no_staleness) = run(wst(ZeroStdGroups::Keep)).await;
    // Sequential: step k trains on the (k + 1)-th sampling, unweighted.
    assert_eq!(sequential.iter().map(|s| s.sampled_before).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert!(sequential.iter().all(|s| s.importance_sampling_cap.is_none()));
    assert_eq!(no_staleness, [None; 4]);
    // One step ahead: step k's instructions were sampled before step k − 1's update, so k + 2
    // samplings precede step k's update (none beyond the last step); each is weighted.
    let (ahead, staleness) = run(WstSettings { async_generation: true, ..wst(ZeroStdGroups::Keep) }).await;
    assert_eq!(ahead.iter().map(|s| s.sampled_before).collect::<Vec<_>>(), [2, 3, 4, 4]);
    assert!(ahead.iter().all(|s| s.importance_sampling_cap == Some(2.0)));
    assert_eq!(staleness, [Some(0), Some(1), Some(1), Some(1)]);
    // The same instructions train the same steps: sampling ahead changes which policy wrote
    // them, not which step they belong to.
    for (a, s) in ahead.iter().zip(&sequential) {
        assert_eq!(a.instructions, s.instructions);
    }
    let (two, staleness) = run(WstSettings { async_generation: true, max_staleness: 2, importance_sampling_cap: 3.0, ..wst(ZeroStdGroups::Keep) }).await;
    assert_eq!(two.iter().map(|s| s.sampled_before).collect::<Vec<_>>(), [3, 4, 4, 4]);
    assert!(two.iter().all(|s| s.importance_sampling_cap == Some(3.0)));
    assert_eq!(staleness, [Some(0), Some(1), Some(2), Some(2)]);

    // Sampling no step ahead is not pipelining: refused before anything runs, naming the field.
    let out = tempfile::tempdir().unwrap();
    let bad = WstSettings { async_generation: true, max_staleness: 0, ..wst(ZeroStdGroups::Keep) };
    let (r, seen) = train(Arc::new(HintStudent::new("hint")), &qs, options(out.path(), grpo(4), bad)).await;
    let err = r.unwrap_err().to_string();
    assert!(err.contains("wst.max_staleness") && seen.is_empty(), "{err}");
}
