//! Flushes: a mark is the number of the newest write accepted when the flush began; the flush
//! is done when no write at or below it is pending or in flight (refused shares' aside), and
//! then answers what became of them. Asynchronous flushes are completed by settles and the
//! timer.

use std::time::Instant;

use super::{Effects, Engine};
use crate::error::{Error, ErrorKind, Result};
use crate::events::Event;
use crate::queue::ServiceChange;

impl Engine {
    /// The number of the newest write accepted so far.
    pub fn flush_mark(&self) -> u64 {
        self.queue.last_seq()
    }

    /// True while a write numbered `mark` or lower is pending or in flight.
    pub fn holds_up_to(&self, mark: u64) -> bool {
        self.queue.holds_up_to(mark)
    }

    /// After work settled: waiters are to look again, and asynchronous flushes that are done
    /// or out of time are completed.
    pub fn settled(&mut self, now: Instant, fx: &mut Effects) {
        for change in self.queue.take_service_changes() {
            fx.emit([match change {
                ServiceChange::Outage { failures } => Event::Outage { failures },
                ServiceChange::Recovered {
                    duration,
                    held_back,
                } => Event::Recovered {
                    duration_ms: duration.as_millis() as u64,
                    held_back,
                },
            }]);
        }
        fx.notify_waiters |= self.waiters > 0;
        self.check_flushes(now, fx);
    }

    /// `share_flush_async`: operation `id` completes once everything accepted so far settled,
    /// or at `deadline`.
    pub fn add_flush(&mut self, id: u32, deadline: Instant, now: Instant, fx: &mut Effects) {
        if self.closed {
            fx.completions.push((id, Err(Error::not_initialized())));
            return;
        }
        let mark = self.queue.last_seq();
        self.flushes.push((mark, deadline, id));
        self.check_flushes(now, fx);
        fx.wake_timer = true; // its deadline may be the earliest
    }

    /// Completes the asynchronous flushes whose writes have all settled (SHARE_OK, or what
    /// [`Engine::delivered`] says) or whose deadline has passed (SHARE_ERR_TIMEOUT).
    pub fn check_flushes(&mut self, now: Instant, fx: &mut Effects) {
        if self.flushes.is_empty() {
            return;
        }
        let queue = &self.queue;
        let mut settled = Vec::new();
        self.flushes.retain(|&(mark, deadline, id)| {
            if !queue.holds_up_to(mark) {
                settled.push((mark, id));
                return false;
            }
            if now < deadline {
                return true;
            }
            fx.completions.push((
                id,
                Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "flush: the deadline passed with {} keys still pending and {} contents in flight",
                        queue.pending_keys(),
                        queue.in_flight()
                    ),
                )),
            ));
            false
        });
        for (mark, id) in settled {
            let result = self.delivered(mark).map(|()| "{}".to_owned());
            fx.completions.push((id, result));
        }
    }

    /// The earliest deadline of an asynchronous flush, for the timer.
    pub fn next_flush_deadline(&self) -> Option<Instant> {
        self.flushes.iter().map(|&(_, deadline, _)| deadline).min()
    }

    /// What a flush whose writes up to `mark` have all settled answers: SHARE_OK if every one
    /// was delivered; otherwise SHARE_ERR_HTTP_STATUS, saying how many were given up (each is
    /// reported by one flush only) and how many wait for refused shares.
    pub fn delivered(&mut self, mark: u64) -> Result<()> {
        let given_up = self.queue.take_given_up(mark);
        let (held, shares) = self.queue.held_up_to(mark);
        if given_up == 0 && held == 0 {
            return Ok(());
        }
        let mut message = String::from("flush: not everything accepted before it was delivered:");
        if given_up > 0 {
            message.push_str(&format!(
                " {given_up} contents were given up (see the dropped events and stats)"
            ));
        }
        if held > 0 {
            if given_up > 0 {
                message.push_str(" and");
            }
            message.push_str(&format!(
                " {held} contents wait for {shares} shares the service refuses (see the refused events)"
            ));
        }
        Err(Error::new(ErrorKind::HttpStatus, message))
    }
}
