//! Flushes: waiting (or, asynchronously, being told) until every content accepted before a mark
//! has been delivered or given up, and what a flush answers then.

use std::time::{Duration, Instant};

use super::completions::Completion;
use super::shared::Shared;
use super::state::{Effects, State};
use crate::error::{Error, Result, Status};
use crate::locks::wait_until;
use crate::queue::Queue;

/// What a flush whose writes up to `mark` have all settled answers: SHARE_OK if every one was
/// delivered; otherwise SHARE_ERR_HTTP_STATUS, saying how many were given up (each is reported
/// by one flush only) and how many wait for refused shares.
pub fn delivered(queue: &mut Queue, mark: u64) -> Result<()> {
    let given_up = queue.take_given_up(mark);
    let (held, shares) = queue.held_up_to(mark);
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
    Err(Error::new(Status::SHARE_ERR_HTTP_STATUS, message))
}

impl Shared {
    /// After work settled, under the lock: waiters are to look again, and asynchronous flushes
    /// that are done or out of time are to be completed.
    pub fn settled(&self, state: &mut State, fx: &mut Effects) {
        fx.notify_waiters |= state.waiters > 0;
        if !state.flushes.is_empty() {
            check_flushes(state, Instant::now(), fx);
        }
    }

    /// `share_flush_async`: registers a flush that settles and the timer complete.
    pub fn flush_async(&self, timeout: Duration, completion: Completion) -> Result<u32> {
        let id = self.ops.register(self.generation, completion)?;
        super::spooler::request_sync(self); // spool: write and sync soon (not waited for)
        let mut fx = Effects::default();
        {
            let mut state = self.lock();
            if state.closed {
                fx.completions.push((id, Err(Error::not_initialized())));
            } else {
                let mark = state.queue.last_seq();
                state.flushes.push((mark, Instant::now() + timeout, id));
                check_flushes(&mut state, Instant::now(), &mut fx);
                fx.wake_timer = true; // its deadline may be the earliest
            }
        }
        self.apply(fx);
        Ok(id)
    }

    /// Waits until every content accepted before the call has been sent or dropped, or the
    /// deadline. A zero timeout only reports.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        let mark = self.lock().queue.last_seq();
        self.flush_until(mark, timeout)
    }

    /// The position of the newest content accepted so far, for [`Shared::flush_until`].
    pub fn flush_mark(&self) -> u64 {
        self.lock().queue.last_seq()
    }

    /// [`Shared::flush`] for the contents accepted up to `mark`: lets a caller that cannot block
    /// take its mark once, then poll with a zero timeout without later writes moving the goal.
    pub fn flush_until(&self, mark: u64, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        // spool: what was accepted is on disk before a flush answers
        if !super::spooler::wait_durable(self, deadline) {
            return Err(super::spooler::not_durable("flush"));
        }
        let mut state = self.lock();
        state.waiters += 1;
        let (mut state, done) = wait_until(&self.changed, state, deadline, |s| {
            !s.queue.holds_up_to(mark)
        });
        state.waiters -= 1;
        if done {
            return delivered(&mut state.queue, mark);
        }
        Err(Error::new(
            Status::SHARE_ERR_TIMEOUT,
            format!(
                "flush: {} ms passed with {} keys still pending and {} contents in flight",
                timeout.as_millis(),
                state.queue.pending_keys(),
                state.queue.in_flight()
            ),
        ))
    }
}

/// Decides the asynchronous flushes whose writes have all settled (SHARE_OK, or what
/// [`delivered`] says) or whose deadline has passed (SHARE_ERR_TIMEOUT).
pub fn check_flushes(state: &mut State, now: Instant, fx: &mut Effects) {
    let queue = &state.queue;
    let mut settled = Vec::new();
    state.flushes.retain(|&(mark, deadline, id)| {
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
                Status::SHARE_ERR_TIMEOUT,
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
        let result = delivered(&mut state.queue, mark).map(|()| "{}".to_owned());
        fx.completions.push((id, result));
    }
}

/// The earliest deadline of an asynchronous flush, for the timer.
pub fn next_deadline(state: &State) -> Option<Instant> {
    state.flushes.iter().map(|&(_, deadline, _)| deadline).min()
}
