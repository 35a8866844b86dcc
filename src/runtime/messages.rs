//! What the runtime's threads send each other: jobs for workers, ticks for the timer, notices
//! for the notifier.

/// Work for the worker threads.
pub enum Job {
    /// Send ready requests until none is left (one token per worker taking part).
    Sync,
    /// Run an asynchronous create or remove.
    Op(Box<dyn FnOnce() + Send>),
    /// Leave the thread.
    Stop,
}

/// Messages for the timer thread.
pub enum Tick {
    /// Something was parked or a deadline set: look at the earliest time again.
    Wake,
    Stop,
}

/// Calls into the host, made by the notifier thread only.
pub enum Notice {
    /// Events are buffered: call the host's sink.
    Events,
    /// Deliver an asynchronous operation's completion.
    Call(Box<dyn FnOnce() + Send>),
    Stop,
}
