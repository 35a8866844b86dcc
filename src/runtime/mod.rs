//! The runtime: the threads around the engine (src/engine/), started by `share_init`, stopped
//! by `share_shutdown`, startable again. Threads: `concurrency + 2` workers draining one
//! crossbeam job queue, a timer for parked keys and flush deadlines, the spool writer (with
//! `spool_dir`), and a notifier that alone calls into the host.

pub mod completions;
mod flush;
mod global;
mod instance;
mod intake;
mod messages;
mod notifier;
pub mod ops;
mod spool_writer;
mod stats;
mod timer;
mod worker;

use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLockReadGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};

use crate::config::Config;
use crate::engine::Left;
use crate::error::{Error, ErrorKind, Result};
use crate::events::{Event, Reason, hub};
use crate::http::Http;
use crate::locks::lock;
use crate::spool::{Recovery, Spool};
use global::{Last, Threads, global};
use instance::Channels;
pub use instance::Instance;
use messages::{Job, Notice, Tick};

/// Workers beyond `concurrency`, so asynchronous creates and removes do not wait behind syncs.
const SPARE_WORKERS: usize = 2;

fn read_current() -> RwLockReadGuard<'static, Option<Arc<Instance>>> {
    global().read_current()
}

/// Runs `f` on the running runtime, holding it for the call (short calls only: shutdown waits).
pub fn with_current<R>(f: impl FnOnce(&Instance) -> Result<R>) -> Result<R> {
    match read_current().as_deref() {
        Some(instance) => f(instance),
        None => Err(Error::not_initialized()),
    }
}

/// The running runtime, for calls that may wait.
pub fn current() -> Result<Arc<Instance>> {
    read_current().clone().ok_or_else(Error::not_initialized)
}

/// `share_init`: parses the config, builds the HTTP client on a library thread and starts the
/// threads.
pub fn init(config_json: Option<&str>) -> Result<()> {
    crate::fork::watch();
    let mut lifecycle = lock(&global().lifecycle);
    if read_current().is_some() {
        return Err(Error::new(
            ErrorKind::AlreadyInitialized,
            "the library is already running; nothing changed (call share_shutdown first to reconfigure)",
        ));
    }
    let env_api = std::env::var("OPENCODE_API").ok();
    let config = Config::parse(config_json, env_api.as_deref())?;
    // a spool folder in use or of a bad mode fails init here
    let spooled = spool_writer::open(&config, &global().lingering)?;
    let for_client = config.clone();
    let http = spawn("share-init".into(), move || Http::new(&for_client))?
        .join()
        .map_err(|_| {
            Error::new(
                ErrorKind::Panic,
                "building the HTTP client panicked (a bug)",
            )
        })?
        .map_err(|e| Error::new(ErrorKind::NotInitialized, cannot_start(&e)))?;

    let (jobs_tx, jobs_rx) = unbounded();
    let (ticks_tx, ticks_rx) = unbounded();
    let (notices_tx, notices_rx) = unbounded();
    let (done_tx, done_rx) = unbounded();
    let (notifier_done_tx, notifier_done_rx) = unbounded();
    let generation = global().generation.fetch_add(1, Ordering::Relaxed) + 1;
    let workers = config.concurrency + SPARE_WORKERS;
    let instance = Arc::new(Instance::new(
        generation,
        config,
        http,
        Channels {
            jobs: jobs_tx,
            timer: ticks_tx,
            notices: notices_tx.clone(),
        },
        &global().ops,
    ));

    let notifier = spawn("share-notifier".into(), move || {
        notifier::run(notices_rx, notifier_done_tx)
    })?;
    start_spool(&instance, spooled)?;
    let started = start_threads(&instance, workers, jobs_rx, ticks_rx, &done_tx);
    let handles = match started {
        Ok(handles) => handles,
        Err((e, workers)) => {
            // the spool thread syncs and releases the spool
            let soon = Instant::now() + Duration::from_secs(1);
            spool_writer::stop(&instance.spool, &instance.config, soon, &global().lingering);
            stop_threads(&instance, workers);
            let _ = instance.notices.send(Notice::Stop);
            return Err(e);
        }
    };

    hub().set_courier(Some(Arc::new(move || {
        let _ = notices_tx.send(Notice::Events);
    })));
    ops::resend_removals(&instance);
    *global().current.write().unwrap_or_else(|e| e.into_inner()) = Some(instance);
    *lifecycle = Some(Threads {
        handles,
        notifier,
        done: done_rx,
        notifier_done: notifier_done_rx,
    });
    Ok(())
}

