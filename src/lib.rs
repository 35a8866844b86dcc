//! opencode-share: a native client for opencode's session-sharing service, with a C ABI.
//!
//! The C boundary lives in [`ffi`]; everything else is safe Rust that tests drive directly.
//! See ARCHITECTURE.md for the map of modules and threads.

pub mod config;
pub mod content;
pub mod http;
pub mod protocol;
pub mod error;
pub mod key;
pub mod queue;
pub mod registry;
pub mod retry;

pub use error::{Error, Status};
