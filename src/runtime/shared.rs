//! What every thread of one runtime shares: the configuration, the protocol, the HTTP client,
//! and the state behind one mutex (see runtime/state.rs for its lock order). `share_sync`'s work
//! on the caller's thread lives here: classify, validate, copy, push, and wake a worker only if
//! needed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crossbeam_channel::Sender;

use super::completions;
use super::messages::{Job, Notice, Tick};
use super::spooler; // spool:
use super::state::{Effects, State};
use crate::config::Config;
use crate::content;
use crate::error::{Error, Result, Status};
use crate::events::{Event, Reason, hub};
use crate::http::Http;
use crate::key::{self, Key};
use crate::locks::lock;
use crate::protocol::{Protocol, next};
use crate::queue::{Batch, Limits, Offer, Queue};
use crate::retry::RetryPolicy;

/// Most content bytes in one "next" request (a bigger single content goes alone).
const MAX_BATCH_BYTES: usize = 4 << 20;

/// One runtime's shared part. See the module documentation.
pub struct Shared {
    pub generation: u64,
    pub config: Config,
    pub protocol: Protocol,
    pub policy: RetryPolicy,
    pub http: Http,
    pub state: Mutex<State>,
    /// Notified when work settles, while someone waits.
    pub changed: Condvar,
    pub jobs: Sender<Job>,
    pub timer: Sender<Tick>,
    pub notices: Sender<Notice>,
    /// spool: the spool thread's wake-ups and progress
    pub spool: spooler::Handle,
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
        let protocol = Protocol::of(&config);
        let limits = Limits {
            concurrency: config.concurrency,
            max_retries: config.max_retries,
            max_pending_bytes: config.max_pending_bytes,
            min_interval: config.min_interval,
            probe_interval: config.retry_max,
            batch: protocol.batches().then_some(Batch {
                max_bytes: MAX_BATCH_BYTES,
                order: next::rank,
            }),
        };
        let policy = RetryPolicy {
            initial: config.retry_initial,
            max: config.retry_max,
            max_retries: config.max_retries,
        };
        Shared {
            generation,
            policy,
            protocol,
            http,
            state: Mutex::new(State::new(Queue::new(limits))),
            changed: Condvar::new(),
            jobs,
            timer,
            notices,
            spool: spooler::Handle::new(&config), // spool:
            ignored: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            config,
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Does what a locked section decided; call with no lock held.
    pub fn apply(&self, fx: Effects) {
        if fx.notify_waiters {
            self.changed.notify_all();
        }
        if fx.wake_events {
            hub().wake();
        }
        for (id, result) in fx.completions {
            completions::finish(&self.notices, id, result);
        }
        self.wake_workers(fx.tokens);
        if fx.wake_timer {
            let _ = self.timer.send(Tick::Wake);
        }
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
            Key::Share { session } => match content::share_record(key, text)? {
                Some(share) => {
                    let spooled = spooler::share(self, session, &share); // spool:
                    let mut state = self.lock();
                    if state.closed {
                        return Err(Error::not_initialized());
                    }
                    state.registry.insert(session, share);
                    spooler::push(&mut state, spooled); // spool:
                    let probe = state.queue.probe_now(session, std::time::Instant::now());
                    drop(state);
                    if probe {
                        let _ = self.timer.send(Tick::Wake);
                    }
                    Ok(false)
                }
                None => self.ignore(),
            },
            Key::Synced { .. } if !self.protocol.carries(key) => self.ignore(),
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
                let mut fx = Effects::default();
                {
                    let mut state = self.lock();
                    if state.closed {
                        return Err(Error::not_initialized());
                    }
                    if !state.registry.contains(session) {
                        drop(state);
                        return self.ignore(); // removed meanwhile
                    }
                    let offer = match state
                        .queue
                        .offer(key, session, text, std::time::Instant::now)
                    {
                        Ok(offer) => offer,
                        Err(full) => {
                            drop(state);
                            return Err(self.queue_full(key, full.pending_bytes, full.limit));
                        }
                    };
                    spooler::accepted(&mut state, spooled); // spool:
                    fx.tokens = state.claim_workers(self.config.concurrency);
                    fx.wake_timer = offer == Offer::Parked; // the key's time may be the earliest
                }
                self.apply(fx);
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
        drop(state);
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

    /// The stats as JSON.
    pub fn stats_json(&self, running: bool) -> String {
        let state = self.lock();
        let c = state.queue.counts();
        serde_json::json!({
            "running": running,
            "url": self.config.shown_url,
            "protocol": self.protocol.name(),
            "requests": state.requests,
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
            "redacted": state.redacted,
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
