//! Throughput of the `math` reward through the C ABI (items/s), on the 231-case table repeated.
//! Writes the same items to `target/math_items.jsonl` so `bench/math_throughput.sh` can time
//! Math-Verify on them in the same run. Usage: cargo bench -p wst-tests --bench math_throughput

use std::io::Write;
use std::time::Instant;

use wst_sdk::Reward;
use wst_sdk::reward::{PluginReward, RewardInput};

mod table {
    include!("../../plugins/math/tests/case_table.rs");
}

fn main() {
    let lib = wst_tests::plugin_path("wst_reward_math");
    let reward = PluginReward::load(&lib, &serde_json::json!({})).expect("load math plugin");
    let repeat: usize = std::env::var("REPEAT").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let items: Vec<RewardInput> =
        (0..repeat).flat_map(|_| table::CASES.iter()).map(|(pred, gold, _)| RewardInput { answer: pred.to_string(), gold: Some(gold.to_string()), ..Default::default() }).collect();
    let out = wst_tests::artifact_dir().join("..").join("math_items.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&out).expect("items file"));
    for (pred, gold, want) in table::CASES {
        writeln!(f, "{}", serde_json::json!({"answer": pred, "gold": gold, "verdict": want})).unwrap();
    }
    drop(f);
    // Warm up, then time batches of 256 as the trainer sends them.
    reward.score(&items[..256.min(items.len())]).unwrap();
    let start = Instant::now();
    let mut correct = 0.0;
    for chunk in items.chunks(256) {
        correct += reward.score(chunk).unwrap().iter().map(|s| s.get("accuracy").unwrap()).sum::<f64>();
    }
    let secs = start.elapsed().as_secs_f64();
    let agree = table::CASES.iter().filter(|c| c.2).count() * repeat;
    println!(
        "{{\"grader\": \"wst math plugin (C ABI)\", \"items\": {}, \"seconds\": {secs:.4}, \"items_per_s\": {:.0}, \"accepted\": {correct}, \"table_positives\": {agree}, \"items_file\": {:?}}}",
        items.len(),
        items.len() as f64 / secs,
        out.canonicalize().unwrap_or(out.clone())
    );
}