/// With a spool: the engine re-queues what it held, then the spool writer starts. Before
/// `share_init` returns.
fn start_spool(instance: &Arc<Instance>, opened: Option<(Spool, Recovery)>) -> Result<()> {
    let Some((spool, recovery)) = opened else {
        return Ok(());
    };
    spool_writer::recovered(&instance.spool, &spool, &recovery);
    let skipped_bytes = recovery.skipped_bytes;
    let now = Instant::now();
    let (deferred, tokens, last_seq) = instance.decide(|engine, _| {
        let (deferred, tokens) = engine.recover(recovery, now);
        (deferred, tokens, engine.queue().last_seq())
    });
    spool_writer::requeued(&instance.spool, deferred, last_seq);
    instance.wake_workers(tokens);
    if skipped_bytes > 0 {
        hub().emit([Event::Spool {
            skipped_bytes: Some(skipped_bytes),
            error: None,
        }]);
    }
    let runner = instance.clone();
    let swap: spool_writer::Swap = Box::new(move |records, index| {
        let mut engine = runner.lock();
        engine.journal_mut().swap(records, index);
        (engine.journal().pushed(), engine.queue().last_seq())
    });
    let timing = spool_writer::Timing {
        interval: instance.config.spool_interval,
        fsync: instance.config.spool_fsync,
    };
    spool_writer::start(&instance.spool, spool, timing, swap, |body| {
        spawn("share-spool".into(), body)
    })
}

/// Starts the workers and the timer; on failure, the error and how many workers started.
fn start_threads(
    instance: &Arc<Instance>,
    workers: usize,
    jobs: Receiver<Job>,
    ticks: Receiver<Tick>,
    done: &Sender<()>,
) -> std::result::Result<Vec<JoinHandle<()>>, (Error, usize)> {
    let mut handles = Vec::with_capacity(workers + 1);
    for n in 0..workers {
        let (instance, jobs, done) = (instance.clone(), jobs.clone(), done.clone());
        match spawn(format!("share-worker-{n}"), move || {
            worker::run(instance, jobs, done)
        }) {
            Ok(handle) => handles.push(handle),
            Err(e) => return Err((e, handles.len())),
        }
    }
    let (runner, done) = (instance.clone(), done.clone());
    match spawn("share-timer".into(), move || {
        timer::run(runner, ticks, done)
    }) {
        Ok(handle) => handles.push(handle),
        Err(e) => return Err((e, handles.len())),
    }
    Ok(handles)
}

/// Starts a named library thread.
fn spawn<T: Send + 'static>(
    name: String,
    body: impl FnOnce() -> T + Send + 'static,
) -> Result<JoinHandle<T>> {
    spawn_with(thread::Builder::new().name(name), body)
}

/// [`spawn`] with a given builder: a thread that cannot start is SHARE_ERR_NOT_INITIALIZED.
fn spawn_with<T: Send + 'static>(
    builder: thread::Builder,
    body: impl FnOnce() -> T + Send + 'static,
) -> Result<JoinHandle<T>> {
    builder.spawn(body).map_err(|e| {
        Error::new(
            ErrorKind::NotInitialized,
            cannot_start(&format!("cannot start a library thread: {e}")),
        )
    })
}

/// The message when init cannot start the runtime (no thread, no HTTP client): not a network
/// failure, and nothing runs afterwards.
fn cannot_start(why: &str) -> String {
    format!("share_init: {why}; the library did not start")
}

/// `share_shutdown`: stops new work, flushes until the deadline, drops and reports what is
/// left, stops the threads and joins those that finish in time.
pub fn shutdown(timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut lifecycle = lock(&global().lifecycle);
    let Some(instance) = global()
        .current
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    else {
        return Err(Error::not_initialized());
    };
    *lock(&global().last) = Some(Last::Stopping(instance.clone()));
    let flushed = instance.flush(deadline.saturating_duration_since(Instant::now()));
    // asynchronous creates and removes under way get the rest of the deadline too
    let ops_done = global().ops.wait_for_pending(instance.generation, deadline);
    let Left {
        contents: left,
        keys,
        refused,
    } = instance.decide(|engine, fx| engine.close(fx));
    // one event per key, so every drop names what it dropped; with a spool nothing is lost:
    // the next share_init on it sends what is left, and the event says so
    let spooled = instance.spool.is_on();
    let kept = spooled.then(|| KEPT_IN_SPOOL.to_owned());
    hub().emit(
        keys.into_iter()
            .map(|(key, session, count)| Event::Dropped {
                reason: Reason::Shutdown,
                key: Some(key),
                session: Some(session),
                count,
                bytes: None,
                error: kept.clone(),
            }),
    );
    // what is left stays in the spool for the next share_init (written, synced, released)
    spool_writer::stop(
        &instance.spool,
        &instance.config,
        deadline,
        &global().lingering,
    );
    let abandoned = global().ops.abandon(instance.generation);
    let abandoned_ops = abandoned.len();
    for call in abandoned {
        let _ = instance.notices.send(Notice::Call(call));
    }
    // a completion finished just before the abandon may still be on its way: it goes first
    global().ops.settle_in_transit();
    hub().set_courier(None);
    let threads = lifecycle.take().expect("a running runtime has threads");
    stop_threads(&instance, threads.handles.len() - 1);
    let _ = instance.notices.send(Notice::Stop);
    join_by(threads, deadline);
    *lock(&global().last) = Some(Last::Stopped(instance.stats_json(false)));
    // the last reference unless a request is still in flight: this closes the HTTP client
    drop(instance);
    shutdown_result(flushed, ops_done, left, refused, abandoned_ops, spooled)
}

