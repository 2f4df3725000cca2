//! Token cost as a reward and as an evaluation column: every backend's completion-token counts
//! and finish reasons reach reward plugins (old plugins still load), the `cost` plugin's values,
//! the accuracy-minus-cost recipe, and evaluation reports of tokens and truncation.

use std::time::Duration;

use serde_json::json;
use wst_candle::CandleStudent;
use wst_llamacpp::{LlamaCppConfig, LlamaCppStudent};
use wst_openai::{OpenAiConfig, OpenAiStudent};
use wst_sdk::reward::{PluginReward, RewardInput};
use wst_sdk::student::FinishReason;
use wst_sdk::{Pipeline, Query, Reward, SamplingParams, Student, Weights};
use wst_tests::openai_mock::{MockServer, Reply};
use wst_tests::plugin_path;
use wst_tests::tiny::{Arch, write_gguf, write_model};

fn cost(budget: u64) -> PluginReward {
    PluginReward::load(plugin_path("wst_reward_cost"), &json!({ "budget": budget })).unwrap()
}

fn query() -> Query {
    Query::new("q1", "What is 12 + 30?").with_gold("42")
}

/// Answers `query()` with `student` under the cost reward and checks that every answer's token
/// count and finish reason arrived in the plugin's values. Returns how many answers were cut.
async fn tokens_reach_the_plugin(student: impl Student + 'static, max_tokens: usize, n: usize) -> usize {
    let pipeline = Pipeline::builder()
        .student(student)
        .reward(cost(1000))
        .student_sampling(SamplingParams { temperature: 1.0, seed: Some(3), max_tokens, ..Default::default() })
        .build()
        .unwrap();
    let answers = pipeline.answer(&query(), None, n).await.unwrap();
    let scores = pipeline.score(&query(), None, &answers).await.unwrap();
    assert!(answers.iter().any(|a| a.usage.completion_tokens > 0), "{answers:?}");
    let mut cut = 0;
    for (a, s) in answers.iter().zip(&scores) {
        assert_eq!(s.values.get("tokens"), Some(a.usage.completion_tokens as f64), "{a:?} {s:?}");
        assert_eq!(s.values.get("token_cost"), Some(a.usage.completion_tokens as f64 / 1000.0));
        let truncated = a.finish_reason == FinishReason::Length;
        assert_eq!(s.values.get("truncated"), Some(if truncated { 1.0 } else { 0.0 }), "{a:?}");
        cut += usize::from(truncated);
    }
    cut
}

#[tokio::test]
async fn llama_cpp_token_counts_reach_the_plugin() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), Arch::Llama, 11);
    let s = LlamaCppStudent::load(write_gguf(dir.path()), &LlamaCppConfig::default()).unwrap();
    // A random tiny model rarely emits EOS: most of 4 answers of at most 5 tokens are cut.
    assert!(tokens_reach_the_plugin(s, 5, 4).await > 0);
}

#[tokio::test]
async fn candle_token_counts_reach_the_plugin() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), Arch::Qwen2, 5);
    let s = CandleStudent::load(dir.path().to_str().unwrap(), &Default::default()).unwrap();
    assert!(tokens_reach_the_plugin(s, 5, 3).await > 0);
}

