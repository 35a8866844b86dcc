//! Flushes on the caller's side: waiting until every content accepted before a mark has been
//! delivered or given up (the spool synced first), or registering an asynchronous flush that
//! the engine completes (runtime/../engine/flushes.rs decides what a flush answers).

use std::time::{Duration, Instant};

use super::completions::Completion;
use super::instance::Instance;
use super::spool_writer;
use crate::error::{Error, ErrorKind, Result};
use crate::locks::wait_until;

impl Instance {
    /// `share_flush_async`: registers a flush that settles and the timer complete.
    pub fn flush_async(&self, timeout: Duration, completion: Completion) -> Result<u32> {
        let id = self.ops.register(self.generation, completion)?;
        spool_writer::request_sync(&self.spool); // write and sync soon (not waited for)
        let now = Instant::now();
        self.decide(|engine, fx| engine.add_flush(id, now + timeout, now, fx));
        Ok(id)
    }

    /// Waits until every content accepted before the call has been sent or dropped, or the
    /// deadline. A zero timeout only reports.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        let mark = self.flush_mark();
        self.flush_until(mark, timeout)
    }

    /// The position of the newest content accepted so far, for [`Instance::flush_until`].
    pub fn flush_mark(&self) -> u64 {
        self.lock().flush_mark()
    }

    /// [`Instance::flush`] for the contents accepted up to `mark`: lets a caller that cannot
    /// block take its mark once, then poll with a zero timeout without later writes moving the
    /// goal.
    pub fn flush_until(&self, mark: u64, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        // what was accepted is on disk before a flush answers
        if !self.wait_durable(deadline) {
            return Err(spool_writer::not_durable("flush"));
        }
        let mut engine = self.lock();
        engine.waiters += 1;
        let (mut engine, done) =
            wait_until(&self.changed, engine, deadline, |e| !e.holds_up_to(mark));
        engine.waiters -= 1;
        if done {
            return engine.delivered(mark);
        }
        Err(Error::new(
            ErrorKind::Timeout,
            format!(
                "flush: {} ms passed with {} keys still pending and {} contents in flight",
                timeout.as_millis(),
                engine.queue().pending_keys(),
                engine.queue().in_flight()
            ),
        ))
    }

    /// Waits until everything journaled so far is written and synced, or `deadline`; true if
    /// it is (or there is no spool).
    pub fn wait_durable(&self, deadline: Instant) -> bool {
        if !self.spool.is_on() {
            return true;
        }
        let target = self.lock().journal().pushed();
        spool_writer::wait_synced(&self.spool, target, deadline)
    }
}