/// What the events of contents left at shutdown say when a spool keeps them.
const KEPT_IN_SPOOL: &str = "kept in the spool: the next share_init with this spool_dir sends it";

/// What shutdown answers: SHARE_ERR_TIMEOUT if its deadline came with work left; otherwise
/// SHARE_ERR_HTTP_STATUS if contents accepted before it were given up (by the flush, or
/// dropped here because their share was refused); SHARE_OK if everything was delivered.
fn shutdown_result(
    flushed: Result<()>,
    ops_done: bool,
    left: u64,
    refused: usize,
    abandoned_ops: usize,
    spooled: bool,
) -> Result<()> {
    let fate = if spooled {
        "were left in the spool for the next share_init"
    } else {
        "were dropped"
    };
    match flushed {
        Err(e) if e.kind == ErrorKind::Timeout => {}
        _ if !ops_done => {}
        Ok(()) if left == 0 => return Ok(()),
        flushed => {
            let mut message = String::from("shutdown:");
            if let Err(e) = flushed {
                message.push_str(&e.message.replacen("flush:", "", 1));
            }
            if left > 0 {
                message.push_str(&format!(
                    " {left} contents of {refused} refused shares {fate} (see the dropped events)"
                ));
            }
            return Err(Error::new(ErrorKind::HttpStatus, message));
        }
    }
    Err(Error::new(
        ErrorKind::Timeout,
        format!(
            "shutdown: the deadline came first; {left} contents {fate} (see stats and the \
             dropped events naming their keys) and {abandoned_ops} asynchronous operations were abandoned"
        ),
    ))
}

/// Asks `workers` workers and the timer to leave.
fn stop_threads(instance: &Instance, workers: usize) {
    for _ in 0..workers {
        let _ = instance.jobs.send(Job::Stop);
    }
    let _ = instance.timer.send(Tick::Stop);
}

/// Joins the workers and the timer if they all leave by `deadline`; otherwise leaves them to
/// finish on their own (a request in flight ends at its timeout). The notifier is never waited
/// for: it may be inside a host callback that waits for the very thread calling shutdown
/// (koffi runs such callbacks on the JS thread); it is joined only if it has already left.
fn join_by(threads: Threads, deadline: Instant) {
    let all = threads.handles.len();
    let mut left = all;
    while left > 0 && threads.done.recv_deadline(deadline).is_ok() {
        left -= 1;
    }
    if left == 0 {
        for handle in threads.handles {
            let _ = handle.join();
        }
    }
    if threads.notifier_done.try_recv().is_ok() {
        let _ = threads.notifier.join();
    }
}

/// `share_op_take`: a finished asynchronous operation's result (once).
pub fn take_op(id: u32) -> Result<String> {
    global().ops.take(id)
}

/// `share_op_pending`: whether an asynchronous operation is still running.
pub fn op_pending(id: u32) -> Result<bool> {
    global().ops.pending(id)
}

/// `share_stats`: the running runtime's figures, or the last one's after shutdown.
pub fn stats() -> Result<String> {
    if let Some(instance) = read_current().as_deref() {
        return Ok(instance.stats_json(true));
    }
    match &*lock(&global().last) {
        Some(Last::Stopping(instance)) => Ok(instance.stats_json(false)),
        Some(Last::Stopped(stats)) => Ok(stats.clone()),
        None => Err(Error::not_initialized()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_that_cannot_start_is_not_a_network_error() {
        // no system gives a thread a stack this large
        let e = spawn_with(thread::Builder::new().stack_size(1 << 60), || ()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotInitialized);
        assert!(
            e.message.contains("cannot start a library thread")
                && e.message.contains("did not start"),
            "{}",
            e.message
        );
    }
}