#[tokio::test]
async fn openai_usage_and_finish_reasons_reach_the_plugin() {
    // One choice per request (the Student fans out), so `usage` is that answer's own count.
    let server = MockServer::start(Duration::ZERO, |i, _| Reply::Json {
        status: 200,
        headers: vec![],
        body: json!({"id": "x", "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": format!("answer {i}")},
                         "finish_reason": if i == 0 { "length" } else { "stop" }}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 37 + i, "total_tokens": 46 + i}}),
    })
    .await;
    let cfg = OpenAiConfig { base_urls: vec![server.base_url()], api_key_env: None, ..Default::default() };
    let s = OpenAiStudent::new("m", &cfg).unwrap();
    let pipeline = Pipeline::builder().student(s).reward(cost(100)).build().unwrap();
    let answers = pipeline.answer(&query(), None, 2).await.unwrap();
    let scores = pipeline.score(&query(), None, &answers).await.unwrap();
    let tokens: Vec<_> = scores.iter().map(|s| s.values.get("tokens").unwrap()).collect();
    let mut sorted = tokens.clone();
    sorted.sort_by(f64::total_cmp);
    assert_eq!(sorted, [37.0, 38.0], "each answer carries its own usage");
    let cut: f64 = scores.iter().map(|s| s.values.get("truncated").unwrap()).sum();
    assert_eq!(cut, 1.0, "the `length` finish reason arrives");
    // 37 tokens of a 100-token budget: 0.37 of a unit, 0.63 saved.
    let first = scores.iter().find(|s| s.values.get("tokens") == Some(37.0)).unwrap();
    assert_eq!((first.values.get("token_cost"), first.values.get("token_savings"), first.values.get("over_budget")), (Some(0.37), Some(0.63), Some(1.0)));
}

#[test]
fn a_plugin_built_before_token_counts_still_loads_and_scores() {
    let old = PluginReward::load(plugin_path("wst_test_plugin_abi_v1"), &json!({})).unwrap();
    assert_eq!(old.description().abi_version, 1);
    let item = RewardInput { answer: "héllo".into(), completion_tokens: Some(4), finish_reason: Some("stop".into()), ..Default::default() };
    let s = old.score(&[item]).unwrap();
    assert_eq!(s[0].get("answer_chars"), Some(5.0));
}

#[tokio::test]
async fn accuracy_minus_token_cost_is_the_whole_recipe() {
    // Two correct answers of 100 and 300 tokens, budget 400: 1 − 0.5 · 0.25 and 1 − 0.5 · 0.75.
    let server = MockServer::start(Duration::ZERO, |i, _| Reply::Json {
        status: 200,
        headers: vec![],
        body: json!({"id": "x", "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "The answer is 42."}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 9, "completion_tokens": if i == 0 { 100 } else { 300 }, "total_tokens": 0}}),
    })
    .await;
    let student = || OpenAiStudent::new("m", &OpenAiConfig { base_urls: vec![server.base_url()], api_key_env: None, ..Default::default() }).unwrap();
    let math = || PluginReward::load(plugin_path("wst_reward_math"), &json!({})).unwrap();
    let pipeline =
        Pipeline::builder().student(student()).reward(math()).reward(cost(400)).weights(Weights::new([("math/accuracy", 1.0), ("cost/token_cost", -0.5)])).build().unwrap();
    let answers = pipeline.answer(&query(), None, 2).await.unwrap();
    let mut totals: Vec<f64> = pipeline.score(&query(), None, &answers).await.unwrap().iter().map(|s| s.total).collect();
    totals.sort_by(f64::total_cmp);
    assert!((totals[0] - 0.625).abs() < 1e-12 && (totals[1] - 0.875).abs() < 1e-12, "{totals:?}");
    // A weight on a value the rewards do not produce stays an error, naming the value.
    let err = Pipeline::builder()
        .student(student())
        .reward(math())
        .reward(cost(400))
        .weights(Weights::new([("math/accuracy", 1.0), ("cost/tokens_spent", -0.5)]))
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains("cost/tokens_spent"), "{err}");
}

#[test]
fn the_cost_plugin_refuses_answers_without_counts() {
    let c = cost(100);
    assert_eq!(c.value_names(), ["token_savings", "token_cost", "tokens", "over_budget", "truncated"]);
    let err = c.score(&[RewardInput { answer: "x".into(), ..Default::default() }]).unwrap_err().to_string();
    assert!(err.contains("completion_tokens") && err.contains("wst_reward_cost"), "{err}");
    let err = PluginReward::load(plugin_path("wst_reward_cost"), &json!({"budget": 0})).unwrap_err().to_string();
    assert!(err.contains("budget must be at least 1"), "{err}");
}

/// A Student whose cost depends on its instruction, as a real one's does. Queries read
/// "What is A + B?"; it answers A + B when right and A + B + 1 when wrong:
/// - no instruction: right, 100 tokens, except for queries saying "long", which it rambles on
///   until `max_tokens` cuts it (wrong, cut);
/// - "brief": 20 tokens, right unless the query says "easy";
/// - "terse": 5 tokens, right only when the query says "easy".
struct BudgetStudent;

#[async_trait::async_trait]
impl Student for BudgetStudent {
    fn name(&self) -> &str {
        "budget-student"
    }
    fn capabilities(&self) -> wst_sdk::student::StudentCapabilities {
        wst_sdk::student::StudentCapabilities { native_n: true, max_concurrency: 8 }
    }
    async fn generate(&self, request: &wst_sdk::StudentRequest) -> wst_sdk::Result<Vec<wst_sdk::StudentSample>> {
        let user = &request.messages.last().unwrap().content;
        let nums: Vec<i64> = user.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).take(2).map(|s| s.parse().unwrap()).collect();
        let sum: i64 = nums.iter().sum();
        let easy = user.contains("easy");
        let (right, tokens, cut) = if user.contains("terse") {
            (easy, 5, false)
        } else if user.contains("brief") {
            (!easy, 20, false)
        } else if user.contains("long") {
            (false, request.params.max_tokens as u64, true)
        } else {
            (true, 100, false)
        };
        let answer = if right { sum } else { sum + 1 };
        Ok((0..request.n)
            .map(|_| wst_sdk::StudentSample {
                text: format!("The answer is {answer}."),
                finish_reason: if cut { FinishReason::Length } else { FinishReason::Stop },
                usage: wst_sdk::student::TokenUsage { prompt_tokens: 10, completion_tokens: tokens },
            })
            .collect())
    }
}

