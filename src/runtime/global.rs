//! The process's one piece of global runtime state: a C host calls `share_*` functions, not
//! methods, so the running runtime, the lifecycle lock, the last runtime's stats, the
//! asynchronous operations' slots and the spool threads still finishing live in one static.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;

use crossbeam_channel::Receiver;

use super::completions::Slots;
use super::instance::Instance;

/// Everything global, behind one static. Lock order: `lifecycle` → `current` → the running
/// runtime's state; `last`, the slots' lock and `lingering` are leaves.
pub struct Global {
    /// Serialises init and shutdown; holds the running runtime's threads.
    pub lifecycle: Mutex<Option<Threads>>,
    /// The running runtime, read by every call.
    pub current: RwLock<Option<Arc<Instance>>>,
    /// The last runtime stopped, for `share_stats` after shutdown.
    pub last: Mutex<Option<Last>>,
    /// Numbers the runtimes, so an operation of a stopped one is told apart.
    pub generation: AtomicU64,
    /// Asynchronous operations' results (they outlive a runtime until taken).
    pub ops: Slots,
    /// Spool threads of stopped runtimes that had not finished by their shutdown's deadline,
    /// by folder, each with the channel it signals once it has released the spool.
    pub lingering: Mutex<Vec<(PathBuf, Receiver<()>)>>,
}

/// The only runtime static (see the module documentation).
static GLOBAL: Global = Global {
    lifecycle: Mutex::new(None),
    current: RwLock::new(None),
    last: Mutex::new(None),
    generation: AtomicU64::new(0),
    ops: Slots::new(),
    lingering: Mutex::new(Vec::new()),
};

pub fn global() -> &'static Global {
    &GLOBAL
}

impl Global {
    pub fn read_current(&self) -> RwLockReadGuard<'_, Option<Arc<Instance>>> {
        self.current.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// What `share_stats` reads when no runtime runs.
pub enum Last {
    /// Shutting down: its figures still move.
    Stopping(Arc<Instance>),
    /// Stopped: its final figures (the runtime itself, with its HTTP client, is gone).
    Stopped(String),
}

/// A running runtime's threads, joined by shutdown.
pub struct Threads {
    pub handles: Vec<JoinHandle<()>>,
    pub notifier: JoinHandle<()>,
    pub done: Receiver<()>,
    pub notifier_done: Receiver<()>,
}
