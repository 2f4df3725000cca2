//! Percentile bootstrap confidence intervals over queries, and paired ones for the difference
//! of two methods on the same queries (resampling queries keeps each query's two scores
//! together, so the interval reflects how methods differ per query, not how hard queries are).

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
    let mut means: Vec<f64> = (0..resamples).map(|_| (0..n).map(|_| values[rng.random_range(0..n)]).sum::<f64>() / n as f64).collect();
    means.sort_by(f64::total_cmp);
    let alpha = (1.0 - level) / 2.0;
    let pick = |q: f64| means[((q * (resamples - 1) as f64).round() as usize).min(resamples - 1)];
    (mean, pick(alpha), pick(1.0 - alpha))
}

/// The mean of `a[i] − b[i]` over the queries both were evaluated on, and its percentile-bootstrap
/// interval; `None` when the lengths differ.
pub fn paired_bootstrap_ci(a: &[f64], b: &[f64], resamples: usize, level: f64, seed: u64) -> Option<(f64, f64, f64)> {
    if a.len() != b.len() {
        return None;
    }
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    Some(bootstrap_ci(&d, resamples, level, seed))
}

/// The mean of `values` and its cluster-bootstrap interval: whole clusters (`clusters[i]` is
/// the cluster of `values[i]`, e.g. the template a problem was generated from) are resampled
/// with replacement and the statistic is the mean over every value they hold. Values of one
/// cluster are correlated, so resampling them one by one gives intervals that are too narrow.
pub fn cluster_bootstrap_ci(values: &[f64], clusters: &[usize], resamples: usize, level: f64, seed: u64) -> Option<(f64, f64, f64)> {
    if values.len() != clusters.len() || values.is_empty() {
        return None;
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    // (sum, count) per cluster, in first-seen order.
    let mut order: Vec<usize> = Vec::new();
    let mut sums: std::collections::HashMap<usize, (f64, usize)> = std::collections::HashMap::new();
    for (v, c) in values.iter().zip(clusters) {
        let e = sums.entry(*c).or_insert_with(|| {
            order.push(*c);
            (0.0, 0)
        });
        e.0 += v;
        e.1 += 1;
    }
    let groups: Vec<(f64, usize)> = order.iter().map(|c| sums[c]).collect();
    let k = groups.len();
    if k == 1 || resamples == 0 {
        return Some((mean, mean, mean));
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| {
            let (mut sum, mut n) = (0.0, 0usize);
            for _ in 0..k {
                let (s, c) = groups[rng.random_range(0..k)];
                sum += s;
                n += c;
            }
            sum / n as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    let alpha = (1.0 - level) / 2.0;
    let pick = |q: f64| means[((q * (resamples - 1) as f64).round() as usize).min(resamples - 1)];
    Some((mean, pick(alpha), pick(1.0 - alpha)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_intervals_by_hand() {
        // Two templates of five problems each, all wrong in one and all right in the other. A
        // resample of the two templates holds AA, AB, BA or BB: means 0, 0.5, 0.5, 1, so the
        // 2.5% and 97.5% quantiles are 0 and 1. Resampling the ten problems one by one instead
        // gives the far narrower interval of ten independent coin flips (about 0.2 to 0.8).
        let v = [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0];
        let c = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1];
        assert_eq!(cluster_bootstrap_ci(&v, &c, 4000, 0.95, 5), Some((0.5, 0.0, 1.0)));
        let (_, lo, hi) = bootstrap_ci(&v, 4000, 0.95, 5);
        assert!((0.1..=0.3).contains(&lo) && (0.7..=0.9).contains(&hi), "{lo} {hi}");
        // Clusters of unequal size: the statistic is the mean over the problems drawn, so a
        // resample of {A, A} (sizes 1) is 1.0 and {B, B} (sizes 3) is 0.0, and the point estimate
        // is the plain mean 1/4.
        let (m, lo, hi) = cluster_bootstrap_ci(&[1.0, 0.0, 0.0, 0.0], &[7, 9, 9, 9], 4000, 0.95, 1).unwrap();
        assert_eq!((m, lo, hi), (0.25, 0.0, 1.0));
        // One value per cluster is the ordinary bootstrap.
        let x: Vec<f64> = (0..30).map(|i| (i % 4) as f64).collect();
        let ids: Vec<usize> = (0..30).collect();
        assert_eq!(cluster_bootstrap_ci(&x, &ids, 2000, 0.95, 3).map(|t| t.0), Some(bootstrap_ci(&x, 2000, 0.95, 3).0));
        assert!(cluster_bootstrap_ci(&[1.0], &[1, 2], 10, 0.95, 1).is_none());
    }

    #[test]
    fn paired_differences_by_hand() {
        // d = [0, 1]: a resample's mean is 0, 0.5 or 1 with probabilities 1/4, 1/2, 1/4, so the
        // 2.5% and 97.5% quantiles are 0 and 1.
        let (m, lo, hi) = paired_bootstrap_ci(&[0.5, 1.0], &[0.5, 0.0], 4000, 0.95, 3).unwrap();
        assert_eq!((m, lo, hi), (0.5, 0.0, 1.0));
        // A method 0.1 better on every query: the paired interval is exactly [0.1, 0.1], although
        // the per-method intervals overlap widely (query difficulty dominates them).
        let b: Vec<f64> = (0..40).map(|i| (i % 10) as f64 / 10.0).collect();
        let a: Vec<f64> = b.iter().map(|x| x + 0.1).collect();
        let (m, lo, hi) = paired_bootstrap_ci(&a, &b, 2000, 0.95, 1).unwrap();
        assert!((m - 0.1).abs() < 1e-12 && (lo - 0.1).abs() < 1e-12 && (hi - 0.1).abs() < 1e-12, "{m} {lo} {hi}");
        let (_, alo, _) = bootstrap_ci(&a, 2000, 0.95, 1);
        let (_, _, bhi) = bootstrap_ci(&b, 2000, 0.95, 1);
        assert!(alo < bhi, "unpaired intervals overlap");
        assert!(paired_bootstrap_ci(&[1.0], &[1.0, 2.0], 10, 0.95, 1).is_none());
    }

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