fn math_pipeline() -> Pipeline {
    Pipeline::builder()
        .student(BudgetStudent)
        .reward(PluginReward::load(plugin_path("wst_reward_math"), &json!({})).unwrap())
        .student_sampling(SamplingParams { max_tokens: 128, ..Default::default() })
        .build()
        .unwrap()
}

fn queries(prefix: &str, words: &str, n: usize) -> Vec<Query> {
    (0..n)
        .map(|i| {
            let mut q = Query::new(format!("{prefix}-{i}"), format!("What is {} + {}? {words}", i + 1, 2 * i + 3)).with_gold((3 * i + 4).to_string());
            q.metadata.insert("template".into(), json!(format!("t{}", i / 2)));
            q
        })
        .collect()
}

#[tokio::test]
async fn evaluation_reports_tokens_truncation_and_paired_intervals() {
    use wst_sdk::eval::{COMPLETION_TOKENS, EvalMethod, EvalSettings, InstructionSource, Report, TRUNCATED, evaluate};
    let p = math_pipeline();
    // Six queries in three templates; the last two say "long", so direct answers are cut there.
    let mut qs = queries("q", "", 4);
    qs.extend(queries("long", "long", 2).into_iter().map(|mut q| {
        q.metadata.insert("template".into(), json!("t9"));
        q
    }));
    let settings = EvalSettings { student_samples: 2, cluster_by: Some("template".into()), ..Default::default() };
    let mut report = Report::default();
    for (name, source) in [("direct", InstructionSource::None), ("fixed:brief", InstructionSource::Fixed(wst_sdk::Instruction::new("Be brief.")))] {
        let (row, outcomes) = evaluate(&p, &qs, &EvalMethod { name: name.into(), source, prompt: None }, &settings).await.unwrap();
        assert_eq!(outcomes[5].completion_tokens, [if name == "direct" { 128 } else { 20 }; 2]);
        report.methods.push(row);
    }
    report.compare_to(&["direct"], 2000, 1);
    let (direct, brief) = (&report.methods[0], &report.methods[1]);
    assert_eq!(direct.metric, "accuracy@K=2");
    // Direct: 100 tokens on four queries, 128 (cut) on two: mean (400 + 256) / 6; a third cut.
    assert!((direct.measures[COMPLETION_TOKENS].value - 656.0 / 6.0).abs() < 1e-9);
    assert!((direct.measures[TRUNCATED].value - 1.0 / 3.0).abs() < 1e-12);
    assert!((direct.value - 4.0 / 6.0).abs() < 1e-12);
    // Brief: 20 tokens everywhere, nothing cut, right on all six.
    assert_eq!((brief.measures[COMPLETION_TOKENS].value, brief.measures[TRUNCATED].value, brief.value), (20.0, 0.0, 1.0));
    // Paired over the six queries: tokens −80 on four and −108 on two.
    let d = brief.measures[COMPLETION_TOKENS].paired["direct"];
    assert!((d.diff - (-80.0 * 4.0 - 108.0 * 2.0) / 6.0).abs() < 1e-9);
    assert!(d.ci_high < 0.0 && d.excludes_zero());
    let c = d.by_cluster.unwrap();
    assert_eq!(c.n_clusters, 3);
    // Resampling templates t0 (−80), t1 (−80), t9 (−108): the extremes are all-t9 and no-t9.
    assert_eq!((c.ci_low, c.ci_high), (-108.0, -80.0));
    let a = brief.paired["direct"];
    assert!((a.diff - 2.0 / 6.0).abs() < 1e-12);
    let md = report.to_markdown();
    assert!(md.contains("#### Student completion tokens per answer") && md.contains("#### Share of answers cut by max_tokens"), "{md}");
}

