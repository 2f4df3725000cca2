//! The `math` reward plugin: accuracy for GSM8K and MATH-500.
//!
//! The Student's final answer is extracted (last `\boxed{}`, "final answer is", "the answer is",
//! `#### N`, "answer:", then the last number) and compared with the gold answer using LaTeX
//! normalisation, exact rational arithmetic, numeric and symbolic equality, tuples, intervals,
//! sets, equations and multiple-choice letters: the rules of Hendrycks' `is_equiv`,
//! Qwen2.5-Math's `math_equal` and Math-Verify, without a subprocess or Python.

pub mod answer;
pub mod expr;
pub mod extract;
pub mod normalize;
pub mod number;

use std::collections::BTreeMap;

use wst_plugin_abi::{RewardInput, RewardPlugin, export_reward};

/// Configuration of the `math` reward.
#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MathConfig {
    /// Score 0 (instead of an error) when an item has no gold answer.
    pub missing_gold_scores_zero: bool,
}

/// Whether `completion` answers `gold` (both as written: full texts, `#### N`, `\boxed{}`).
pub fn is_correct(completion: &str, gold: &str) -> bool {
    let gold = extract::extract_gold(gold);
    match extract::extract_answer(completion) {
        Some(pred) => answer::is_equiv(&pred, &gold),
        None => false,
    }
}

/// The `math` reward.
#[derive(Debug)]
pub struct MathReward(MathConfig);

impl RewardPlugin for MathReward {
    type Config = MathConfig;
    const NAME: &'static str = "math";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn value_names() -> Vec<String> {
        vec!["accuracy".into()]
    }

    fn new(config: MathConfig) -> Result<Self, String> {
        Ok(MathReward(config))
    }

    fn score(&self, items: &[RewardInput]) -> Result<Vec<BTreeMap<String, f64>>, String> {
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let acc = match &item.gold {
                    Some(g) => is_correct(&item.answer, g),
                    None if self.0.missing_gold_scores_zero => false,
                    None => return Err(format!("item {i} has no `gold` answer; the math reward needs one")),
                };
                Ok(BTreeMap::from([("accuracy".to_string(), if acc { 1.0 } else { 0.0 })]))
            })
            .collect()
    }
}

export_reward!(MathReward);
