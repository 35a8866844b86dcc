//! The spool writer (SPEC "Durability"): the thread that takes the engine's journal under the
//! runtime's lock (a swap), appends it to the spool's log outside it, fsyncs and compacts; the
//! waits that depend on its progress (a send for its records to be in the log, flush, remove
//! and shutdown for a sync); opening the spool at `share_init`; and its figures for stats.
//! The storage itself is src/spool/.
//!
//! Order: a content may be sent only once its record is in the log ([`before_send`]), so a log
//! never holds an unacknowledged content older than one the service has (a restart resending it
//! would put an older content after a newer). Contents left at shutdown are not written off:
//! the next `share_init` on the folder resends them.
//!
//! Lock order: [`Handle`]'s `progress` mutex is a leaf: it is never held while the engine's
//! lock is taken, and nothing is called under it. The thread takes the engine's lock only to
//! swap the journal out (through the closure it is given), and does its I/O after releasing it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, unbounded};
use foldhash::HashMap;

use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::events::{Event, hub};
use crate::locks::lock;
use crate::spool::{self, Record, Recovery, Spool};

/// What wakes the spool thread before its tick.
enum Wake {
    /// A sender waits for its content to be in the log.
    Write,
    /// A flush or remove waits for everything pushed so far to be synced.
    Sync,
    /// Shutdown: write and sync what is left, then leave.
    Stop,
}

/// A runtime's spool writer: the way to the thread, and its progress for waiters and
/// stats (atomics, read without a lock).
pub struct Handle {
    on: bool,
    wakes: Sender<Wake>,
    /// Taken by the thread when it starts.
    receiver: Mutex<Option<Receiver<Wake>>>,
    thread: Mutex<Option<(JoinHandle<()>, Receiver<()>)>>,
    /// Records pushed that are in the log.
    written: AtomicU64,
    /// Records pushed that are in the log and synced.
    synced: AtomicU64,
    /// Every content up to this queue sequence number is in the log.
    written_seq: AtomicU64,
    /// The thread has left: nobody waits for it any more.
    stopped: AtomicBool,
    /// A leaf lock for [`Handle::changed`] only.
    progress: Mutex<()>,
    changed: Condvar,
    figures: Figures,
}

/// Counters for stats.
#[derive(Default)]
struct Figures {
    log_bytes: AtomicU64,
    live_bytes: AtomicU64,
    compactions: AtomicU64,
    records: AtomicU64,
    syncs: AtomicU64,
    errors: AtomicU64,
    skipped_bytes: AtomicU64,
    recovered_shares: AtomicU64,
    recovered_contents: AtomicU64,
    /// Recovered contents that did not fit in `max_pending_bytes`: kept in the spool.
    deferred: AtomicU64,
    /// Sends that went out after waiting `timeout_ms` for their record to reach the log.
    unspooled_sends: AtomicU64,
}

impl Handle {
    /// Whether this runtime has a spool (`spool_dir`).
    pub fn is_on(&self) -> bool {
        self.on
    }

    pub fn new(config: &Config) -> Handle {
        let (wakes, receiver) = unbounded();
        Handle {
            on: config.spool_dir.is_some(),
            wakes,
            receiver: Mutex::new(Some(receiver)),
            thread: Mutex::new(None),
            written: AtomicU64::new(0),
            synced: AtomicU64::new(0),
            written_seq: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            progress: Mutex::new(()),
            changed: Condvar::new(),
            figures: Figures::default(),
        }
    }

    fn notify(&self) {
        let _guard = lock(&self.progress);
        self.changed.notify_all();
    }

