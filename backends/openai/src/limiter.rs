//! Requests-per-minute and tokens-per-minute limits over a sliding 60-second window, shared by
//! every request of one Student so a run stays inside the provider's quota instead of
//! collecting 429s.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

const WINDOW: Duration = Duration::from_secs(60);

/// A sliding-window limiter; a limit of 0 means unlimited.
#[derive(Debug)]
pub struct RateLimiter {
    rpm: u32,
    tpm: u32,
    sent: Mutex<VecDeque<(Instant, u64, u64)>>,
    next: std::sync::atomic::AtomicU64,
}

impl RateLimiter {
    /// A limiter allowing `rpm` requests and `tpm` tokens in any 60 seconds.
    pub fn new(rpm: u32, tpm: u32) -> Self {
        RateLimiter { rpm, tpm, sent: Mutex::new(VecDeque::new()), next: std::sync::atomic::AtomicU64::new(0) }
    }

    /// Corrects a booking with the tokens the request really used (the server's `usage`), so
    /// the window holds what was spent, not the estimate made before sending.
    pub async fn settle(&self, booking: u64, tokens: u64) {
        if let Some(e) = self.sent.lock().await.iter_mut().find(|e| e.1 == booking) {
            e.2 = tokens;
        }
    }

    /// Waits until a request of about `tokens` tokens fits in both limits, then books it and
    /// returns the booking (for [`RateLimiter::settle`]). A request larger than the whole token
    /// limit is let through alone in an empty window.
    pub async fn acquire(&self, tokens: u64) -> u64 {
        let booking = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if self.rpm == 0 && self.tpm == 0 {
            return booking;
        }
        loop {
            let wait = {
                let mut sent = self.sent.lock().await;
                let now = Instant::now();
                while sent.front().is_some_and(|(t, _, _)| now.duration_since(*t) >= WINDOW) {
                    sent.pop_front();
                }
                let used: u64 = sent.iter().map(|(_, _, n)| n).sum();
                let rpm_ok = self.rpm == 0 || (sent.len() as u64) < u64::from(self.rpm);
                let tpm_ok = self.tpm == 0 || sent.is_empty() || used + tokens <= u64::from(self.tpm);
                if rpm_ok && tpm_ok {
                    sent.push_back((now, booking, tokens));
                    return booking;
                }
                // The oldest booking leaves the window first; try again then.
                let oldest = sent.front().expect("a full window has bookings").0;
                (oldest + WINDOW).saturating_duration_since(now)
            };
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn requests_per_minute_spread_requests_over_the_window() {
        let l = RateLimiter::new(2, 0);
        let t0 = Instant::now();
        l.acquire(1).await;
        l.acquire(1).await;
        assert_eq!(t0.elapsed(), Duration::ZERO);
        l.acquire(1).await;
        assert_eq!(t0.elapsed(), WINDOW, "the third request waits for the first to leave the window");
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_per_minute_count_tokens_not_requests() {
        let l = RateLimiter::new(0, 100);
        let t0 = Instant::now();
        l.acquire(60).await;
        l.acquire(40).await;
        assert_eq!(t0.elapsed(), Duration::ZERO);
        l.acquire(1).await;
        assert_eq!(t0.elapsed(), WINDOW);
        // Oversized requests still pass, alone.
        let big = RateLimiter::new(0, 10);
        big.acquire(1_000).await;
        assert_eq!(t0.elapsed(), WINDOW);
    }

    #[tokio::test(start_paused = true)]
    async fn settling_with_the_real_usage_frees_the_estimate() {
        // Booked at an estimate of 100 (the whole limit), the request really used 10: 80 more
        // fit at once instead of waiting a minute.
        let l = RateLimiter::new(0, 100);
        let t0 = Instant::now();
        let b = l.acquire(100).await;
        l.settle(b, 10).await;
        l.acquire(80).await;
        assert_eq!(t0.elapsed(), Duration::ZERO);
        l.acquire(20).await;
        assert_eq!(t0.elapsed(), WINDOW, "10 + 80 + 20 > 100 waits for the window");
    }
}
