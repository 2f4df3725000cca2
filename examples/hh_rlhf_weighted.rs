//! HH-RLHF-style alignment: two reward-model plugins (helpful, harmless) combined with user
//! weights w·[helpful, harmless], K = 1, as in the paper. Sweeping the weights and plotting
//! with `wst plot --pareto` gives the helpful/harmless frontier.
//!
//! cargo build --release -p wst-reward-model
//! cargo run --release -p wst-examples --example hh_rlhf_weighted -- \
//!     STUDENT.gguf HELPFUL_RM_DIR HARMLESS_RM_DIR hh_rlhf_test.jsonl 0.7
use wst_sdk::dataset::{DataTask, DatasetConfig, FieldMap, load_queries};
use wst_sdk::eval::{EvalMethod, EvalSettings, InstructionSource, Report, evaluate};
use wst_sdk::reward::PluginReward;
use wst_sdk::{Pipeline, SamplingParams, Weights};

#[tokio::main]
async fn main() -> wst_sdk::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let (student, helpful, harmless, data, w) = (&a[1], &a[2], &a[3], &a[4], a.get(5).and_then(|w| w.parse::<f64>().ok()).unwrap_or(0.5));
    let rm = |dir: &str, name: &str| -> wst_sdk::Result<PluginReward> {
        let so = "target/release/libwst_reward_model.so";
        Ok(PluginReward::load(so, &serde_json::json!({ "model": dir }))?.with_name(name))
    };
    let pipeline = Pipeline::builder()
        .student(wst_llamacpp::LlamaCppStudent::load(student, &Default::default())?)
        .student_sampling(SamplingParams { temperature: 0.7, max_tokens: 256, ..Default::default() })
        .reward(rm(helpful, "helpful")?)
        .reward(rm(harmless, "harmless")?)
        .weights(Weights::new([("helpful/score", w), ("harmless/score", 1.0 - w)]))
        .build()?;
    // HH-RLHF rows: the prompt is cut from the `chosen` dialogue at its last Assistant turn.
    let queries = load_queries(&DatasetConfig {
        path: data.into(),
        fields: FieldMap { query: "chosen".into(), gold: None, id: None, metadata: vec![] },
        task: DataTask::HhRlhf,
        limit: Some(50),
        ..Default::default()
    })?;
    let settings = EvalSettings { student_samples: 1, metric: "weighted_reward".into(), ..Default::default() };
    let (row, _) = evaluate(&pipeline, &queries, &EvalMethod { name: format!("direct w={w}"), source: InstructionSource::None, prompt: None }, &settings).await?;
    let report = Report { methods: vec![row], ..Default::default() };
    report.write(std::path::Path::new(&format!("hh-eval-w{w}")))?;
    print!("{}", report.to_markdown());
    Ok(())
}