    /// Waits until `done()` or `deadline` or the thread has left; true if `done()`.
    fn wait(&self, deadline: Instant, done: impl Fn(&Handle) -> bool) -> bool {
        let mut guard = lock(&self.progress);
        loop {
            if done(self) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline || self.stopped.load(Ordering::Acquire) {
                return false;
            }
            guard = self
                .changed
                .wait_timeout(guard, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// Opens the configured spool (at `share_init`, before any thread runs): None without
/// `spool_dir`; a folder in use or of a bad mode is SHARE_ERR_INVALID_ARGUMENT.
pub fn open(config: &Config, lingering: &Lingering) -> Result<Option<(Spool, Recovery)>> {
    let Some(dir) = &config.spool_dir else {
        return Ok(None);
    };
    // a shutdown whose deadline came first may have left its spool thread finishing its last
    // write: this process's next init on the folder waits for it (up to timeout_ms)
    let stopping = {
        let mut lingering = lock(lingering);
        let found = lingering.iter().position(|(d, _)| d == dir);
        found.map(|i| lingering.swap_remove(i).1)
    };
    if let Some(done) = stopping {
        let _ = done.recv_timeout(config.timeout);
    }
    Spool::open(dir)
        .map(Some)
        .map_err(|e| Error::invalid(format!("share_init: spool_dir: {e}")))
}

/// Shutdown (and a failed init): the thread writes and syncs what is left, then leaves and
/// releases the spool; joined if it leaves by `deadline`.
pub fn stop(h: &Handle, config: &Config, deadline: Instant, lingering: &Lingering) {
    let Some((thread, done)) = lock(&h.thread).take() else {
        return;
    };
    let _ = h.wakes.send(Wake::Stop);
    if done.recv_deadline(deadline).is_ok() {
        let _ = thread.join();
    } else if let Some(dir) = &config.spool_dir {
        // still writing: the next init on this folder waits for it instead of finding it held
        lock(lingering).push((dir.clone(), done));
    }
}

/// Spool threads of stopped runtimes that had not finished by their shutdown's deadline, by
/// folder, each with the channel it signals when it has released the spool. A leaf lock.
pub type Lingering = Mutex<Vec<(PathBuf, Receiver<()>)>>;

/// On a worker, between taking a dispatch and sending it: waits until the records of its
/// writes up to `seq` are in the log (at once in the common case; otherwise the thread is woken
/// to write now). After `timeout` it sends anyway (the spool failing must not stop the
/// uploads), counted. True if it waited (the caller then checks that the runtime still runs).
pub fn before_send(h: &Handle, seq: u64, timeout: Duration) -> bool {
    if !h.on || h.written_seq.load(Ordering::Acquire) >= seq {
        return false;
    }
    let _ = h.wakes.send(Wake::Write);
    let deadline = Instant::now() + timeout;
    let in_log = |h: &Handle| h.written_seq.load(Ordering::Acquire) >= seq;
    if !h.wait(deadline, in_log) && !in_log(h) {
        h.figures.unspooled_sends.fetch_add(1, Ordering::Relaxed);
    }
    true
}

/// Waits until the first `target` records journaled are written and synced, or `deadline`;
/// true if they are. A deadline already passed only asks the thread to sync.
pub fn wait_synced(h: &Handle, target: u64, deadline: Instant) -> bool {
    let synced = |h: &Handle| h.synced.load(Ordering::Acquire) >= target;
    if synced(h) {
        return true;
    }
    let _ = h.wakes.send(Wake::Sync);
    h.wait(deadline, synced)
}

/// Asks the thread to write and sync now, without waiting (asynchronous flushes).
pub fn request_sync(h: &Handle) {
    if h.on {
        let _ = h.wakes.send(Wake::Sync);
    }
}

/// The error of a flush or remove whose records were not synced by its deadline.
pub fn not_durable(what: &str) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!(
            "{what}: the spool was not written and synced by the deadline (see the spool events \
             and stats)"
        ),
    )
}

/// The `spool` member of stats: null without a spool.
pub fn stats(h: &Handle) -> serde_json::Value {
    if !h.on {
        return serde_json::Value::Null;
    }
    let f = &h.figures;
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    serde_json::json!({
        "log_bytes": get(&f.log_bytes),
        "live_bytes": get(&f.live_bytes),
        "compactions": get(&f.compactions),
        "records": get(&f.records),
        "syncs": get(&f.syncs),
        "errors": get(&f.errors),
        "skipped_bytes": get(&f.skipped_bytes),
        "recovered_shares": get(&f.recovered_shares),
        "recovered_contents": get(&f.recovered_contents),
        "deferred": get(&f.deferred),
        "unspooled_sends": get(&f.unspooled_sends),
    })
}

fn publish(h: &Handle, spool: &Spool) {
    let s = spool.stats();
    h.figures.log_bytes.store(s.log_bytes, Ordering::Relaxed);
    h.figures.live_bytes.store(s.live_bytes, Ordering::Relaxed);
    h.figures
        .compactions
        .store(s.compactions, Ordering::Relaxed);
}

/// The timing of the spool thread, from the configuration.
pub struct Timing {
    /// Half of it is the thread's tick (a content is in the log within the interval even when
    /// the thread is a little late).
    pub interval: Duration,
    pub fsync: Duration,
}

/// Takes the engine's journal: swaps the records and their index with the given empty ones
/// under the engine's lock, and answers (records journaled ever, newest queue write number).
pub type Swap =
    Box<dyn FnMut(&mut Vec<Record>, &mut HashMap<Arc<str>, usize>) -> (u64, u64) + Send>;

/// At `share_init`, before the engine takes what the spool held: the recovery's figures.
pub fn recovered(h: &Handle, spool: &Spool, recovery: &Recovery) {
    let f = &h.figures;
    f.skipped_bytes
        .store(recovery.skipped_bytes, Ordering::Relaxed);
    f.recovered_shares
        .store(recovery.shares.len() as u64, Ordering::Relaxed);
    f.recovered_contents
        .store(recovery.contents.len() as u64, Ordering::Relaxed);
    publish(h, spool);
}

/// Once the engine has re-queued the recovered contents: how many did not fit (they stay in
/// the spool), and the newest queue write number (the recovered contents are in the log).
pub fn requeued(h: &Handle, deferred: u64, last_seq: u64) {
    h.figures.deferred.store(deferred, Ordering::Relaxed);
    h.written_seq.store(last_seq, Ordering::Release);
}

/// Starts the spool thread with `swap` as its way to the journal; `spawn` names and starts it.
pub fn start(
    h: &Arc<Handle>,
    spool: Spool,
    timing: Timing,
    swap: Swap,
    spawn: impl FnOnce(Box<dyn FnOnce() + Send>) -> Result<JoinHandle<()>>,
) -> Result<()> {
    let receiver = lock(&h.receiver)
        .take()
        .expect("the spool thread starts once");
    let (done_tx, done_rx) = unbounded();
    let runner = h.clone();
    let thread = spawn(Box::new(move || {
        run(&runner, spool, receiver, timing, swap);
        runner.stopped.store(true, Ordering::Release);
        runner.notify();
        let _ = done_tx.send(());
    }))?;
    *lock(&h.thread) = Some((thread, done_rx));
    Ok(())
}

/// The spool thread: every half interval, or when woken, it swaps the journal out and appends
/// it; it syncs every `fsync` and when a waiter asks.
fn run(h: &Handle, mut spool: Spool, wakes: Receiver<Wake>, timing: Timing, mut swap: Swap) {
    let tick = (timing.interval / 2).max(Duration::from_millis(1));
    let mut incoming: Vec<Record> = Vec::new();
    let mut index = HashMap::default();
    let mut batch: Vec<Record> = Vec::new();
    let mut last_sync = Instant::now();
    let mut last_error: Option<String> = None;
    loop {
        let (sync, stop) = woken(&wakes, tick);
        let (pushed, seq) = swap(&mut incoming, &mut index);
        index.clear(); // keeps its capacity for the next swap
        if batch.is_empty() {
            std::mem::swap(&mut batch, &mut incoming);
        } else {
            batch.append(&mut incoming); // after a failed append: keep the order
        }
        let mut failure = None;
        if !batch.is_empty() {
            match append(h, &mut spool, &batch) {
                Ok(()) => {
                    h.figures
                        .records
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    batch.clear(); // drops the texts here, outside the engine's lock
                }
                Err(e) => failure = Some(e.message),
            }
        }
        if batch.is_empty() {
            h.written.store(pushed, Ordering::Release);
            h.written_seq.store(seq, Ordering::Release);
        }
        let written = h.written.load(Ordering::Acquire);
        if h.synced.load(Ordering::Acquire) < written
            && (sync || stop || last_sync.elapsed() >= timing.fsync)
        {
            match spool.sync_data() {
                Ok(()) => {
                    h.synced.store(written, Ordering::Release);
                    h.figures.syncs.fetch_add(1, Ordering::Relaxed);
                    last_sync = Instant::now();
                }
                Err(e) => failure = failure.or(Some(e.message)),
            }
        }
        publish(h, &spool);
        h.notify();
        report(h, &mut last_error, failure);
        if stop {
            break;
        }
    }
}

/// Waits for a wake-up or the tick; answers whether to sync and whether to stop.
fn woken(wakes: &Receiver<Wake>, tick: Duration) -> (bool, bool) {
    let (mut sync, mut stop) = (false, false);
    let mut note = |w: std::result::Result<Wake, RecvTimeoutError>| match w {
        Ok(Wake::Write) | Err(RecvTimeoutError::Timeout) => {}
        Ok(Wake::Sync) => sync = true,
        Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => stop = true,
    };
    note(wakes.recv_timeout(tick));
    for w in wakes.try_iter() {
        note(Ok(w));
    }
    (sync, stop)
}

/// Appends a batch; a record over the spool's size bound is left out (counted and named by an
/// event: its content is still sent, it only is not durable) so it cannot block the rest.
fn append(h: &Handle, spool: &mut Spool, batch: &[Record]) -> crate::spool::Result<()> {
    let appended = match spool.append(batch) {
        Err(e) if e.kind == spool::ErrorKind::TooLarge => {
            for record in batch {
                match spool.append(std::slice::from_ref(record)) {
                    Err(e) if e.kind == spool::ErrorKind::TooLarge => {
                        h.figures.errors.fetch_add(1, Ordering::Relaxed);
                        hub().emit([Event::Spool {
                            skipped_bytes: None,
                            error: Some(e.message),
                        }]);
                    }
                    other => {
                        other?;
                    }
                }
            }
            return Ok(());
        }
        other => other?,
    };
    if let Some(e) = appended.compaction_error {
        h.figures.errors.fetch_add(1, Ordering::Relaxed);
        hub().emit([Event::Spool {
            skipped_bytes: None,
            error: Some(format!("compaction failed (the log is intact): {e}")),
        }]);
    }
    Ok(())
}

/// Counts a failure and names it by an event, once per run of the same failure.
fn report(h: &Handle, last: &mut Option<String>, failure: Option<String>) {
    let Some(message) = failure else {
        *last = None;
        return;
    };
    h.figures.errors.fetch_add(1, Ordering::Relaxed);
    if last.as_deref() != Some(&message) {
        hub().emit([Event::Spool {
            skipped_bytes: None,
            error: Some(format!("{message} (retried)")),
        }]);
        *last = Some(message);
    }
}
