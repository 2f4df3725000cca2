//! A reward plugin to copy: `keywords` = the fraction of required keywords an answer mentions
//! (case-insensitive), `all` = 1 when it mentions every one. Three parts: a config struct
//! (its doc comments become `wst schema --plugin` output), a type implementing
//! `RewardPlugin`, and one `export_reward!` line that generates the versioned C ABI.

use std::collections::BTreeMap;

use wst_plugin_abi::{RewardInput, RewardPlugin, export_reward};

/// Configuration of the `keywords` reward.
#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct KeywordsConfig {
    /// Words every good answer mentions.
    pub keywords: Vec<String>,
}

/// The `keywords` reward.
#[derive(Debug)]
pub struct Keywords(Vec<String>);

impl RewardPlugin for Keywords {
    type Config = KeywordsConfig;
    const NAME: &'static str = "keywords";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn value_names() -> Vec<String> {
        vec!["keywords".into(), "all".into()]
    }

    fn new(config: KeywordsConfig) -> Result<Self, String> {
        if config.keywords.is_empty() {
            return Err("`keywords` is empty: list the words an answer must mention".into());
        }
        Ok(Keywords(config.keywords.iter().map(|k| k.to_lowercase()).collect()))
    }

    fn score(&self, items: &[RewardInput]) -> Result<Vec<BTreeMap<String, f64>>, String> {
        Ok(items
            .iter()
            .map(|i| {
                let answer = i.answer.to_lowercase();
                let hit = self.0.iter().filter(|k| answer.contains(k.as_str())).count() as f64 / self.0.len() as f64;
                BTreeMap::from([("keywords".to_string(), hit), ("all".to_string(), if hit == 1.0 { 1.0 } else { 0.0 })])
            })
            .collect())
    }
}

export_reward!(Keywords);

#[cfg(test)]
mod tests {
    use super::*;

    fn input(answer: &str) -> RewardInput {
        RewardInput { query: "q".into(), answer: answer.into(), ..Default::default() }
    }

    #[test]
    fn fraction_of_keywords_by_hand() {
        let k = Keywords::new(KeywordsConfig { keywords: vec!["Paris".into(), "France".into()] }).unwrap();
        let s = k.score(&[input("paris is lovely"), input("Paris, France"), input("Rome")]).unwrap();
        assert_eq!((s[0]["keywords"], s[0]["all"]), (0.5, 0.0));
        assert_eq!((s[1]["keywords"], s[1]["all"]), (1.0, 1.0));
        assert_eq!(s[2]["keywords"], 0.0);
        assert!(Keywords::new(KeywordsConfig::default()).is_err());
    }
}
