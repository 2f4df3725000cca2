//! The Pipeline through the public API: Teacher → Student → reward plugin.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use wst_sdk::reward::PluginReward;
use wst_sdk::{Pipeline, Query, Weights};
use wst_tests::{HintStudent, ScriptedTeacher, plugin_path};

fn query() -> Query {
    Query::new("q1", "What is 12 + 30?").with_gold("42")
}

#[tokio::test]
async fn instruct_then_answer_uses_the_instruction() {
    let student = Arc::new(HintStudent::new("hint"));
    let pipeline = Pipeline::builder().teacher(ScriptedTeacher::new(&["Use the hint: add the numbers.", "Guess."])).student_arc(student.clone()).build().unwrap();
    let instructions = pipeline.instruct(&query(), 2).await.unwrap();
    assert_eq!(instructions.len(), 2);
    let helped = pipeline.answer(&query(), Some(&instructions[0]), 3).await.unwrap();
    let alone = pipeline.answer(&query(), None, 3).await.unwrap();
    assert_eq!(helped.len(), 3);
    assert!(helped[0].text.contains("42"), "{}", helped[0].text);
    assert!(alone[0].text.contains("43"), "{}", alone[0].text);
    assert_eq!(student.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn pipeline_scores_answers_with_a_loaded_plugin_and_weights() {
    let length = PluginReward::load(plugin_path("wst_reward_length"), &serde_json::json!({"min_words": 1, "max_words": 4})).unwrap();
    let pipeline = Pipeline::builder().student(HintStudent::new("hint")).reward(length).weights(Weights::new([("within_limit", 2.0)])).build().unwrap();
    let answers = pipeline.answer(&query(), None, 2).await.unwrap();
    let scores = pipeline.score(&query(), None, &answers).await.unwrap();
    // "Let me think. The answer is 43." has 7 words: 3 over a limit of 4 → 1 − 3/4 = 0.25, weighted ×2.
    assert_eq!(scores[0].values.get("words"), Some(7.0));
    assert!((scores[0].total - 0.5).abs() < 1e-12, "{scores:?}");
}

#[tokio::test]
async fn missing_parts_are_clear_errors() {
    let err = Pipeline::builder().build().unwrap_err().to_string();
    assert!(err.contains("Student"), "{err}");
    let p = Pipeline::builder().student(HintStudent::new("x")).build().unwrap();
    assert!(p.instruct(&query(), 1).await.unwrap_err().to_string().contains("without a Teacher"));
    assert!(p.score(&query(), None, &[]).await.unwrap_err().to_string().contains("without a reward"));
    assert!(p.answer(&query(), None, 0).await.is_err());
}

#[tokio::test]
async fn a_fixed_instruction_reaches_the_student_for_every_query() {
    use wst_sdk::eval::{EvalMethod, EvalSettings, InstructionSource, evaluate};
    let math = PluginReward::load(plugin_path("wst_reward_math"), &serde_json::json!({})).unwrap();
    let p = Pipeline::builder().student(HintStudent::new("carry")).reward(math).build().unwrap();
    let qs: Vec<Query> = (1..5).map(|i| Query::new(format!("q{i}"), format!("What is {i} + 10?")).with_gold((i + 10).to_string())).collect();
    let settings = EvalSettings { student_samples: 2, ..Default::default() };
    let fixed = |text: &str| EvalMethod { name: "fixed-instruction".into(), source: InstructionSource::Fixed(text.into()), prompt: None };
    let helped = evaluate(&p, &qs, &fixed("Add, and carry the tens."), &settings).await.unwrap().0;
    let unhelped = evaluate(&p, &qs, &fixed("Guess."), &settings).await.unwrap().0;
    let direct = evaluate(&p, &qs, &EvalMethod { name: "direct".into(), source: InstructionSource::None, prompt: None }, &settings).await.unwrap().0;
    assert_eq!((helped.value, unhelped.value, direct.value), (1.0, 0.0, 0.0));
    assert_eq!(helped.per_query.len(), 4);
}

/// An instruction writer that says "carry" about each query, slowly, and records how many of
/// its requests were in flight at once.
struct SlowWriter {
    in_flight: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl wst_sdk::Student for SlowWriter {
    fn name(&self) -> &str {
        "slow-writer"
    }
    async fn generate(&self, request: &wst_sdk::StudentRequest) -> wst_sdk::Result<Vec<wst_sdk::StudentSample>> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        // Primed like the Teacher: the conversation ends with the prefix as the writer's own turn.
        let last = request.messages.last().expect("messages");
        assert_eq!((last.role.as_str(), last.content.as_str()), ("assistant", "Be brief:"), "the writer's reply is primed with the prefix");
        let user = request.messages.iter().rfind(|m| m.role == "user").expect("a user message").content.clone();
        // Later queries answer sooner, so a writer row that kept completion order would be shuffled.
        let wait = 40 - 8 * user.chars().filter(char::is_ascii_digit).count().min(4) as u64;
        tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        Ok(vec![wst_sdk::StudentSample { text: format!(" carry the tens of {user} "), finish_reason: wst_sdk::student::FinishReason::Stop, usage: Default::default() }])
    }
}

#[tokio::test]
async fn a_writer_gets_its_requests_at_once_and_its_instructions_follow_the_prefix_in_query_order() {
    use wst_sdk::eval::{EvalMethod, EvalSettings, InstructionSource, evaluate};
    let math = PluginReward::load(plugin_path("wst_reward_math"), &serde_json::json!({})).unwrap();
    let p = Pipeline::builder().student(HintStudent::new("carry")).reward(math).build().unwrap();
    let qs: Vec<Query> = [1, 22, 333, 4444].iter().map(|i| Query::new(format!("q{i}"), format!("{i} + 10")).with_gold((i + 10).to_string())).collect();
    let writer = Arc::new(SlowWriter { in_flight: Default::default(), most: Default::default() });
    let method = EvalMethod {
        name: "writer".into(),
        source: InstructionSource::Writer {
            model: writer.clone(),
            system: "Write advice.".into(),
            template: "{{ query }}".into(),
            params: Default::default(),
            prefix: "Be brief:".into(),
        },
        prompt: None,
    };
    let settings = EvalSettings { student_samples: 1, max_concurrency: 3, ..Default::default() };
    let (row, outcomes) = evaluate(&p, &qs, &method, &settings).await.unwrap();
    assert_eq!(writer.most.load(Ordering::SeqCst), 3, "at most max_concurrency writer requests, and that many, in flight");
    let texts: Vec<_> = outcomes.iter().map(|o| o.instruction.clone().unwrap()).collect();
    assert_eq!(texts, qs.iter().map(|q| format!("Be brief: carry the tens of {}", q.text)).collect::<Vec<_>>());
    assert_eq!(row.value, 1.0);
}

/// A Student that answers like [`HintStudent`] but fails, every time, for queries that say "boom".
struct FailsOnBoom(HintStudent);

#[async_trait::async_trait]
impl wst_sdk::Student for FailsOnBoom {
    fn name(&self) -> &str {
        "fails-on-boom"
    }
    async fn generate(&self, request: &wst_sdk::StudentRequest) -> wst_sdk::Result<Vec<wst_sdk::StudentSample>> {
        if request.messages.iter().any(|m| m.content.contains("boom")) {
            return Err(wst_sdk::Error::invalid("student", "boom: this query always fails"));
        }
        self.0.generate(request).await
    }
}

#[tokio::test]
async fn a_permanently_failing_query_is_left_out_and_counted_not_fatal() {
    use wst_sdk::eval::{EvalMethod, EvalSettings, InstructionSource, evaluate};
    let math = PluginReward::load(plugin_path("wst_reward_math"), &serde_json::json!({})).unwrap();
    let p = Pipeline::builder().student(FailsOnBoom(HintStudent::new("carry"))).reward(math).build().unwrap();
    let mut qs: Vec<Query> = (1..11).map(|i| Query::new(format!("q{i}"), format!("What is {i} + 10?")).with_gold((i + 10).to_string())).collect();
    qs[3].text.push_str(" boom");
    let fixed = EvalMethod { name: "fixed".into(), source: InstructionSource::Fixed("carry".into()), prompt: None };
    let settings = EvalSettings { student_samples: 2, ..Default::default() };
    let (row, outcomes) = evaluate(&p, &qs, &fixed, &settings).await.unwrap();
    assert_eq!((row.value, row.n_queries, outcomes.len()), (1.0, 9, 9));
    assert_eq!(row.failed_queries.keys().collect::<Vec<_>>(), ["q4"]);
    assert!(row.failed_queries["q4"].contains("boom"));
    // Beyond max_failed_fraction (1 of 10 is 0.1; 2 of 10 is not), the method fails, naming why.
    qs[6].text.push_str(" boom");
    let err = evaluate(&p, &qs, &fixed, &settings).await.unwrap_err().to_string();
    assert!(err.contains("2 of 10 queries failed") && err.contains("boom"), "{err}");
}

/// Writes one instruction fewer than asked for the second query.
struct ShortTeacher;

impl wst_sdk::Teacher for ShortTeacher {
    fn sample(&mut self, queries: &[Query], sampling: &wst_sdk::TeacherSampling) -> wst_sdk::Result<Vec<Vec<wst_sdk::TeacherSample>>> {
        Ok(queries
            .iter()
            .enumerate()
            .map(|(i, _)| {
                let n = if i == 1 { sampling.num_generations - 1 } else { sampling.num_generations };
                (0..n).map(|_| wst_sdk::TeacherSample { instruction: "x".into(), prompt_ids: vec![1], completion_ids: vec![2], logprobs: vec![-0.1], truncated: false }).collect()
            })
            .collect())
    }
    fn step(&mut self, _: &[wst_sdk::teacher::TrainItem<'_>], _: &wst_sdk::teacher::StepSettings<'_>) -> wst_sdk::Result<Vec<wst_sdk::teacher::StepMetrics>> {
        Ok(Vec::new())
    }
}

#[tokio::test]
async fn a_teacher_returning_the_wrong_number_of_instructions_is_an_error_not_a_misaligned_step() {
    let p = Pipeline::builder().teacher(ShortTeacher).student(HintStudent::new("hint")).build().unwrap();
    let qs = [query(), Query::new("q2", "What is 1 + 1?")];
    let sampling = wst_sdk::TeacherSampling { num_generations: 3, ..Default::default() };
    let err = p.sample_instructions(&qs, &sampling).await.unwrap_err().to_string();
    assert!(err.contains("2 instructions for query 1") && err.contains("num_generations = 3"), "{err}");
}

/// A Student whose weights are a file: its identity is the file's head-and-tail fingerprint (as
/// the llama.cpp and candle Students build theirs) and its answer the file's middle byte.
struct FileStudent(std::path::PathBuf);

#[async_trait::async_trait]
impl wst_sdk::Student for FileStudent {
    fn name(&self) -> &str {
        "file-student"
    }
    fn identity(&self) -> String {
        wst_sdk::student::file_fingerprint(&self.0).unwrap()
    }
    fn weight_files(&self) -> Vec<std::path::PathBuf> {
        vec![self.0.clone()]
    }
    async fn generate(&self, request: &wst_sdk::StudentRequest) -> wst_sdk::Result<Vec<wst_sdk::StudentSample>> {
        let bytes = std::fs::read(&self.0).unwrap();
        let text = format!("middle byte {}", bytes[bytes.len() / 2]);
        Ok((0..request.n).map(|_| wst_sdk::StudentSample { text: text.clone(), finish_reason: wst_sdk::student::FinishReason::Stop, usage: Default::default() }).collect())
    }
}

/// A fine-tune that changes only middle tensors keeps the file's size, head and tail: the
/// response cache must not hand back the old model's answers for it.
#[tokio::test]
async fn the_cache_does_not_reuse_answers_when_the_weights_change_under_the_same_identity() {
    use wst_sdk::student::{CachedStudent, IDENTITIES_FILE, ResponseCache};
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("model.gguf");
    let mut data: Vec<u8> = (0..10_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&weights, &data).unwrap();
    let query = Query::new("q", "What is 1 + 1?");
    let answer = |cache_dir: std::path::PathBuf| {
        let (weights, query) = (weights.clone(), query.clone());
        async move {
            let student = CachedStudent::new(Arc::new(FileStudent(weights)), ResponseCache::open(&cache_dir).unwrap());
            let p = Pipeline::builder().student(student).build().unwrap();
            let a = p.answer_with(&query, None, 1, &wst_sdk::SamplingParams { seed: Some(1), ..Default::default() }).await.unwrap();
            (a[0].text.clone(), p.student().usage().cache_hits)
        }
    };
    let cache = dir.path().join("cache");
    let (first, _) = answer(cache.clone()).await;
    assert!(cache.join(IDENTITIES_FILE).is_file(), "the weights' hash is recorded beside the cache");
    let (again, hits) = answer(cache.clone()).await;
    assert_eq!((again.as_str(), hits), (first.as_str(), 1), "unchanged weights: the cached answer");
    let before = wst_sdk::student::file_fingerprint(&weights).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    std::fs::write(&weights, &data).unwrap();
    assert_eq!(wst_sdk::student::file_fingerprint(&weights).unwrap(), before, "the identity alone cannot tell");
    let (changed, hits) = answer(cache.clone()).await;
    assert_eq!(hits, 0, "changed weights: no cached answer is reused");
    assert_ne!(changed, first);
    let (changed_again, hits) = answer(cache).await;
    assert_eq!((changed_again, hits), (changed, 1), "the new weights' own answers are reused");
}
