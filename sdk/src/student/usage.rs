//! What a Student has cost so far: requests, tokens and money, counted by the backend.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::TokenUsage;
use crate::types::Price;

/// Running totals of one Student's spending.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StudentUsage {
    /// Requests sent to the model (retries and fan-out calls included).
    pub requests: u64,
    /// Answers received.
    pub answers: u64,
    /// Prompt tokens billed.
    pub prompt_tokens: u64,
    /// Completion tokens billed.
    pub completion_tokens: u64,
    /// Cost in USD from the configured price table (0 when the model has no price).
    pub cost_usd: f64,
    /// Answers served from the response cache (free).
    pub cache_hits: u64,
}

impl StudentUsage {
    /// The difference `self - earlier`, for per-step accounting.
    pub fn since(&self, earlier: &StudentUsage) -> StudentUsage {
        StudentUsage {
            requests: self.requests.saturating_sub(earlier.requests),
            answers: self.answers.saturating_sub(earlier.answers),
            prompt_tokens: self.prompt_tokens.saturating_sub(earlier.prompt_tokens),
            completion_tokens: self.completion_tokens.saturating_sub(earlier.completion_tokens),
            cost_usd: (self.cost_usd - earlier.cost_usd).max(0.0),
            cache_hits: self.cache_hits.saturating_sub(earlier.cache_hits),
        }
    }
}

/// A thread-safe usage counter a backend embeds; prices turn tokens into USD.
#[derive(Debug, Default)]
pub struct UsageMeter {
    totals: Mutex<StudentUsage>,
    price: Option<Price>,
}

impl UsageMeter {
    /// A meter pricing tokens with `model`'s entry in `prices`, when it has one.
    pub fn new(model: &str, prices: &BTreeMap<String, Price>) -> Self {
        UsageMeter { totals: Mutex::new(StudentUsage::default()), price: prices.get(model).copied() }
    }

    /// Counts one request that returned `answers` answers using `usage` tokens.
    pub fn record(&self, answers: usize, usage: TokenUsage) {
        let mut t = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        t.requests += 1;
        t.answers += answers as u64;
        t.prompt_tokens += usage.prompt_tokens;
        t.completion_tokens += usage.completion_tokens;
        if let Some(p) = self.price {
            t.cost_usd += (usage.prompt_tokens as f64 * p.input + usage.completion_tokens as f64 * p.output) / 1e6;
        }
    }

    /// Counts a request that failed (it may still have been billed for its prompt).
    pub fn record_failure(&self) {
        self.totals.lock().unwrap_or_else(|e| e.into_inner()).requests += 1;
    }

    /// The totals so far.
    pub fn snapshot(&self) -> StudentUsage {
        self.totals.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_uses_the_price_per_million_tokens() {
        let mut prices = BTreeMap::new();
        prices.insert("m".to_string(), Price { input: 0.15, output: 0.60 });
        let meter = UsageMeter::new("m", &prices);
        meter.record(2, TokenUsage { prompt_tokens: 1_000, completion_tokens: 2_000 });
        let u = meter.snapshot();
        // 1000 * 0.15e-6 + 2000 * 0.60e-6 = 0.00015 + 0.0012
        assert!((u.cost_usd - 0.00135).abs() < 1e-12, "{}", u.cost_usd);
        assert_eq!((u.requests, u.answers, u.prompt_tokens, u.completion_tokens), (1, 2, 1_000, 2_000));
        assert_eq!(UsageMeter::new("other", &prices).snapshot().cost_usd, 0.0);
    }
}
