//! The WST reward: r = mean_k g(m2^k) − s, where s is the Student's own mean score on the query
//! without instructions. Positive r means the instruction helped.

use crate::error::{Error, Result};

/// Arithmetic mean; an error on an empty slice or a non-finite value, never NaN.
pub fn mean(values: &[f64]) -> Result<f64> {
    if values.is_empty() {
        return Err(Error::invalid("values", "cannot average zero values"));
    }
    if let Some(v) = values.iter().find(|v| !v.is_finite()) {
        return Err(Error::invalid("values", format!("non-finite value {v}")));
    }
    Ok(values.iter().sum::<f64>() / values.len() as f64)
}

/// r = mean(`student_scores`) − `baseline`.
pub fn wst_reward(student_scores: &[f64], baseline: f64) -> Result<f64> {
    if !baseline.is_finite() {
        return Err(Error::invalid("baseline", format!("non-finite baseline {baseline}")));
    }
    Ok(mean(student_scores)? - baseline)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reward_is_mean_minus_baseline() {
        // 7 of 10 answers right with the instruction, 4 of 10 without: r = 0.7 - 0.4.
        let scores = [1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0];
        assert!((wst_reward(&scores, 0.4).unwrap() - 0.3).abs() < 1e-12);
    }

    #[test]
    fn a_harmful_instruction_gets_a_negative_reward() {
        assert!((wst_reward(&[0.0, 0.0], 0.5).unwrap() + 0.5).abs() < 1e-12);
    }

    #[test]
    fn empty_and_nan_are_errors() {
        assert!(wst_reward(&[], 0.0).is_err());
        assert!(wst_reward(&[f64::NAN], 0.0).is_err());
        assert!(wst_reward(&[1.0], f64::INFINITY).is_err());
    }
}
