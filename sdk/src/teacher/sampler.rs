//! Choosing the next token from logits: temperature, top-k, top-p, seeded; and the token's
//! log-prob under the temperature-scaled distribution (what GRPO's ratio uses, as in TRL).

use rand::Rng;

/// Sampling settings for one step.
#[derive(Debug, Clone, Copy)]
pub struct SamplerSettings {
    /// Temperature (0 = greedy).
    pub temperature: f64,
    /// Nucleus mass.
    pub top_p: f64,
    /// Top-k (0 = off).
    pub top_k: usize,
}

/// log-softmax of `logits / t` at `token` (t = 1 when greedy).
pub fn token_logprob(logits: &[f32], token: usize, temperature: f64) -> f32 {
    let t = if temperature > 0.0 { temperature } else { 1.0 };
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
    let lse = logits.iter().map(|&l| ((l as f64 - max) / t).exp()).sum::<f64>().ln();
    (((logits[token] as f64 - max) / t) - lse) as f32
}

/// The next token for one row of logits and its log-prob under the temperature-scaled
/// distribution over the whole vocabulary (as [`token_logprob`] gives it).
pub fn sample(logits: &[f32], s: SamplerSettings, rng: &mut impl Rng) -> (usize, f32) {
    if s.temperature > 0.0 && s.top_k == 0 && s.top_p >= 1.0 {
        // One pass of exponentials serves the draw and the log-prob.
        return sample_full(logits, s.temperature, rng);
    }
    let token = sample_filtered(logits, s, rng);
    (token, token_logprob(logits, token, s.temperature))
}

/// Like [`sample`], drawing only among `allowed` tokens (constrained decoding); the log-prob is
/// still the token's under the whole vocabulary's distribution.
pub fn sample_among(logits: &[f32], allowed: &[usize], s: SamplerSettings, rng: &mut impl Rng) -> (usize, f32) {
    let mut masked = vec![f32::NEG_INFINITY; logits.len()];
    for &t in allowed {
        if let Some(l) = logits.get(t) {
            masked[t] = *l;
        }
    }
    let token = sample_filtered(&masked, s, rng);
    (token, token_logprob(logits, token, s.temperature))
}

/// Greedy, top-k and top-p choice of the next token.
fn sample_filtered(logits: &[f32], s: SamplerSettings, rng: &mut impl Rng) -> usize {
    if s.temperature <= 0.0 {
        return logits.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap_or(0);
    }
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    let by_logit = |a: &usize, b: &usize| logits[*b].total_cmp(&logits[*a]);
    if s.top_k > 0 && s.top_k < idx.len() {
        // Only the k best need ordering: select them first (linear), then sort k.
        idx.select_nth_unstable_by(s.top_k - 1, by_logit);
        idx.truncate(s.top_k);
    }
    idx.sort_unstable_by(by_logit);
    let max = logits[idx[0]] as f64;
    let mut probs: Vec<f64> = idx.iter().map(|&i| ((logits[i] as f64 - max) / s.temperature).exp()).collect();
    let total: f64 = probs.iter().sum();
    probs.iter_mut().for_each(|p| *p /= total);
    if s.top_p < 1.0 {
        let mut cum = 0.0;
        let mut keep = probs.len();
        for (i, p) in probs.iter().enumerate() {
            cum += p;
            if cum >= s.top_p {
                keep = i + 1;
                break;
            }
        }
        probs.truncate(keep);
        idx.truncate(keep);
        let total: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= total);
    }
    let r: f64 = rng.random();
    let mut cum = 0.0;
    for (p, &i) in probs.iter().zip(&idx) {
        cum += p;
        if r < cum {
            return i;
        }
    }
    *idx.last().unwrap_or(&0)
}

/// Draws from softmax(logits / t) over the whole vocabulary by inverse CDF, without sorting,
/// and returns the token with its log-prob (weights exponentiated once, in f32, summed in f64).
fn sample_full(logits: &[f32], temperature: f64, rng: &mut impl Rng) -> (usize, f32) {
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let inv = (1.0 / temperature) as f32;
    let weights: Vec<f32> = logits.iter().map(|&l| ((l - max) * inv).exp()).collect();
    let total: f64 = weights.iter().map(|&w| w as f64).sum();
    let r = rng.random::<f64>() * total;
    let mut cum = 0.0;
    let mut token = 0;
    for (i, &w) in weights.iter().enumerate() {
        if w > 0.0 {
            token = i;
        }
        cum += w as f64;
        if r < cum {
            token = i;
            break;
        }
    }
    let logprob = (logits[token] as f64 - max as f64) / temperature - total.ln();
    (token, logprob as f32)
}

