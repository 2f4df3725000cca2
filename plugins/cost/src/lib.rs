//! The `cost` reward: what an answer cost the Student, from the completion tokens its backend
//! counted. With a negative weight it turns accuracy into accuracy-per-token, so a Teacher can
//! learn how much reasoning each query needs:
//! `reward_weights = { "math/accuracy" = 1.0, "cost/token_cost" = -0.5 }`.
//!
//! Values, per answer:
//! - `token_savings`: 1 − `token_cost`, the primary value (the one rewarded when a config gives
//!   no weights), so that the default rewards short answers, not long ones;
//! - `token_cost`: completion tokens / `budget` (0 for an empty answer, 1 at the budget; linear,
//!   not clipped, so a budget below `max_tokens` keeps ranking long answers);
//! - `tokens`: the completion tokens themselves;
//! - `over_budget`: 1 when the answer spent more than `budget` tokens or was cut by `max_tokens`;
//! - `truncated`: 1 when the answer was cut by `max_tokens` (finish reason `length`).

use std::collections::BTreeMap;

use wst_plugin_abi::{RewardInput, RewardPlugin, export_reward};

/// Configuration of the `cost` reward.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CostConfig {
    /// Completion tokens that cost 1.0 (`token_cost` = tokens / budget); also the line past
    /// which an answer is `over_budget`. Set it to the Student's `max_tokens` to keep
    /// `token_cost` within [0, 1].
    pub budget: u64,
}

impl Default for CostConfig {
    fn default() -> Self {
        CostConfig { budget: 512 }
    }
}

/// The `cost` reward.
#[derive(Debug)]
pub struct Cost(CostConfig);

impl Cost {
    /// The values of one answer of `tokens` completion tokens that ended for `finish_reason`.
    pub fn values(&self, tokens: u64, finish_reason: Option<&str>) -> BTreeMap<String, f64> {
        let budget = self.0.budget as f64;
        let truncated = finish_reason == Some("length");
        let over = truncated || tokens > self.0.budget;
        BTreeMap::from([
            ("token_savings".to_string(), 1.0 - tokens as f64 / budget),
            ("token_cost".to_string(), tokens as f64 / budget),
            ("tokens".to_string(), tokens as f64),
            ("over_budget".to_string(), f64::from(u8::from(over))),
            ("truncated".to_string(), f64::from(u8::from(truncated))),
        ])
    }
}

impl RewardPlugin for Cost {
    type Config = CostConfig;
    const NAME: &'static str = "cost";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn value_names() -> Vec<String> {
        // The first value is the primary one: weighted when no weights are given.
        vec!["token_savings".into(), "token_cost".into(), "tokens".into(), "over_budget".into(), "truncated".into()]
    }

    fn new(config: CostConfig) -> Result<Self, String> {
        if config.budget == 0 {
            return Err("budget must be at least 1 token".into());
        }
        Ok(Cost(config))
    }

    fn score(&self, items: &[RewardInput]) -> Result<Vec<BTreeMap<String, f64>>, String> {
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let tokens = item.completion_tokens.ok_or_else(|| {
                    format!("item {i}: no `completion_tokens` in the input: the host is older than the field (wst 0.1 before token costs) and cannot feed this reward")
                })?;
                // A backend that does not count (a server without `usage`) reports 0: scoring
                // that as free would reward exactly the wrong thing.
                if tokens == 0 && !item.answer.trim().is_empty() {
                    return Err(format!(
                        "item {i}: 0 completion tokens for a non-empty answer: the Student's backend did not count tokens (an OpenAI-compatible server that sends no `usage`?)"
                    ));
                }
                Ok(self.values(tokens, item.finish_reason.as_deref()))
            })
            .collect()
    }
}

export_reward!(Cost);

#[cfg(test)]
mod tests {
    use super::*;

    fn item(answer: &str, tokens: Option<u64>, finish: Option<&str>) -> RewardInput {
        RewardInput { answer: answer.into(), completion_tokens: tokens, finish_reason: finish.map(str::to_string), ..Default::default() }
    }

    #[test]
    fn values_by_hand() {
        let c = Cost::new(CostConfig { budget: 200 }).unwrap();
        let s = c.score(&[item("a", Some(50), Some("stop")), item("b", Some(300), Some("stop")), item("c", Some(200), Some("length")), item("", Some(0), Some("stop"))]).unwrap();
        // 50 / 200 = 0.25, inside the budget.
        assert_eq!((s[0]["token_cost"], s[0]["tokens"], s[0]["over_budget"], s[0]["truncated"]), (0.25, 50.0, 0.0, 0.0));
        assert_eq!(s[0]["token_savings"], 0.75);
        // 300 / 200 = 1.5, over the budget, not cut.
        assert_eq!((s[1]["token_cost"], s[1]["over_budget"], s[1]["truncated"]), (1.5, 1.0, 0.0));
        // Exactly at the budget but cut by max_tokens: over, and truncated.
        assert_eq!((s[2]["token_cost"], s[2]["over_budget"], s[2]["truncated"]), (1.0, 1.0, 1.0));
        // An empty answer costs nothing.
        assert_eq!(s[3]["token_cost"], 0.0);
    }

    #[test]
    fn missing_or_uncounted_tokens_are_errors() {
        let c = Cost::new(CostConfig::default()).unwrap();
        let err = c.score(&[item("an answer", None, None)]).unwrap_err();
        assert!(err.contains("item 0") && err.contains("completion_tokens"), "{err}");
        let err = c.score(&[item("x", Some(3), None), item("an answer", Some(0), Some("stop"))]).unwrap_err();
        assert!(err.contains("item 1") && err.contains("did not count tokens"), "{err}");
        assert!(Cost::new(CostConfig { budget: 0 }).is_err());
    }
}
