//! Which queries a step trains on, and the seeds it uses: everything derives from
//! (seed, step), so a resumed run continues exactly where the killed one would have.

use rand::SeedableRng;

use crate::types::mix;
use rand::seq::SliceRandom;

/// Data order and per-step seeds of a run.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Queries in the training set.
    pub n_queries: usize,
    /// Queries per optimisation step.
    pub queries_per_step: usize,
    /// Total optimisation steps.
    pub total_steps: usize,
    /// The run's seed.
    pub seed: u64,
}

impl Schedule {
    /// A schedule over `n_queries` queries; `max_steps` wins over `epochs` when set.
    pub fn new(n_queries: usize, queries_per_step: usize, max_steps: Option<usize>, epochs: f64, seed: u64) -> Self {
        let queries_per_step = queries_per_step.max(1);
        let total_steps = max_steps.unwrap_or_else(|| ((epochs * n_queries as f64) / queries_per_step as f64).ceil().max(1.0) as usize);
        Schedule { n_queries, queries_per_step, total_steps, seed }
    }

    /// Indices of the queries step `step` trains on: epochs are shuffled with seed + epoch,
    /// and a step that crosses an epoch boundary continues into the next epoch's order.
    pub fn batch(&self, step: usize) -> Vec<usize> {
        let n = self.n_queries.max(1);
        (0..self.queries_per_step)
            .map(|i| {
                let pos = step * self.queries_per_step + i;
                let (epoch, offset) = (pos / n, pos % n);
                self.order(epoch)[offset]
            })
            .collect()
    }

    fn order(&self, epoch: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.n_queries.max(1)).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(mix(&[self.seed, epoch as u64]));
        order.shuffle(&mut rng);
        order
    }

    /// The epoch (fractional) reached after `steps` steps.
    pub fn epoch(&self, steps: usize) -> f64 {
        (steps * self.queries_per_step) as f64 / self.n_queries.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_query_once_per_epoch_and_reproducible() {
        let s = Schedule::new(5, 2, None, 2.0, 7);
        assert_eq!(s.total_steps, 5);
        let seen: Vec<usize> = (0..5).flat_map(|k| s.batch(k)).collect();
        let mut first: Vec<usize> = seen[..5].to_vec();
        first.sort();
        assert_eq!(first, [0, 1, 2, 3, 4]);
        let mut second: Vec<usize> = seen[5..10].to_vec();
        second.sort();
        assert_eq!(second, [0, 1, 2, 3, 4]);
        assert_eq!(s.batch(3), Schedule::new(5, 2, None, 2.0, 7).batch(3));
        assert_eq!(Schedule::new(5, 2, Some(3), 2.0, 7).total_steps, 3);
        assert!((s.epoch(5) - 2.0).abs() < 1e-12);
    }
}
