//! Items/s of the three ways to write a reward, side by side in one run, on the same GSM8K-style
//! answers in batches of 256 (what the trainer sends): the Rust `math` plugin, the `python`
//! plugin (a one-line TRL-style function, and TRL's own `accuracy_reward` with math-verify),
//! and the `judge` plugin against a local mock that answers after a fixed latency.
//! Usage: cargo bench -p wst-tests --bench reward_throughput (after scripts/setup.sh).

use std::time::{Duration, Instant};

use wst_sdk::Reward;
use wst_sdk::reward::{PluginReward, RewardInput};
use wst_tests::openai_mock::{MockServer, Reply};

fn items(n: usize) -> Vec<RewardInput> {
    (0..n)
        .map(|i| {
            let gold = (i * 7 % 100).to_string();
            let said = if i % 3 == 0 { (i % 100).to_string() } else { gold.clone() };
            let mut metadata = serde_json::Map::new();
            metadata.insert("solution".into(), format!("${gold}$").into());
            RewardInput {
                query: format!("Tom has {i} apples and buys 7 more for each friend. How many?"),
                answer: format!("Tom starts with {i} apples. He buys more.\nSo he has $\\boxed{{{said}}}$ apples. The answer is {said}."),
                gold: Some(gold),
                metadata,
                completion_tokens: Some(40),
                finish_reason: Some("stop".into()),
                ..Default::default()
            }
        })
        .collect()
}

fn time(name: &str, reward: &PluginReward, items: &[RewardInput]) {
    reward.score(&items[..8]).expect("warm-up");
    let start = Instant::now();
    for chunk in items.chunks(256) {
        reward.score(chunk).expect("score");
    }
    let secs = start.elapsed().as_secs_f64();
    println!("{{\"reward\": {name:?}, \"items\": {}, \"seconds\": {secs:.3}, \"items_per_s\": {:.0}}}", items.len(), items.len() as f64 / secs);
}

fn main() {
    let python = wst_tests::python_env::python();
    let fixture = wst_tests::python_env::rewards_fixture();
    let trl = wst_tests::python_env::trl_rewards_file("accuracy_rewards.py");
    let n: usize = std::env::var("ITEMS").ok().and_then(|s| s.parse().ok()).unwrap_or(5120);
    let all = items(n);

    let math = PluginReward::load(wst_tests::plugin_path("wst_reward_math"), &serde_json::json!({})).unwrap();
    time("rust math plugin", &math, &all);
    let py = PluginReward::load(wst_tests::plugin_path("wst_reward_python"), &serde_json::json!({ "file": fixture, "function": "contains_gold", "python": python })).unwrap();
    time("python plugin: one-line function", &py, &all);
    let trl = PluginReward::load(wst_tests::plugin_path("wst_reward_python"), &serde_json::json!({ "file": trl, "function": "accuracy_reward", "python": python })).unwrap();
    time("python plugin: TRL accuracy_reward (math-verify)", &trl, &all[..n.min(512)]);

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    for (latency_ms, concurrency) in [(50u64, 8usize), (50, 32)] {
        let server = rt.block_on(MockServer::start(Duration::from_millis(latency_ms), |_, _| Reply::choices(&["Score: 7".to_string()])));
        let judge = PluginReward::load(
            wst_tests::plugin_path("wst_reward_judge"),
            &serde_json::json!({ "base_url": server.base_url(), "model": "mock", "prompt": "Rate: {{ answer }}", "cache_dir": null, "max_concurrency": concurrency }),
        )
        .unwrap();
        time(&format!("judge plugin: mock at {latency_ms} ms, {concurrency} in flight"), &judge, &all[..n.min(512)]);
    }
}
