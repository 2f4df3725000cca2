//! Named reward values for one answer, and their combination by user weights
//! (the paper's w · [helpful, harmless]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The named values a reward gives one answer (`accuracy`, `helpful`, `harmless`, ...).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Score {
    /// Value name → value. Ordered, so logs and tables are stable.
    pub values: BTreeMap<String, f64>,
}

impl Score {
    /// A score with a single named value.
    pub fn single(name: impl Into<String>, value: f64) -> Self {
        let mut values = BTreeMap::new();
        values.insert(name.into(), value);
        Score { values }
    }

    /// The value called `name`, if present.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.values.get(name).copied()
    }

    /// Adds every value of `other`, prefixing names with `prefix/` when a prefix is given.
    pub fn extend_prefixed(&mut self, prefix: Option<&str>, other: &Score) {
        for (k, v) in &other.values {
            let name = match prefix {
                Some(p) => format!("{p}/{k}"),
                None => k.clone(),
            };
            self.values.insert(name, *v);
        }
    }

    /// The weighted sum Σ w_name · value_name. Every weighted name must be present: a missing
    /// value is an error, never a silent zero.
    pub fn combine(&self, weights: &Weights) -> Result<f64> {
        let mut total = 0.0;
        for (name, w) in &weights.0 {
            let v = self.values.get(name).ok_or_else(|| Error::Reward {
                reward: name.clone(),
                message: format!("weight given for value `{name}` but the score has only [{}]", self.values.keys().cloned().collect::<Vec<_>>().join(", ")),
            })?;
            if !v.is_finite() {
                return Err(Error::Reward { reward: name.clone(), message: format!("value `{name}` is not finite ({v})") });
            }
            total += w * v;
        }
        Ok(total)
    }
}

/// User weights over named score values, e.g. `{ helpful = 0.7, harmless = 0.3 }`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct Weights(pub BTreeMap<String, f64>);

impl Weights {
    /// Weights from (name, weight) pairs.
    pub fn new<I, S>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (S, f64)>,
        S: Into<String>,
    {
        Weights(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// Whether no weight is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The mean of each named value over several value maps (a name is averaged over the maps
/// that have it), e.g. `accuracy` over K answers or over queries.
pub fn mean_by_name<'a>(maps: impl IntoIterator<Item = &'a BTreeMap<String, f64>>) -> BTreeMap<String, f64> {
    let mut sums: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    for map in maps {
        for (name, v) in map {
            let e = sums.entry(name.clone()).or_default();
            e.0 += v;
            e.1 += 1;
        }
    }
    sums.into_iter().map(|(name, (sum, n))| (name, sum / n as f64)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_by_name_averages_each_value() {
        let a = BTreeMap::from([("x".to_string(), 1.0), ("y".to_string(), 4.0)]);
        let b = BTreeMap::from([("x".to_string(), 0.0), ("y".to_string(), 2.0)]);
        assert_eq!(mean_by_name([&a, &b]), BTreeMap::from([("x".to_string(), 0.5), ("y".to_string(), 3.0)]));
        assert!(mean_by_name(std::iter::empty()).is_empty());
    }

    #[test]
    fn combine_is_the_weighted_sum() {
        let mut s = Score::single("helpful", 2.0);
        s.values.insert("harmless".into(), -1.0);
        let w = Weights::new([("helpful", 0.7), ("harmless", 0.3)]);
        assert!((s.combine(&w).unwrap() - (1.4 - 0.3)).abs() < 1e-12);
    }

    #[test]
    fn combine_rejects_a_missing_value() {
        let s = Score::single("helpful", 2.0);
        let err = s.combine(&Weights::new([("harmless", 1.0)])).unwrap_err().to_string();
        assert!(err.contains("harmless") && err.contains("helpful"), "{err}");
    }

    #[test]
    fn combine_rejects_nan() {
        let s = Score::single("a", f64::NAN);
        assert!(s.combine(&Weights::new([("a", 1.0)])).is_err());
    }
}
