//! The error every safe module returns: an [`ErrorKind`] and a message.

use std::fmt;

/// What went wrong, as the library's own type. `ffi.rs` alone maps it to the C API's
/// `share_status` codes and names (SPEC.md); a Rust host matches on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A bad argument or configuration (C: SHARE_ERR_INVALID_ARGUMENT).
    InvalidArgument,
    /// The library is not running (C: SHARE_ERR_NOT_INITIALIZED).
    NotInitialized,
    /// The library is running already (C: SHARE_ERR_ALREADY_INITIALIZED).
    AlreadyInitialized,
    /// The service could not be reached (C: SHARE_ERR_NETWORK).
    Network,
    /// The service answered a failure status (C: SHARE_ERR_HTTP_STATUS).
    HttpStatus,
    /// The service's answer is not what the protocol says (C: SHARE_ERR_BAD_RESPONSE).
    BadResponse,
    /// A deadline came with work left (C: SHARE_ERR_TIMEOUT).
    Timeout,
    /// Pending content would pass `max_pending_bytes` (C: SHARE_ERR_QUEUE_FULL).
    QueueFull,
    /// A bug inside the library, caught (C: SHARE_ERR_PANIC).
    Panic,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::NotInitialized => "not initialized",
            ErrorKind::AlreadyInitialized => "already initialized",
            ErrorKind::Network => "network error",
            ErrorKind::HttpStatus => "HTTP status",
            ErrorKind::BadResponse => "bad response",
            ErrorKind::Timeout => "timeout",
            ErrorKind::QueueFull => "queue full",
            ErrorKind::Panic => "panic",
        })
    }
}

/// A failed operation: its kind (the status the C caller gets) and the message
/// `share_last_error` shows. Messages never contain a share secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidArgument, message)
    }

    /// [`ErrorKind::NotInitialized`] with the reason the library cannot run.
    pub fn not_initialized_because(why: &str) -> Self {
        Error::new(ErrorKind::NotInitialized, why)
    }

    pub fn not_initialized() -> Self {
        Error::new(
            ErrorKind::NotInitialized,
            "the library is not running: call share_init first (or again after share_shutdown)",
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