#[cfg(test)]
mod constrained_tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn constrained_draws_stay_allowed_in_proportion_and_keep_the_full_log_prob() {
        // Allowed tokens 1 and 3 with logits ln 1 and ln 3: drawn 1 : 3 at t = 1.
        let logits = [5.0f32, 0.0, 4.0, 3f32.ln(), 2.0];
        let s = SamplerSettings { temperature: 1.0, top_p: 1.0, top_k: 0 };
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut threes = 0;
        for _ in 0..4000 {
            let (t, lp) = sample_among(&logits, &[1, 3], s, &mut rng);
            assert!(t == 1 || t == 3);
            assert!((lp - token_logprob(&logits, t, 1.0)).abs() < 1e-6, "the whole vocabulary's log-prob");
            threes += usize::from(t == 3);
        }
        let share = threes as f64 / 4000.0;
        assert!((share - 0.75).abs() < 0.03, "{share}");
        // Greedy picks the best allowed token, not the best token.
        let g = SamplerSettings { temperature: 0.0, ..s };
        assert_eq!(sample_among(&logits, &[1, 3], g, &mut rng).0, 3);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn logprob_by_hand() {
        // softmax([0, ln 3]) = [1/4, 3/4].
        let l = [0.0f32, 3f32.ln()];
        assert!((token_logprob(&l, 1, 1.0) - 0.75f32.ln()).abs() < 1e-6);
        // At temperature 2 the logits halve: softmax([0, ln 3 / 2]) = [1/(1+√3), √3/(1+√3)].
        let p = 3f64.sqrt() / (1.0 + 3f64.sqrt());
        assert!((token_logprob(&l, 1, 2.0) as f64 - p.ln()).abs() < 1e-6);
    }

    #[test]
    fn greedy_top_k_and_top_p() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let l = [1.0f32, 5.0, 2.0, 4.9];
        assert_eq!(sample(&l, SamplerSettings { temperature: 0.0, top_p: 1.0, top_k: 0 }, &mut rng).0, 1);
        for _ in 0..50 {
            let t = sample(&l, SamplerSettings { temperature: 1.0, top_p: 1.0, top_k: 2 }, &mut rng).0;
            assert!(t == 1 || t == 3);
            // p(1) ≈ 0.5, p(3) ≈ 0.45: top_p 0.3 keeps only token 1.
            assert_eq!(sample(&l, SamplerSettings { temperature: 1.0, top_p: 0.3, top_k: 0 }, &mut rng).0, 1);
        }
    }

    #[test]
    fn unfiltered_sampling_follows_the_softmax() {
        // softmax([0, ln 3, −inf-ish]) = [1/4, 3/4, 0]: 8,000 draws land within 2% of 3/4.
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let l = [0.0f32, 3f32.ln(), -1e9];
        let s = SamplerSettings { temperature: 1.0, top_p: 1.0, top_k: 0 };
        let draws: Vec<(usize, f32)> = (0..8000).map(|_| sample(&l, s, &mut rng)).collect();
        // Each draw's log-prob is the full softmax's.
        assert!(draws.iter().all(|&(t, lp)| (lp - token_logprob(&l, t, 1.0)).abs() < 1e-6));
        let draws: Vec<usize> = draws.into_iter().map(|(t, _)| t).collect();
        let ones = draws.iter().filter(|&&t| t == 1).count() as f64 / 8000.0;
        assert!((ones - 0.75).abs() < 0.02, "{ones}");
        assert!(!draws.contains(&2));
        // Temperature 2 flattens it to [1/(1+√3), √3/(1+√3)].
        let s2 = SamplerSettings { temperature: 2.0, ..s };
        let ones = (0..8000).filter(|_| sample(&l, s2, &mut rng).0 == 1).count() as f64 / 8000.0;
        assert!((ones - 3f64.sqrt() / (1.0 + 3f64.sqrt())).abs() < 0.02, "{ones}");
    }
}
