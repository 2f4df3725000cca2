//! Admission: at most `max_concurrency` requests are processed at once and at most `max_queue`
//! wait for a slot; one more is refused at once with a 429 instead of queueing without bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;
use crate::metrics::Metrics;

/// Slots and a bounded queue.
#[derive(Debug)]
pub struct Admission {
    slots: Arc<Semaphore>,
    admitted: AtomicUsize,
    max_concurrency: usize,
    max_queue: usize,
}

/// A request's place: while held it counts as admitted, and once it has a slot, as running.
#[derive(Debug)]
pub struct Ticket {
    admission: Arc<Admission>,
    metrics: Arc<Metrics>,
    slot: Option<OwnedSemaphorePermit>,
}

impl Admission {
    /// `max_concurrency` slots (at least 1) and room for `max_queue` waiting requests.
    pub fn new(max_concurrency: usize, max_queue: usize) -> Self {
        let max_concurrency = max_concurrency.max(1);
        Admission { slots: Arc::new(Semaphore::new(max_concurrency)), admitted: AtomicUsize::new(0), max_concurrency, max_queue }
    }

    /// Admits a request or refuses it with a 429 when slots and queue are full.
    pub fn admit(self: &Arc<Self>, metrics: &Arc<Metrics>) -> Result<Ticket, ApiError> {
        let limit = self.max_concurrency + self.max_queue;
        let before = self.admitted.fetch_add(1, Ordering::SeqCst);
        if before >= limit {
            self.admitted.fetch_sub(1, Ordering::SeqCst);
            let running = before.min(self.max_concurrency);
            return Err(ApiError::overloaded(running, before - running));
        }
        Ok(Ticket { admission: self.clone(), metrics: metrics.clone(), slot: None })
    }
}

impl Ticket {
    /// Waits for a slot (counted as waiting meanwhile).
    pub async fn run(&mut self) {
        if self.slot.is_some() {
            return;
        }
        self.metrics.waiting.fetch_add(1, Ordering::SeqCst);
        let permit = self.admission.slots.clone().acquire_owned().await;
        self.metrics.waiting.fetch_sub(1, Ordering::SeqCst);
        if let Ok(p) = permit {
            self.metrics.running.fetch_add(1, Ordering::SeqCst);
            self.slot = Some(p);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.slot.take().is_some() {
            self.metrics.running.fetch_sub(1, Ordering::SeqCst);
        }
        self.admission.admitted.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_past_slots_and_queue_is_refused_and_a_freed_place_is_reused() {
        let a = Arc::new(Admission::new(2, 1));
        let m = Arc::new(Metrics::default());
        let mut held: Vec<Ticket> = (0..3).map(|_| a.admit(&m).unwrap()).collect();
        for t in held.iter_mut().take(2) {
            t.run().await;
        }
        assert_eq!(m.running.load(Ordering::SeqCst), 2);
        let refused = a.admit(&m).unwrap_err();
        assert_eq!(refused.status, axum::http::StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.retry_after, Some(1));
        held.pop();
        assert!(a.admit(&m).is_ok());
        drop(held);
        assert_eq!(m.running.load(Ordering::SeqCst), 0);
    }
}
