//! Retry policy: which failures are retried, and how long to wait before the next attempt
//! (exponential backoff with full jitter, never less than the service's Retry-After).

use std::time::{Duration, SystemTime};

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The service answered with this status (`retry_after` from its Retry-After header).
    Answered {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// No answer: connect error, reset, closed connection, timeout.
    Network(String),
    /// Not sent: the library itself refused the request (why, in words without the secret).
    Refused(String),
    /// The service answered, but not in a form the library reads (a body past the cap).
    BadAnswer(String),
    /// The library panicked while preparing or sending the request: a bug, never retried.
    Panicked(String),
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: done.
    Success,
    /// Network error, 408, 429, 5xx: try again after a backoff of at least `after`.
    Retry { after: Option<Duration> },
    /// 401, 403, 404: the share is gone (bad or revoked secret, deleted share).
    Unshared,
    /// Any other status: the service will never take this request; drop it.
    Reject,
    /// A bug inside the library (a caught panic): drop the content, report it, do not retry.
    Bug,
}

/// Classifies an attempt.
pub fn classify(attempt: &Attempt) -> Verdict {
    match attempt {
        Attempt::Network(_) | Attempt::BadAnswer(_) => Verdict::Retry { after: None },
        Attempt::Refused(_) => Verdict::Reject,
        Attempt::Panicked(_) => Verdict::Bug,
        Attempt::Answered {
            status,
            retry_after,
        } => match status {
            200..=299 => Verdict::Success,
            401 | 403 | 404 => Verdict::Unshared,
            408 | 429 | 500..=599 => Verdict::Retry {
                after: *retry_after,
            },
            _ => Verdict::Reject,
        },
    }
}

/// Whether an attempt counts toward a share being refused. opencode's hosted services answer a
/// wrong or stale secret and a deleted share with exactly 500, so only a 500 is evidence of
/// refusal. Network errors, unreadable answers, 408, 429 and the other 5xx (502, 503, 504: what
/// proxies and load balancers answer while the service is down) are evidence of an outage, and
/// an outage never gives up content.
pub fn refusal_evidence(attempt: &Attempt) -> bool {
    matches!(attempt, Attempt::Answered { status: 500, .. })
}

/// Backoff bounds and the retry budget, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub initial: Duration,
    pub max: Duration,
    /// Retries allowed after the first attempt of a create or delete call; for syncs, answers
    /// of 500 in a row before a share counts as refused (syncs themselves retry without limit).
    pub max_retries: u32,
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 for the first retry): a uniformly random time in
    /// `[0, min(max, initial·2^(retry-1))]`, raised to `retry_after` if the service asked for
    /// more, and capped at `max` in both cases. `random(n)` returns a value in `[0, n]`.
    pub fn delay(
        &self,
        retry: u32,
        retry_after: Option<Duration>,
        random: impl FnOnce(u64) -> u64,
    ) -> Duration {
        let cap = self.max.as_millis() as u64;
        let exp = (self.initial.as_millis() as u64)
            .saturating_mul(1u64 << retry.saturating_sub(1).min(62))
            .min(cap);
        let jittered = random(exp).min(exp);
        let asked = retry_after.map_or(0, |d| d.as_millis() as u64);
        Duration::from_millis(jittered.max(asked).min(cap))
    }

    /// [`RetryPolicy::delay`] with the process's random source.
    pub fn jittered_delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        self.delay(retry, retry_after, |n| fastrand::u64(0..=n))
    }
}

/// Parses a Retry-After value: delay-seconds or an HTTP-date (RFC 9110 §10.2.3). A date in the
/// past means no wait; anything unparsable is ignored.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: u16) -> Attempt {
        Attempt::Answered {
            status,
            retry_after: None,
        }
    }

    #[test]
    fn classification() {
        for s in [200, 201, 204, 299] {
            assert_eq!(classify(&answered(s)), Verdict::Success, "{s}");
        }
        for s in [408, 429, 500, 502, 503, 504, 599] {
            assert_eq!(
                classify(&answered(s)),
                Verdict::Retry { after: None },
                "{s}"
            );
        }
        for s in [401, 403, 404] {
            assert_eq!(classify(&answered(s)), Verdict::Unshared, "{s}");
        }
        for s in [100, 301, 302, 400, 405, 409, 413, 422] {
            assert_eq!(classify(&answered(s)), Verdict::Reject, "{s}");
        }
        assert_eq!(
            classify(&Attempt::Network("reset".into())),
            Verdict::Retry { after: None }
        );
        assert_eq!(
            classify(&Attempt::BadAnswer("huge".into())),
            Verdict::Retry { after: None }
        );
        assert_eq!(classify(&Attempt::Panicked("bug".into())), Verdict::Bug);
        let ra = Some(Duration::from_secs(3));
        assert_eq!(
            classify(&Attempt::Answered {
                status: 429,
                retry_after: ra
            }),
            Verdict::Retry { after: ra }
        );
    }

    #[test]
    fn only_a_500_is_evidence_of_refusal() {
        assert!(refusal_evidence(&answered(500)));
        for s in [200, 404, 408, 429, 502, 503, 504] {
            assert!(!refusal_evidence(&answered(s)), "{s}");
        }
        assert!(!refusal_evidence(&Attempt::Network("reset".into())));
        assert!(!refusal_evidence(&Attempt::BadAnswer("huge".into())));
    }

    const POLICY: RetryPolicy = RetryPolicy {
        initial: Duration::from_millis(250),
        max: Duration::from_millis(30_000),
        max_retries: 10,
    };

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let top = |retry| POLICY.delay(retry, None, |n| n).as_millis();
        assert_eq!([top(1), top(2), top(3), top(4)], [250, 500, 1000, 2000]);
        assert_eq!(top(8), 30_000);
        assert_eq!(top(1000), 30_000);
        assert_eq!(POLICY.delay(5, None, |_| 0), Duration::ZERO);
    }

    #[test]
    fn full_jitter_stays_within_bounds() {
        for retry in 1..20 {
            for _ in 0..200 {
                let d = POLICY.jittered_delay(retry, None);
                let bound = (250u64 << (retry - 1).min(20)).min(30_000);
                assert!(d.as_millis() as u64 <= bound, "retry {retry}: {d:?}");
            }
        }
    }

    #[test]
    fn retry_after_raises_the_wait_but_the_cap_holds() {
        let ra = |s| Some(Duration::from_secs(s));
        assert_eq!(POLICY.delay(1, ra(2), |_| 0), Duration::from_secs(2));
        assert_eq!(POLICY.delay(1, ra(3600), |_| 0), Duration::from_secs(30));
        assert_eq!(POLICY.delay(8, ra(1), |n| n), Duration::from_secs(30));
    }

    #[test]
    fn retry_after_formats() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(90))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }
}
