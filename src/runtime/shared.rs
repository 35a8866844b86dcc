//! What every thread of one runtime shares: the configuration, the HTTP client, and the state
//! behind one mutex (queue, share registry, worker accounting). `share_sync`'s work on the
//! caller's thread lives here: classify, validate, copy, push, and wake a worker only if needed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use super::spooler; // spool:
use crate::config::Config;
use crate::content;
use crate::error::{Error, Result, Status};
use crate::events::{Event, Reason, hub};
use crate::http::Http;
use crate::key::{self, Key};
use crate::locks::{lock, wait_until};
use crate::queue::{Limits, Offer, Queue};
use crate::registry::Registry;
use crate::retry::RetryPolicy;

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

/// Work for the worker threads.
pub enum Job {
    /// Send ready keys until none is left (one token per worker taking part).
    Sync,
    /// Run an asynchronous create or remove.
    Op(Box<dyn FnOnce() + Send>),
    /// Leave the thread.
    Stop,
}

/// Messages for the timer thread.
pub enum Tick {
    /// A retry was scheduled: look at the earliest retry time again.
    Wake,
    Stop,
}

/// Calls into the host, made by the notifier thread only.
pub enum Notice {
    /// Events are buffered: call the host's sink.
    Events,
    /// Deliver an asynchronous operation's completion.
    Call(Box<dyn FnOnce() + Send>),
    Stop,
}

/// The state behind the runtime's one mutex.
pub struct State {
    pub queue: Queue,
    pub registry: Registry,
    /// Workers holding a sync token (sending, or about to look for a ready key).
    pub sync_workers: usize,
    /// Set by shutdown: no more work is accepted.
    pub closed: bool,
    /// Threads waiting on `changed` (flush, remove, shutdown): settles notify only when > 0.
    pub waiters: usize,
    /// Asynchronous flushes: (mark, deadline, operation id), completed by settles and the timer.
    pub flushes: Vec<(u64, Instant, u32)>,
    /// Contents dropped for being over `max_content_bytes` (before or after redaction).
    pub too_large: u64,
    /// Contents dropped because the secret could not be removed from them.
    pub unsafe_contents: u64,
    /// Requests abandoned because the library panicked while sending (bugs).
    pub panics: u64,
    /// spool: records for the spool thread (pushed under this lock, written after it)
    pub spool: super::spooler::Buffer,
}

impl State {
    /// How many more workers to wake for the ready keys: workers already holding a token but
    /// not sending pick up ready keys themselves, and at most `concurrency` hold a token.
    pub fn claim_workers(&mut self, concurrency: usize) -> usize {
        let idle = self.sync_workers.saturating_sub(self.queue.in_flight());
        let wanted = self.queue.ready_len().saturating_sub(idle);
        let room = concurrency.saturating_sub(self.sync_workers);
        let n = wanted.min(room);
        self.sync_workers += n;
        n
    }
}

/// One runtime's shared part. See the module documentation.
pub struct Shared {
    pub generation: u64,
    pub config: Config,
    pub policy: RetryPolicy,
    pub http: Http,
    pub state: Mutex<State>,
    /// Notified when work settles, while someone waits.
    pub changed: Condvar,
    pub jobs: Sender<Job>,
    pub timer: Sender<Tick>,
    pub notices: Sender<Notice>,
    /// spool: the spool thread's wake-ups and progress
    pub spool: super::spooler::Handle,
    /// Writes not ours: foreign keys, sessions without a share, share records without a secret.
    pub ignored: AtomicU64,
    /// Writes refused with SHARE_ERR_QUEUE_FULL.
    pub rejected: AtomicU64,
}

