//! The durable spool (`spool_dir`): an append-only log of shares and contents in a folder, so
//! that what the service never acknowledged survives a crash or an exit without shutdown and is
//! re-queued by the next `share_init` on the same folder.

pub mod record;

pub use record::{Content, MAX_PAYLOAD, Record, Share};
