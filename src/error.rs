//! The status codes of the C API and the error every safe module returns.

use std::fmt;

/// What a `share_*` call reports. `SHARE_OK` (0) is success; every other value comes with a
/// message in `share_last_error()` on the calling thread.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum share_status {
    /// Success.
    SHARE_OK = 0,
    /// NULL where a value is needed, bad UTF-8, malformed key, invalid JSON, bad config.
    SHARE_ERR_INVALID_ARGUMENT = 1,
    /// Called before share_init, or after share_shutdown; share_init: the library could not
    /// start (no thread, no HTTP client); any call in a forked child of a process that
    /// started the library.
    SHARE_ERR_NOT_INITIALIZED = 2,
    /// share_init while running; nothing changed.
    SHARE_ERR_ALREADY_INITIALIZED = 3,
    /// Could not reach the service (connect, reset, timeout), retries spent.
    SHARE_ERR_NETWORK = 4,
    /// The service answered with a non-2xx status. From share_flush and share_shutdown: every
    /// content accepted before the call settled, but not all were delivered: some were given
    /// up (refused, too large, unsafe, share gone) or wait for a share the service refuses;
    /// the message says how many (each given-up content is reported by one flush).
    SHARE_ERR_HTTP_STATUS = 5,
    /// The service's answer is not what the protocol says (unreadable, over 64 KiB, or a
    /// share that another session of this runtime already holds).
    SHARE_ERR_BAD_RESPONSE = 6,
    /// share_flush/share_shutdown: the deadline came with work left.
    SHARE_ERR_TIMEOUT = 7,
    /// Pending content would pass max_pending_bytes; nothing was queued.
    SHARE_ERR_QUEUE_FULL = 8,
    /// A bug inside the library; it was caught, and the library still works.
    SHARE_ERR_PANIC = 9,
}

/// The Rust-side name of [`share_status`].
pub use share_status as Status;

impl Status {
    /// The C name of the status, e.g. `"SHARE_ERR_NETWORK"`.
    pub fn name(self) -> &'static str {
        match self {
            Status::SHARE_OK => "SHARE_OK",
            Status::SHARE_ERR_INVALID_ARGUMENT => "SHARE_ERR_INVALID_ARGUMENT",
            Status::SHARE_ERR_NOT_INITIALIZED => "SHARE_ERR_NOT_INITIALIZED",
            Status::SHARE_ERR_ALREADY_INITIALIZED => "SHARE_ERR_ALREADY_INITIALIZED",
            Status::SHARE_ERR_NETWORK => "SHARE_ERR_NETWORK",
            Status::SHARE_ERR_HTTP_STATUS => "SHARE_ERR_HTTP_STATUS",
            Status::SHARE_ERR_BAD_RESPONSE => "SHARE_ERR_BAD_RESPONSE",
            Status::SHARE_ERR_TIMEOUT => "SHARE_ERR_TIMEOUT",
            Status::SHARE_ERR_QUEUE_FULL => "SHARE_ERR_QUEUE_FULL",
            Status::SHARE_ERR_PANIC => "SHARE_ERR_PANIC",
        }
    }
}

/// A failed operation: the status the C caller gets and the message `share_last_error` shows.
/// Messages never contain a share secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub status: Status,
    pub message: String,
}

impl Error {
    pub fn new(status: Status, message: impl Into<String>) -> Self {
        Error {
            status,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(Status::SHARE_ERR_INVALID_ARGUMENT, message)
    }

    /// SHARE_ERR_NOT_INITIALIZED with the reason the library cannot run.
    pub fn not_initialized_because(why: &str) -> Self {
        Error::new(Status::SHARE_ERR_NOT_INITIALIZED, why)
    }

    pub fn not_initialized() -> Self {
        Error::new(
            Status::SHARE_ERR_NOT_INITIALIZED,
            "the library is not running: call share_init first (or again after share_shutdown)",
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status.name(), self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