impl Shared {
    pub fn new(
        generation: u64,
        config: Config,
        http: Http,
        jobs: Sender<Job>,
        timer: Sender<Tick>,
        notices: Sender<Notice>,
    ) -> Shared {
        let limits = Limits {
            concurrency: config.concurrency,
            max_retries: config.max_retries,
            max_pending_bytes: config.max_pending_bytes,
            min_interval: config.min_interval,
            probe_interval: config.retry_max,
        };
        let policy = RetryPolicy {
            initial: config.retry_initial,
            max: config.retry_max,
            max_retries: config.max_retries,
        };
        Shared {
            generation,
            policy,
            http,
            state: Mutex::new(State {
                queue: Queue::new(limits),
                registry: Registry::default(),
                sync_workers: 0,
                closed: false,
                waiters: 0,
                flushes: Vec::new(),
                too_large: 0,
                unsafe_contents: 0,
                panics: 0,
                spool: Default::default(), // spool:
            }),
            changed: Condvar::new(),
            jobs,
            timer,
            notices,
            spool: super::spooler::Handle::new(&config), // spool:
            ignored: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            config,
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Wakes threads waiting for work to settle, if any, and completes the asynchronous
    /// flushes that are done or out of time.
    pub fn settled(&self, state: &mut State) {
        if state.waiters > 0 {
            self.changed.notify_all();
        }
        if !state.flushes.is_empty() {
            self.check_flushes(state, Instant::now());
        }
    }

    /// Completes the asynchronous flushes whose writes have all settled (SHARE_OK) or whose
    /// deadline has passed (SHARE_ERR_TIMEOUT).
    pub fn check_flushes(&self, state: &mut State, now: Instant) {
        let queue = &state.queue;
        let mut settled = Vec::new();
        state.flushes.retain(|&(mark, deadline, id)| {
            let result = if !queue.holds_up_to(mark) {
                settled.push((mark, id));
                return false;
            } else if now >= deadline {
                Err(Error::new(
                    Status::SHARE_ERR_TIMEOUT,
                    format!(
                        "flush: the deadline passed with {} keys still pending and {} requests in flight",
                        queue.pending_keys(),
                        queue.in_flight()
                    ),
                ))
            } else {
                return true;
            };
            super::ops::finish(self, id, result);
            false
        });
        for (mark, id) in settled {
            let result = delivered(&mut state.queue, mark).map(|()| "{}".to_owned());
            super::ops::finish(self, id, result);
        }
    }

    /// `share_flush_async`: registers a flush that settles and the timer complete.
    pub fn flush_async(
        &self,
        timeout: Duration,
        completion: super::ops::Completion,
    ) -> Result<u32> {
        let id = super::ops::register(self, completion)?;
        spooler::request_sync(self); // spool: write and sync soon (not waited for)
        let mut state = self.lock();
        if state.closed {
            drop(state);
            super::ops::finish(self, id, Err(Error::not_initialized()));
            return Ok(id);
        }
        let mark = state.queue.last_seq();
        state.flushes.push((mark, Instant::now() + timeout, id));
        self.check_flushes(&mut state, Instant::now());
        drop(state);
        let _ = self.timer.send(Tick::Wake); // its deadline may be the earliest
        Ok(id)
    }

    /// The earliest deadline of an asynchronous flush, for the timer.
    pub fn next_flush_deadline(state: &State) -> Option<Instant> {
        state.flushes.iter().map(|&(_, deadline, _)| deadline).min()
    }

    /// Hands `tokens` sync tokens to the workers.
    pub fn wake_workers(&self, tokens: usize) {
        for _ in 0..tokens {
            let _ = self.jobs.send(Job::Sync);
        }
    }

    /// `share_sync` after the NULL, UTF-8 and initialisation checks. True when the content was
    /// queued (an event naming its key or session will follow), false when it was ignored.
    pub fn sync(&self, key: &str, text: &str) -> Result<bool> {
        match key::classify(key)? {
            Key::Foreign => self.ignore(),
            Key::Share { session } => match content::share_secret(key, text)? {
                Some(secret) => {
                    let spooled = spooler::share(self, session, &secret); // spool:
                    let mut state = self.lock();
                    if state.closed {
                        return Err(Error::not_initialized());
                    }
                    state.registry.insert(session, secret);
                    spooler::push(&mut state, spooled); // spool:
                    if state.queue.probe_now(session, Instant::now()) {
                        drop(state);
                        let _ = self.timer.send(Tick::Wake);
                    }
                    Ok(false)
                }
                None => self.ignore(),
            },
            Key::Synced { session } => {
                if !self.lock().registry.contains(session) {
                    return self.ignore(); // not shared: the content is not even parsed
                }
                content::validate(key, text)?;
                if text.len() > self.config.max_content_bytes {
                    return self.too_large(key, session, text.len());
                }
                let text: Arc<str> = Arc::from(text);
                let spooled = spooler::content(self, key, session, &text); // spool:
                let (tokens, offer) = {
                    let mut state = self.lock();
                    if state.closed {
                        return Err(Error::not_initialized());
                    }
                    if !state.registry.contains(session) {
                        drop(state);
                        return self.ignore(); // removed meanwhile
                    }
                    let offer = match state.queue.offer(key, session, text, Instant::now) {
                        Ok(offer) => offer,
                        Err(full) => {
                            drop(state);
                            return Err(self.queue_full(key, full.pending_bytes, full.limit));
                        }
                    };
                    spooler::accepted(&mut state, spooled); // spool:
                    (state.claim_workers(self.config.concurrency), offer)
                };
                self.wake_workers(tokens);
                if offer == Offer::Parked {
                    let _ = self.timer.send(Tick::Wake); // the key's time may be the earliest
                }
                Ok(true)
            }
        }
    }

    /// True while `key` has content pending, parked or in flight.
    pub fn key_pending(&self, key: &str) -> Result<bool> {
        let state = self.lock();
        if state.closed {
            return Err(Error::not_initialized());
        }
        Ok(state.queue.holds_key(key))
    }

    fn ignore(&self) -> Result<bool> {
        self.ignored.fetch_add(1, Ordering::Relaxed);
        Ok(false)
    }

    /// A content over `max_content_bytes`: never uploaded; counted, and named by an event.
    fn too_large(&self, key: &str, session: &str, len: usize) -> Result<bool> {
        let mut state = self.lock();
        if state.closed {
            return Err(Error::not_initialized());
        }
        state.queue.give_up_unsent();
        state.too_large += 1;
        drop(state); // the event wakes the notifier: not under the lock
        hub().emit([Event::Dropped {
            reason: Reason::TooLarge,
            key: Some(key.into()),
            session: Some(session.into()),
            count: 1,
            bytes: Some(len as u64),
            error: None,
        }]);
        Ok(true)
    }

    fn queue_full(&self, key: &str, pending: usize, limit: usize) -> Error {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        hub().emit([Event::Dropped {
            reason: Reason::QueueFull,
            key: Some(key.into()),
            session: None,
            count: 1,
            bytes: None,
            error: None,
        }]);
        Error::new(
            Status::SHARE_ERR_QUEUE_FULL,
            format!(
                "{key:?} not queued: {pending} bytes are pending and max_pending_bytes is {limit}"
            ),
        )
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
        if !spooler::wait_durable(self, deadline) {
            return Err(spooler::not_durable("flush"));
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
                "flush: {} ms passed with {} keys still pending and {} requests in flight",
                timeout.as_millis(),
                state.queue.pending_keys(),
                state.queue.in_flight()
            ),
        ))
    }

    /// The stats as JSON.
    pub fn stats_json(&self, running: bool) -> String {
        let state = self.lock();
        let c = state.queue.counts();
        serde_json::json!({
            "running": running,
            "url": self.config.shown_url,
            "queued": c.queued,
            "sent": c.sent,
            "coalesced": c.coalesced,
            "retried": c.retried,
            "failed": c.failed,
            "dropped": c.dropped,
            "rejected": self.rejected.load(Ordering::Relaxed),
            "ignored": self.ignored.load(Ordering::Relaxed),
            "refused_shares": state.queue.refused_shares(),
            "refused_contents": state.queue.held(),
            "too_large": state.too_large,
            "unsafe": state.unsafe_contents,
            "panics": state.panics,
            "pending_keys": state.queue.pending_keys(),
            "pending_bytes": state.queue.pending_bytes(),
            "in_flight": state.queue.in_flight(),
            "shares": state.registry.len(),
            "events_lost": hub().lost(),
            "spool": spooler::stats(self), // spool:
        })
        .to_string()
    }
}
