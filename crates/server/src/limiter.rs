//! Requests per share per second: a token bucket per share id (burst = one second's worth).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Lock order: `buckets` is a leaf lock held only for arithmetic.
pub struct Limiter {
    rate: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

/// Buckets kept before idle ones are swept.
const SWEEP_AT: usize = 100_000;

impl Limiter {
    pub fn new(rate_per_second: u32) -> Limiter {
        Limiter {
            rate: rate_per_second as f64,
            buckets: Mutex::default(),
        }
    }

    /// `Ok` if a request for `id` may go now, else the seconds to wait (for Retry-After).
    pub fn check(&self, id: &str) -> Result<(), u64> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= SWEEP_AT {
            let rate = self.rate;
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < rate
            });
        }
        let (tokens, at) = buckets.entry(id.to_owned()).or_insert((self.rate, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.rate);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.rate).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_past_the_rate_is_refused_per_share() {
        let limiter = Limiter::new(3);
        assert!((0..3).all(|_| limiter.check("a").is_ok()));
        assert_eq!(limiter.check("a"), Err(1));
        assert!(limiter.check("b").is_ok());
        assert!((0..10).all(|_| Limiter::new(0).check("a").is_ok()));
    }
}
