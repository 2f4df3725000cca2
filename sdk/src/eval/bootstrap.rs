//! Percentile bootstrap confidence intervals over queries.

use rand::{Rng, SeedableRng};

/// The mean of `values` and its `level` (e.g. 0.95) percentile-bootstrap interval from
/// `resamples` resamples of the queries, seeded so reports reproduce.
pub fn bootstrap_ci(values: &[f64], resamples: usize, level: f64, seed: u64) -> (f64, f64, f64) {
    let n = values.len();
    if n == 0 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n == 1 || resamples == 0 {
        return (mean, mean, mean);
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| (0..n).map(|_| values[rng.random_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let alpha = (1.0 - level) / 2.0;
    let pick = |q: f64| means[((q * (resamples - 1) as f64).round() as usize).min(resamples - 1)];
    (mean, pick(alpha), pick(1.0 - alpha))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_values_have_a_zero_width_interval() {
        assert_eq!(bootstrap_ci(&[0.5; 10], 1000, 0.95, 1), (0.5, 0.5, 0.5));
    }

    #[test]
    fn the_interval_brackets_the_mean_and_matches_the_normal_approximation() {
        // 100 Bernoulli values with p = 0.3: standard error sqrt(0.3·0.7/100) ≈ 0.0458,
        // so the 95% interval is about 0.3 ± 0.09.
        let v: Vec<f64> = (0..100).map(|i| if i % 10 < 3 { 1.0 } else { 0.0 }).collect();
        let (m, lo, hi) = bootstrap_ci(&v, 4000, 0.95, 7);
        assert!((m - 0.3).abs() < 1e-12);
        assert!(lo < m && m < hi);
        assert!((lo - 0.21).abs() < 0.025 && (hi - 0.39).abs() < 0.025, "{lo} {hi}");
        assert_eq!(bootstrap_ci(&v, 4000, 0.95, 7), (m, lo, hi), "seeded");
    }
}
