//! The `judge` reward plugin against a local OpenAI-compatible mock: scores read from numbers,
//! JSON and log-probs, replies without a score counted, 429s retried, two criteria mixed by
//! weights, and a cache that makes a second run free.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use wst_sdk::Reward;
use wst_sdk::Weights;
use wst_sdk::reward::{PluginReward, RewardInput, WeightedReward};
use wst_tests::openai_mock::{MockServer, Reply};
use wst_tests::plugin_path;

fn prompt_of(body: &Value) -> String {
    body["messages"].as_array().and_then(|m| m.last()).and_then(|m| m["content"].as_str()).unwrap_or_default().to_string()
}

fn answer(text: &str) -> RewardInput {
    RewardInput { query: "How do I boil an egg?".into(), answer: text.into(), ..Default::default() }
}

async fn judge(server: &MockServer, cache: Option<&std::path::Path>, extra: Value) -> PluginReward {
    let mut config = json!({ "base_url": server.base_url(), "model": "judge", "prompt": "Rate this answer for {{ criterion }}: {{ answer }}", "cache_dir": cache });
    config.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    let path = plugin_path("wst_reward_judge");
    tokio::task::spawn_blocking(move || PluginReward::load(path, &config).unwrap()).await.unwrap()
}

async fn score(r: Arc<PluginReward>, items: Vec<RewardInput>) -> wst_sdk::Result<Vec<wst_sdk::Score>> {
    tokio::task::spawn_blocking(move || r.score(&items)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_json_and_replies_without_a_score() {
    // The reply depends on the answer: a number in prose, JSON in a fence, or no score at all.
    let server = MockServer::start(Duration::ZERO, |_, body| {
        let p = prompt_of(body);
        let text = if p.contains("good") {
            "I'd say 7 out of 10."
        } else if p.contains("fenced") {
            "```json\n{\"score\": 9}\n```"
        } else {
            "I cannot judge this."
        };
        Reply::choices(&[text.to_string()])
    })
    .await;
    let r = Arc::new(judge(&server, None, json!({ "normalise": true })).await);
    assert_eq!(r.value_names(), ["score", "unscored"]);
    let s = score(r, vec![answer("a good answer"), answer("a vague one")]).await.unwrap();
    assert!((s[0].get("score").unwrap() - 6.0 / 9.0).abs() < 1e-12, "7 on [1, 10] is 6/9: {s:?}");
    assert_eq!(s[0].get("unscored"), Some(0.0));
    assert_eq!((s[1].get("score"), s[1].get("unscored")), (None, Some(1.0)), "no score is counted, not a crash");
    let r = Arc::new(judge(&server, None, json!({ "score_from": "json" })).await);
    assert_eq!(score(r, vec![answer("fenced")]).await.unwrap()[0].get("score"), Some(9.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helpful_and_harmless_mix_by_weights_and_a_429_is_retried() {
    // The first request gets a 429 with Retry-After; every later one an answer.
    let server = MockServer::start(Duration::ZERO, |i, body| {
        if i == 0 {
            return Reply::error(429, "slow down", Some("rate_limit_exceeded"), &[("retry-after", "0.1")]);
        }
        let text = if prompt_of(body).contains("helpful") { "Score: 8" } else { "Score: 4" };
        Reply::choices(&[text.to_string()])
    })
    .await;
    let criteria = json!({ "criteria": [{ "name": "helpful" }, { "name": "harmless", "prompt": "Is this harmless? {{ answer }}" }], "max_concurrency": 1 });
    let r = judge(&server, None, criteria).await;
    assert_eq!(r.value_names(), ["helpful", "harmless", "unscored"]);
    let w = WeightedReward::new(vec![Arc::new(r)], Weights::new([("helpful", 0.7), ("harmless", 0.3)])).unwrap();
    let s = tokio::task::spawn_blocking(move || w.score(&[answer("Boil it for 8 minutes.")])).await.unwrap().unwrap();
    assert!((s[0].total - (0.7 * 8.0 + 0.3 * 4.0)).abs() < 1e-12, "{s:?}");
    assert_eq!(server.requests(), 3, "two criteria, one retried after the 429");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_reads_every_reply_from_the_cache() {
    let server = MockServer::start(Duration::ZERO, |_, _| Reply::choices(&["Score: 6".to_string()])).await;
    let dir = tempfile::tempdir().unwrap();
    let items: Vec<RewardInput> = (0..5).map(|i| answer(&format!("answer {i}"))).collect();
    let first = score(Arc::new(judge(&server, Some(dir.path()), json!({})).await), items.clone()).await.unwrap();
    assert_eq!(server.requests(), 5);
    // A new instance (a resumed run) pays nothing twice.
    let second = score(Arc::new(judge(&server, Some(dir.path()), json!({})).await), items.clone()).await.unwrap();
    assert_eq!(server.requests(), 5, "zero new requests");
    assert_eq!(first, second);
    // Another judge model is another identity: asked again.
    score(Arc::new(judge(&server, Some(dir.path()), json!({ "model": "other" })).await), items[..1].to_vec()).await.unwrap();
    assert_eq!(server.requests(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logprobs_give_the_g_eval_score_and_a_401_is_not_retried() {
    let server = MockServer::start(Duration::ZERO, |_, body| {
        assert_eq!(body["logprobs"], json!(true));
        let tops = json!([{ "token": "8", "logprob": 0.5f64.ln() }, { "token": "9", "logprob": 0.5f64.ln() }]);
        Reply::Json {
            status: 200,
            headers: vec![],
            body: json!({ "choices": [{ "index": 0, "finish_reason": "stop", "message": { "role": "assistant", "content": "8" },
                          "logprobs": { "content": [{ "token": "8", "logprob": 0.5f64.ln(), "top_logprobs": tops }] } }] }),
        }
    })
    .await;
    let r = Arc::new(judge(&server, None, json!({ "score_from": "logprobs" })).await);
    assert!((score(r, vec![answer("x")]).await.unwrap()[0].get("score").unwrap() - 8.5).abs() < 1e-12);

    let denied = MockServer::start(Duration::ZERO, |_, _| Reply::error(401, "bad key", Some("invalid_api_key"), &[])).await;
    let r = Arc::new(judge(&denied, None, json!({})).await);
    let err = score(r, vec![answer("x")]).await.unwrap_err().to_string();
    assert!(err.contains("HTTP 401") && err.contains("invalid_api_key"), "{err}");
    assert_eq!(denied.requests(), 1, "a 401 is not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_config_is_a_clear_error_at_load() {
    let server = MockServer::start(Duration::ZERO, |_, _| Reply::choices(&["1".to_string()])).await;
    let path = plugin_path("wst_reward_judge");
    let base = server.base_url();
    let err = tokio::task::spawn_blocking(move || {
        let no_prompt = PluginReward::load(&path, &json!({ "base_url": base, "model": "j" })).unwrap_err().to_string();
        let bad_template = PluginReward::load(&path, &json!({ "base_url": base, "model": "j", "prompt": "{{ answer" })).unwrap_err().to_string();
        let no_key = PluginReward::load(&path, &json!({ "base_url": base, "model": "j", "prompt": "x", "api_key_env": "WST_TEST_SURELY_UNSET" })).unwrap_err().to_string();
        (no_prompt, bad_template, no_key)
    })
    .await
    .unwrap();
    assert!(err.0.contains("has no prompt"), "{}", err.0);
    assert!(err.1.contains("not a valid template"), "{}", err.1);
    assert!(err.2.contains("WST_TEST_SURELY_UNSET"), "{}", err.2);
}