#[tokio::test]
async fn the_best_fixed_instruction_is_chosen_on_training_queries_only() {
    use wst_sdk::eval::{EvalSettings, select_instruction};
    let p = math_pipeline();
    let menu = vec![("fixed:terse".to_string(), wst_sdk::Instruction::new("Be terse.")), ("fixed:brief".to_string(), wst_sdk::Instruction::new("Be brief."))];
    let settings = EvalSettings { student_samples: 1, ..Default::default() };
    // On training queries "brief" is right and "terse" wrong; on the held-out ("easy") queries it
    // is the other way round, so choosing there would pick the other instruction.
    let train = select_instruction(&p, &queries("train", "", 4), &menu, &settings).await.unwrap();
    assert_eq!(menu[train.best].0, "fixed:brief");
    assert_eq!(train.report.methods.iter().map(|m| m.value).collect::<Vec<_>>(), [0.0, 1.0]);
    let eval = select_instruction(&p, &queries("eval", "easy", 4), &menu, &settings).await.unwrap();
    assert_eq!(menu[eval.best].0, "fixed:terse", "the fixture discriminates");
}

#[tokio::test]
async fn clustering_by_a_missing_field_names_the_query() {
    use wst_sdk::eval::{EvalMethod, EvalSettings, InstructionSource, evaluate};
    let mut qs = queries("q", "", 2);
    qs[1].metadata.clear();
    let settings = EvalSettings { student_samples: 1, cluster_by: Some("template".into()), ..Default::default() };
    let err = evaluate(&math_pipeline(), &qs, &EvalMethod { name: "direct".into(), source: InstructionSource::None, prompt: None }, &settings).await.unwrap_err().to_string();
    assert!(err.contains("q-1") && err.contains("template"), "{err}");
}

#[test]
fn an_instruction_menu_names_its_rows_and_reports_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("menu.txt");
    std::fs::write(&path, "# budgets\ntale-50: Use at most 50 tokens.\n\nBe brief: one line per step.\n").unwrap();
    let menu = wst_sdk::eval::read_instruction_menu(&path).unwrap();
    let got: Vec<(&str, &str)> = menu.iter().map(|(n, i)| (n.as_str(), i.text.as_str())).collect();
    assert_eq!(got, [("fixed:tale-50", "Use at most 50 tokens."), ("fixed:2", "Be brief: one line per step.")]);
    std::fs::write(&path, "a: one\na: two\n").unwrap();
    let err = wst_sdk::eval::read_instruction_menu(&path).unwrap_err().to_string();
    assert!(err.contains("menu.txt:2:") && err.contains("fixed:a"), "{err}");
}
