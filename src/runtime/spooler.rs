//! The durable spool at run time (SPEC "Durability"): the record buffer that `share_sync`,
//! create, remove and settles push to under the state lock (a push, no I/O), and the spool
//! thread that swaps the buffer out, appends it outside the lock, fsyncs and compacts; plus the
//! recovery at `share_init` and the waits of flush, remove and shutdown for durability.
//!
//! Order: a content may be sent only once its record is in the log ([`before_send`]), so a log
//! never holds an unacknowledged content older than one the service has (a restart resending it
//! would put an older content after a newer). Contents left at shutdown are not written off:
//! the next `share_init` on the folder resends them.
//!
//! Lock order: [`Handle`]'s `progress` mutex is a leaf: it is never held while the state lock
//! is taken, and nothing is called under it. The spool thread takes the state lock only to swap
//! the buffer, and does its I/O after releasing it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, unbounded};
use foldhash::HashMap;

use super::shared::Shared;
use super::state::State;
use crate::config::Config;
use crate::error::{Error, Result, Status};
use crate::events::{Event, hub};
use crate::locks::lock;
use crate::queue::{Dispatch, Item};
use crate::registry;
use crate::spool::{Content, ErrorKind, Record, Recovery, Share, Spool};

/// The records pushed since the spool thread last took them; lives in the runtime's state.
#[derive(Debug, Default)]
pub struct Buffer {
    on: bool,
    records: Vec<Record>,
    /// Where each key's content record is in `records`: a newer content of the key replaces it
    /// there (a streamed key is rewritten far faster than the thread writes), so the older text
    /// is freed at once by the caller and never written. Cleared by a `Remove`, after which a
    /// content must not move before it.
    index: HashMap<Arc<str>, usize>,
    /// Spool sequence number = `base` + the queue's: above every number an older run wrote.
    base: u64,
    /// Records pushed, ever (durability waits compare it with what the thread has written).
    pushed: u64,
}

impl Buffer {
    fn push(&mut self, record: Record) {
        if self.on {
            if matches!(record, Record::Remove { .. }) {
                self.index.clear();
            }
            self.records.push(record);
            self.pushed += 1;
        }
    }

    fn push_content(&mut self, content: Content) {
        self.pushed += 1;
        match self.index.get(&content.key) {
            Some(&at) => self.records[at] = Record::Content(content),
            None => {
                self.index.insert(content.key.clone(), self.records.len());
                self.records.push(Record::Content(content));
            }
        }
    }
}

/// What wakes the spool thread before its tick.
enum Wake {
    /// A sender waits for its content to be in the log.
    Write,
    /// A flush or remove waits for everything pushed so far to be synced.
    Sync,
    /// Shutdown: write and sync what is left, then leave.
    Stop,
}

/// The spool's part of [`Shared`]: the way to the thread, and its progress for waiters and
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

/// Re-queues what the spool held (its shares into the registry, its contents into the queue,
/// in write order) and starts the spool thread. Called before `share_init` returns.
pub fn start(shared: &Arc<Shared>, opened: Option<(Spool, Recovery)>) -> Result<()> {
    let Some((spool, recovery)) = opened else {
        return Ok(());
    };
    let h = &shared.spool;
    let f = &h.figures;
    f.skipped_bytes
        .store(recovery.skipped_bytes, Ordering::Relaxed);
    f.recovered_shares
        .store(recovery.shares.len() as u64, Ordering::Relaxed);
    f.recovered_contents
        .store(recovery.contents.len() as u64, Ordering::Relaxed);
    publish(h, &spool);
    let tokens = {
        let mut state = shared.lock();
        state.spool.on = true;
        state.spool.base = recovery.next_seq;
        for share in &recovery.shares {
            let known = registry::Share {
                secret: share.secret.clone(),
                id: share.id.clone(),
            };
            state.registry.insert(&share.session, known);
        }
        let mut deferred = 0;
        for c in recovery.contents {
            if state
                .queue
                .offer(&c.key, &c.session, c.text, Instant::now)
                .is_err()
            {
                deferred += 1; // stays in the spool for the next share_init
            }
        }
        f.deferred.store(deferred, Ordering::Relaxed);
        // the recovered contents are in the log already
        h.written_seq
            .store(state.queue.last_seq(), Ordering::Release);
        state.claim_workers(shared.config.concurrency)
    };
    shared.wake_workers(tokens);
    if recovery.skipped_bytes > 0 {
        hub().emit([Event::Spool {
            skipped_bytes: Some(recovery.skipped_bytes),
            error: None,
        }]);
    }
    let receiver = lock(&h.receiver)
        .take()
        .expect("the spool thread starts once");
    let (done_tx, done_rx) = unbounded();
    let runner = shared.clone();
    let thread = super::spawn("share-spool".into(), move || {
        run(&runner, spool, receiver);
        runner.spool.stopped.store(true, Ordering::Release);
        runner.spool.notify();
        let _ = done_tx.send(());
    })?;
    *lock(&h.thread) = Some((thread, done_rx));
    Ok(())
}

