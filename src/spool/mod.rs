//! The durable spool (`spool_dir`): an append-only log of shares and contents in a folder, so
//! that what the service never acknowledged survives a crash or an exit without shutdown and is
//! re-queued by the next `share_init` on the same folder.
//!
//! Storage only: the runtime's spool thread calls [`Spool::append`] with the records that
//! accumulated (every `spool_interval_ms`), [`Spool::sync_data`] at flush, shutdown and every
//! `spool_fsync_ms`; [`Spool::open`] returns what to re-queue. No method takes a lock or calls
//! the host; every one does disk I/O, so none belongs on a caller's thread of `share_sync`.
//!
//! Files, in a folder of mode 0700: `spool.log` (0600, the log: layout in [`record`]),
//! `spool.lock` (0600, held with `flock` while a [`Spool`] is open), and `spool.log.tmp` only
//! while a compaction writes it. Unix only, like the rest of the library's build.

mod folder;
pub(crate) mod live;
mod lock;
mod log;
pub mod record;
mod store;

use std::fmt;

pub use crate::registry::Secret;
pub use live::Entry;
pub use record::{Content, MAX_PAYLOAD, Record, Share};
pub use store::{Appended, Options, Recovery, Spool, SpoolStats};

/// What went wrong, for the runtime to choose a status or an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Another process holds the spool, or this process has it open already.
    Locked,
    /// The path is not a folder, or is a folder that its group or others may access (it would
    /// hold secrets; the library does not change the mode of a folder it did not create).
    BadFolder,
    /// `spool.log` is not a spool, or one of a version this library does not read.
    NotASpool,
    /// A record is larger than [`MAX_PAYLOAD`]; nothing of its batch was written.
    TooLarge,
    /// Reading, writing, syncing or renaming failed (the message has the OS error).
    Io,
}

/// A spool failure. The message names the folder or file and never holds a secret or a
/// content (only paths, keys, sizes and OS error text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl Error {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    fn io(what: impl fmt::Display, e: &std::io::Error) -> Self {
        Error::new(ErrorKind::Io, format!("{what}: {e}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// At `share_init` every spool failure is a `spool_dir` the library cannot use.
impl From<Error> for crate::Error {
    fn from(e: Error) -> Self {
        crate::Error::invalid(e.message)
    }
}

pub type Result<T> = std::result::Result<T, Error>;
