//! opencode-share: a native client for opencode's session-sharing service, with a C ABI.
//!
//! `ffi` is the C boundary; `api` is the same API in safe Rust; `runtime` owns the threads;
//! `engine` decides everything, with no threads and no I/O; the other modules are the rules and
//! the I/O they use. ARCHITECTURE.md has the map.

#![deny(unsafe_code)]

pub mod api;
pub mod config;
pub mod content;
pub mod engine;
pub mod error;
pub mod events;
#[allow(unsafe_code)]
pub mod ffi;
#[allow(unsafe_code)]
mod fork;
pub mod http;
pub mod key;
mod locks;
pub mod protocol;
pub mod queue;
pub mod redact;
pub mod registry;
pub mod retry;
pub mod runtime;
pub mod spool;

pub use error::{Error, ErrorKind};
