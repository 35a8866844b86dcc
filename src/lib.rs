//! opencode-share: a native client for opencode's session-sharing service, with a C ABI.
//!
//! `ffi` is the C boundary; `api` is the same API in safe Rust; `runtime` owns the threads; the
//! other modules are the pure rules they use. ARCHITECTURE.md has the map.

pub mod api;
pub mod config;
pub mod content;
pub mod error;
pub mod events;
pub mod ffi;
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

pub use error::{Error, Status};