/// Shutdown (and a failed init): the thread writes and syncs what is left, then leaves and
/// releases the spool; joined if it leaves by `deadline`.
pub fn stop(shared: &Shared, deadline: Instant, lingering: &Lingering) {
    let Some((thread, done)) = lock(&shared.spool.thread).take() else {
        return;
    };
    let _ = shared.spool.wakes.send(Wake::Stop);
    if done.recv_deadline(deadline).is_ok() {
        let _ = thread.join();
    } else if let Some(dir) = &shared.config.spool_dir {
        // still writing: the next init on this folder waits for it instead of finding it held
        lock(lingering).push((dir.clone(), done));
    }
}

/// Spool threads of stopped runtimes that had not finished by their shutdown's deadline, by
/// folder, each with the channel it signals when it has released the spool. A leaf lock.
pub type Lingering = Mutex<Vec<(PathBuf, Receiver<()>)>>;

/// The record of an accepted content, built before the state lock is taken (None without a
/// spool); [`accepted`] numbers and pushes it.
pub fn content(shared: &Shared, key: &str, session: &str, text: &Arc<str>) -> Option<Content> {
    shared.spool.on.then(|| Content {
        seq: 0,
        key: Arc::from(key),
        session: Arc::from(session),
        text: text.clone(),
    })
}

/// Under the state lock, right after the queue took the content: pushes its record with the
/// content's sequence number.
pub fn accepted(state: &mut State, content: Option<Content>) {
    if let Some(mut c) = content {
        c.seq = state.spool.base + state.queue.last_seq();
        state.spool.push_content(c);
    }
}

/// The record of a share the registry takes (with its id under "next"), built before the
/// state lock is taken.
pub fn share(shared: &Shared, session: &str, share: &registry::Share) -> Option<Record> {
    shared.spool.on.then(|| {
        Record::Share(Share {
            session: Arc::from(session),
            secret: share.secret.clone(),
            id: share.id.clone(),
            url: None,
        })
    })
}

/// The record of a removed share, built before the state lock is taken.
pub fn removal(shared: &Shared, session: &str) -> Option<Record> {
    shared.spool.on.then(|| Record::Remove {
        session: Arc::from(session),
    })
}

/// Under the state lock: pushes a record built by [`share`] or [`removal`].
pub fn push(state: &mut State, record: Option<Record>) {
    if let Some(r) = record {
        state.spool.push(r);
    }
}

/// The items of `dispatch` that `keys` name (a subsequence of its items, in their order).
fn items<'a>(dispatch: &'a Dispatch, keys: &'a [&str]) -> impl Iterator<Item = &'a Item> {
    let mut items = dispatch.items.iter();
    keys.iter()
        .filter_map(move |key| items.by_ref().find(|i| &*i.key == *key))
}

/// Under the state lock: the service accepted the items of `dispatch` that `keys` name.
pub fn delivered(state: &mut State, dispatch: &Dispatch, keys: &[&str]) {
    let base = state.spool.base;
    for item in items(dispatch, keys) {
        state.spool.push(Record::Ack {
            key: item.key.clone(),
            seq: base + item.seq,
        });
    }
}

/// Under the state lock: the items of `dispatch` that `keys` name were given up for good
/// (rejected).
pub fn given_up(state: &mut State, dispatch: &Dispatch, keys: &[&str]) {
    let base = state.spool.base;
    for item in items(dispatch, keys) {
        state.spool.push(Record::Dropped {
            key: item.key.clone(),
            seq: base + item.seq,
        });
    }
}

/// Under the state lock: `item` was given up without a request (unsafe, too large, a panic).
pub fn unsent(state: &mut State, item: &Item) {
    let seq = state.spool.base + item.seq;
    state.spool.push(Record::Dropped {
        key: item.key.clone(),
        seq,
    });
}

/// Under the state lock: the service ended the share of `session` (401/403/404).
pub fn unshared(state: &mut State, session: &Arc<str>) {
    state.spool.push(Record::Remove {
        session: session.clone(),
    });
}

/// On a worker, between taking a dispatch and sending it: waits until its contents' records are
/// in the log (at once in the common case; otherwise the thread is woken to write now). After
/// `timeout_ms` it sends anyway (the spool failing must not stop the uploads), counted. True
/// if it waited (the caller then checks that the runtime is still running).
pub fn before_send(shared: &Shared, dispatch: &Dispatch) -> bool {
    let h = &shared.spool;
    let seq = dispatch.items.iter().map(|i| i.seq).max().unwrap_or(0);
    if !h.on || h.written_seq.load(Ordering::Acquire) >= seq {
        return false;
    }
    let _ = h.wakes.send(Wake::Write);
    let deadline = Instant::now() + shared.config.timeout;
    let in_log = |h: &Handle| h.written_seq.load(Ordering::Acquire) >= seq;
    if !h.wait(deadline, in_log) && !in_log(h) {
        h.figures.unspooled_sends.fetch_add(1, Ordering::Relaxed);
    }
    true
}

