//! Example reward plugin: `words` (the answer's word count) and `within_limit` (1 inside
//! [min_words, max_words], falling linearly to 0 at twice the distance outside). A template for
//! authors: a config struct, a type implementing `RewardPlugin`, one `export_reward!`.

use std::collections::BTreeMap;

use wst_plugin_abi::{RewardInput, RewardPlugin, export_reward};

/// Configuration of the `length` reward.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LengthConfig {
    /// Fewest words that score 1.
    pub min_words: usize,
    /// Most words that score 1.
    pub max_words: usize,
}

impl Default for LengthConfig {
    fn default() -> Self {
        LengthConfig { min_words: 1, max_words: 200 }
    }
}

/// The `length` reward.
#[derive(Debug)]
pub struct Length(LengthConfig);

impl Length {
    /// `within_limit` for a word count.
    pub fn within_limit(&self, words: usize) -> f64 {
        let (lo, hi) = (self.0.min_words as f64, self.0.max_words as f64);
        let w = words as f64;
        if w < lo {
            (w / lo).max(0.0)
        } else if w > hi {
            (1.0 - (w - hi) / hi.max(1.0)).max(0.0)
        } else {
            1.0
        }
    }
}

impl RewardPlugin for Length {
    type Config = LengthConfig;
    const NAME: &'static str = "length";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn value_names() -> Vec<String> {
        // The first value is the primary one: rewarded when no weights are given.
        vec!["within_limit".into(), "words".into()]
    }

    fn new(config: LengthConfig) -> Result<Self, String> {
        if config.min_words > config.max_words {
            return Err(format!("min_words ({}) is above max_words ({})", config.min_words, config.max_words));
        }
        Ok(Length(config))
    }

    fn score(&self, items: &[RewardInput]) -> Result<Vec<BTreeMap<String, f64>>, String> {
        Ok(items
            .iter()
            .map(|i| {
                let words = i.answer.split_whitespace().count();
                BTreeMap::from([("words".to_string(), words as f64), ("within_limit".to_string(), self.within_limit(words))])
            })
            .collect())
    }
}

export_reward!(Length);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_by_hand() {
        let l = Length::new(LengthConfig { min_words: 10, max_words: 20 }).unwrap();
        assert_eq!(l.within_limit(15), 1.0);
        assert_eq!(l.within_limit(5), 0.5);
        assert_eq!(l.within_limit(30), 0.5);
        assert_eq!(l.within_limit(50), 0.0);
        assert!(Length::new(LengthConfig { min_words: 3, max_words: 2 }).is_err());
    }
}
