//! One running runtime: its configuration, protocol and HTTP client, the engine behind its one
//! mutex, and the channels to its threads. [`Instance::decide`] is the only way the threads
//! change the engine: decide under the lock, act after it.
//!
//! Lock order (outer first; a thread takes locks only in this order):
//! 1. `lifecycle` (runtime/global.rs: init and shutdown),
//! 2. `current` (read to find the running runtime; written by init and shutdown only),
//! 3. the engine's mutex ([`Instance::decide`], [`Instance::lock`]),
//! 4. the event hub's buffer (a leaf: events are recorded under the engine's lock so that a
//!    flush that returns finds them buffered; the notifier is woken after it).
//!
//! Leaves, never held together with the engine's lock: `last` (the stopped runtime's stats),
//! the completion slots' lock (runtime/completions.rs, nor with the hub's), `lingering`
//! (stopping spool threads) and the spool writer's progress lock (runtime/spool_writer.rs).

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crossbeam_channel::Sender;

use super::completions::Slots;
use super::messages::{Job, Notice, Tick};
use super::spool_writer;
use crate::config::Config;
use crate::engine::{Effects, Engine};
use crate::events::hub;
use crate::http::Http;
use crate::locks::lock;
use crate::protocol::{Protocol, next};
use crate::queue::{Batch, Limits};
use crate::retry::RetryPolicy;

/// Most content bytes in one "next" request (a bigger single content goes alone).
const MAX_BATCH_BYTES: usize = 4 << 20;

/// One runtime. See the module documentation.
pub struct Instance {
    pub generation: u64,
    pub config: Config,
    pub protocol: Protocol,
    pub policy: RetryPolicy,
    pub http: Http,
    engine: Mutex<Engine>,
    /// Notified when work settles, while someone waits.
    pub changed: Condvar,
    pub jobs: Sender<Job>,
    pub timer: Sender<Tick>,
    pub notices: Sender<Notice>,
    /// The process's asynchronous operations (in the global state).
    pub ops: &'static Slots,
    /// The spool writer's wake-ups and progress.
    pub spool: Arc<spool_writer::Handle>,
    /// Writes not ours: foreign keys, sessions without a share, share records without a secret.
    pub ignored: AtomicU64,
    /// Writes refused with SHARE_ERR_QUEUE_FULL.
    pub rejected: AtomicU64,
}

/// The channels to a runtime's threads.
pub struct Channels {
    pub jobs: Sender<Job>,
    pub timer: Sender<Tick>,
    pub notices: Sender<Notice>,
}

impl Instance {
    pub fn new(
        generation: u64,
        config: Config,
        http: Http,
        channels: Channels,
        ops: &'static Slots,
    ) -> Instance {
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
        Instance {
            generation,
            policy,
            protocol,
            http,
            engine: Mutex::new(
                Engine::new(limits, policy).serving(&config.url, config.protocol.as_str()),
            ),
            changed: Condvar::new(),
            jobs: channels.jobs,
            timer: channels.timer,
            notices: channels.notices,
            ops,
            spool: Arc::new(spool_writer::Handle::new(&config)),
            ignored: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            config,
        }
    }

    /// The engine, for reads and for waits on [`Instance::changed`]; changes go through
    /// [`Instance::decide`].
    pub fn lock(&self) -> MutexGuard<'_, Engine> {
        lock(&self.engine)
    }

    /// Runs `decision` on the engine under its lock, records the events it raised before the
    /// lock is released, and then does the rest of what it decided.
    pub fn decide<R>(&self, decision: impl FnOnce(&mut Engine, &mut Effects) -> R) -> R {
        let (result, fx, wake_events) = {
            let mut engine = self.lock();
            let mut fx = Effects {
                events: engine.take_event_buffer(),
                ..Effects::default()
            };
            let result = decision(&mut engine, &mut fx);
            let wake_events = !fx.events.is_empty() && hub().record(fx.events.drain(..));
            engine.return_event_buffer(std::mem::take(&mut fx.events));
            (result, fx, wake_events)
        };
        self.apply(fx, wake_events);
        result
    }

    /// Does what a locked section decided; called with no lock held.
    fn apply(&self, fx: Effects, wake_events: bool) {
        if fx.notify_waiters {
            self.changed.notify_all();
        }
        if wake_events {
            hub().wake();
        }
        for (id, result) in fx.completions {
            self.ops.finish(&self.notices, id, result);
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
}
