//! Token buckets keyed by a share id or a client address: a rate with a burst of one period's
//! worth (requests per share per second, creates or wrong secrets per address per minute).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lock order: `buckets` is a leaf lock held only for arithmetic.
pub struct Limiter {
    /// Tokens a period brings, and the burst; 0 = no limit.
    per_period: f64,
    period: Duration,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

/// Buckets kept before idle ones are swept.
const SWEEP_AT: usize = 100_000;

impl Limiter {
    pub fn per_second(n: u32) -> Limiter {
        Limiter::new(n, Duration::from_secs(1))
    }

    pub fn per_minute(n: u32) -> Limiter {
        Limiter::new(n, Duration::from_secs(60))
    }

    fn new(n: u32, period: Duration) -> Limiter {
        Limiter {
            per_period: n as f64,
            period,
            buckets: Mutex::default(),
        }
    }

    /// `Ok` if a request for `key` may go now (and charges it), else the seconds to wait.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        if self.per_period <= 0.0 {
            return Ok(());
        }
        let (full, rate) = (self.per_period, self.per_period / self.period.as_secs_f64());
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= SWEEP_AT {
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < full
            });
        }
        let (tokens, at) = buckets.entry(key.to_owned()).or_insert((full, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(full);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_past_the_rate_is_refused_per_key() {
        let limiter = Limiter::per_second(3);
        assert!((0..3).all(|_| limiter.check("a").is_ok()));
        assert_eq!(limiter.check("a"), Err(1));
        assert!(limiter.check("b").is_ok());
        assert!((0..10).all(|_| Limiter::per_second(0).check("a").is_ok()));
        let minute = Limiter::per_minute(2);
        assert!(minute.check("1.2.3.4").is_ok() && minute.check("1.2.3.4").is_ok());
        assert_eq!(minute.check("1.2.3.4"), Err(30));
    }
}