/// Waits until everything pushed so far is written and synced, or `deadline`; true if it is
/// (or there is no spool). A deadline already passed only asks the thread to sync.
pub fn wait_durable(shared: &Shared, deadline: Instant) -> bool {
    let h = &shared.spool;
    if !h.on {
        return true;
    }
    let target = shared.lock().spool.pushed;
    let synced = |h: &Handle| h.synced.load(Ordering::Acquire) >= target;
    if synced(h) {
        return true;
    }
    let _ = h.wakes.send(Wake::Sync);
    h.wait(deadline, synced)
}

/// Asks the thread to write and sync now, without waiting (asynchronous flushes).
pub fn request_sync(shared: &Shared) {
    if shared.spool.on {
        let _ = shared.spool.wakes.send(Wake::Sync);
    }
}

/// The error of a flush or remove whose records were not synced by its deadline.
pub fn not_durable(what: &str) -> Error {
    Error::new(
        Status::SHARE_ERR_TIMEOUT,
        format!(
            "{what}: the spool was not written and synced by the deadline (see the spool events \
             and stats)"
        ),
    )
}

/// The `spool` member of stats: null without a spool.
pub fn stats(shared: &Shared) -> serde_json::Value {
    let h = &shared.spool;
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

/// The spool thread: every half `spool_interval_ms` (so a content is in the log within the
/// interval even when the thread is a little late), or when woken, it swaps the buffer out and
/// appends it; it syncs every `spool_fsync_ms` and when a waiter asks.
fn run(shared: &Shared, mut spool: Spool, wakes: Receiver<Wake>) {
    let h = &shared.spool;
    let tick = (shared.config.spool_interval / 2).max(Duration::from_millis(1));
    let mut incoming: Vec<Record> = Vec::new();
    let mut index = HashMap::default();
    let mut batch: Vec<Record> = Vec::new();
    let mut last_sync = Instant::now();
    let mut last_error: Option<String> = None;
    loop {
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
        let (pushed, seq) = {
            let mut state = shared.lock();
            std::mem::swap(&mut state.spool.records, &mut incoming);
            std::mem::swap(&mut state.spool.index, &mut index);
            (state.spool.pushed, state.queue.last_seq())
        };
        index.clear(); // keeps its capacity for the next swap
        if batch.is_empty() {
            std::mem::swap(&mut batch, &mut incoming);
        } else {
            batch.append(&mut incoming); // after a failed append: keep the order
        }
        let mut failure = None;
        if !batch.is_empty() {
            match append(shared, &mut spool, &batch) {
                Ok(()) => {
                    h.figures
                        .records
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    batch.clear(); // drops the texts here, outside the state lock
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
            && (sync || stop || last_sync.elapsed() >= shared.config.spool_fsync)
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

/// Appends a batch; a record over the spool's size bound is left out (counted and named by an
/// event: its content is still sent, it only is not durable) so it cannot block the rest.
fn append(shared: &Shared, spool: &mut Spool, batch: &[Record]) -> crate::spool::Result<()> {
    let appended = match spool.append(batch) {
        Err(e) if e.kind == ErrorKind::TooLarge => {
            for record in batch {
                match spool.append(std::slice::from_ref(record)) {
                    Err(e) if e.kind == ErrorKind::TooLarge => {
                        shared.spool.figures.errors.fetch_add(1, Ordering::Relaxed);
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
        shared.spool.figures.errors.fetch_add(1, Ordering::Relaxed);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn content(key: &str, seq: u64) -> Content {
        Content {
            seq,
            key: key.into(),
            session: "s".into(),
            text: format!("v{seq}").into(),
        }
    }

    fn shown(b: &Buffer) -> Vec<String> {
        b.records
            .iter()
            .map(|r| match r {
                Record::Content(c) => format!("{}={}", c.key, c.seq),
                Record::Ack { key, seq } => format!("ack {key}={seq}"),
                Record::Remove { session } => format!("remove {session}"),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_newer_content_replaces_the_waiting_one_in_place_but_never_moves_before_a_remove() {
        let mut b = Buffer {
            on: true,
            ..Buffer::default()
        };
        b.push_content(content("k", 1));
        b.push(Record::Ack {
            key: "j".into(),
            seq: 0,
        });
        b.push_content(content("k", 2));
        b.push_content(content("m", 3));
        assert_eq!(shown(&b), ["k=2", "ack j=0", "m=3"]);
        b.push(Record::Remove {
            session: "s".into(),
        });
        b.push_content(content("k", 4));
        assert_eq!(shown(&b), ["k=2", "ack j=0", "m=3", "remove s", "k=4"]);
        assert_eq!(b.pushed, 6);
    }

    #[test]
    fn without_a_spool_nothing_is_kept() {
        let mut b = Buffer::default();
        b.push(Record::Remove {
            session: "s".into(),
        });
        assert!(b.records.is_empty() && b.pushed == 0);
    }
}
