//! The notifier thread: the only thread that calls into the host (event sink, completions).
//! Workers never do: a host such as koffi blocks the calling thread until its JS has run, and
//! a JS thread waiting in a blocking call on a worker would then wait forever.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crossbeam_channel::{Receiver, Sender};

use super::messages::Notice;
use crate::events::hub;

/// The notifier thread's body; `done` is told when it leaves.
pub fn run(notices: Receiver<Notice>, done: Sender<()>) {
    for notice in notices.iter() {
        match notice {
            Notice::Events => {
                if let Some(sink) = hub().sink() {
                    let _ = catch_unwind(AssertUnwindSafe(|| sink()));
                }
            }
            Notice::Call(call) => {
                let _ = catch_unwind(AssertUnwindSafe(call));
            }
            Notice::Stop => break,
        }
    }
    let _ = done.send(());
}
