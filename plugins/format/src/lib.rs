//! Example reward plugin: `format` is 1 when the answer contains every required marker and no
//! forbidden one (by default: a `\boxed{...}` final answer), else 0.

use std::collections::BTreeMap;

use wst_plugin_abi::{RewardInput, RewardPlugin, export_reward};

/// Configuration of the `format` reward.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FormatConfig {
    /// Substrings the answer must contain.
    pub required: Vec<String>,
    /// Substrings the answer must not contain.
    pub forbidden: Vec<String>,
    /// Compare ignoring ASCII case.
    pub ignore_case: bool,
}

impl Default for FormatConfig {
    fn default() -> Self {
        FormatConfig { required: vec!["\\boxed{".into()], forbidden: Vec::new(), ignore_case: false }
    }
}

/// The `format` reward.
#[derive(Debug)]
pub struct Format(FormatConfig);

impl Format {
    /// 1.0 when `answer` follows the format, else 0.0.
    pub fn check(&self, answer: &str) -> f64 {
        let norm = |s: &str| if self.0.ignore_case { s.to_ascii_lowercase() } else { s.to_string() };
        let a = norm(answer);
        let ok = self.0.required.iter().all(|r| a.contains(&norm(r))) && !self.0.forbidden.iter().any(|f| a.contains(&norm(f)));
        if ok { 1.0 } else { 0.0 }
    }
}

impl RewardPlugin for Format {
    type Config = FormatConfig;
    const NAME: &'static str = "format";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn value_names() -> Vec<String> {
        vec!["format".into()]
    }

    fn new(config: FormatConfig) -> Result<Self, String> {
        if config.required.iter().chain(&config.forbidden).any(|s| s.is_empty()) {
            return Err("required/forbidden markers must not be empty strings".into());
        }
        Ok(Format(config))
    }

    fn score(&self, items: &[RewardInput]) -> Result<Vec<BTreeMap<String, f64>>, String> {
        Ok(items.iter().map(|i| BTreeMap::from([("format".to_string(), self.check(&i.answer))])).collect())
    }
}

export_reward!(Format);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_wants_a_boxed_answer() {
        let f = Format::new(FormatConfig::default()).unwrap();
        assert_eq!(f.check("so \\boxed{4}"), 1.0);
        assert_eq!(f.check("the answer is 4"), 0.0);
        let g = Format::new(FormatConfig { required: vec!["ANSWER:".into()], forbidden: vec!["sorry".into()], ignore_case: true }).unwrap();
        assert_eq!(g.check("answer: 4"), 1.0);
        assert_eq!(g.check("Sorry. Answer: 4"), 0.0);
    }
}
