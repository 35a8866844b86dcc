//! The error every safe module returns: a [`Status`] (the kind) and a message.

use std::fmt;

/// What a call reports, as the library's own type: mapped to the C API's `share_status` only
/// at the C edge (`ffi.rs`). The variants carry the C names so that a Rust host and the header's
/// manual say the same thing.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    SHARE_OK,
    SHARE_ERR_INVALID_ARGUMENT,
    SHARE_ERR_NOT_INITIALIZED,
    SHARE_ERR_ALREADY_INITIALIZED,
    SHARE_ERR_NETWORK,
    SHARE_ERR_HTTP_STATUS,
    SHARE_ERR_BAD_RESPONSE,
    SHARE_ERR_TIMEOUT,
    SHARE_ERR_QUEUE_FULL,
    SHARE_ERR_PANIC,
}

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
