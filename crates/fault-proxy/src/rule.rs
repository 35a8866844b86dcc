//! Which requests a fault applies to, how many times, and what it is.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// What the proxy does to a matching request instead of (or before) forwarding it.
#[derive(Clone, Debug)]
pub enum Action {
    /// Answer with `status` (and `Retry-After: seconds`), never reaching the server.
    Status {
        status: u16,
        retry_after: Option<u64>,
    },
    /// Reset the connection (TCP RST) without an answer.
    Reset,
    /// Close the connection (FIN) without an answer.
    Close,
    /// Answer with `status` and this JSON body, never reaching the server.
    Reply { status: u16, body: String },
    /// Answer 200 announcing this many body bytes, send a few, then close.
    HugeBody(u64),
    /// Answer 200 with a chunked body that never ends (until the client goes, or 256 MiB).
    EndlessBody,
    /// Wait this long, then forward.
    Delay(Duration),
    /// Wait until the gate is released, then forward.
    Hold(Gate),
}

/// A fault for requests whose path (with query) starts with a prefix, optionally of one method
/// and with a body containing a text, used a number of times (default once).
#[derive(Clone, Debug)]
pub struct Rule {
    prefix: String,
    method: Option<String>,
    containing: Option<String>,
    left: usize,
    /// a gate the request waits at before its action
    first: Option<Gate>,
    /// (percent, xorshift state): applies to a matching request with this chance, seeded
    chance: Option<(u64, u64)>,
    action: Option<Action>,
}

impl Rule {
    /// Requests whose path starts with `prefix` ("/" for all).
    pub fn path(prefix: &str) -> Rule {
        Rule {
            prefix: prefix.to_owned(),
            method: None,
            containing: None,
            left: 1,
            first: None,
            chance: None,
            action: None,
        }
    }
    /// Only requests of this method (GET, POST, DELETE...).
    pub fn method(mut self, method: &str) -> Rule {
        self.method = Some(method.to_ascii_uppercase());
        self
    }
    /// Only requests whose body contains `text` (a session id, a key).
    pub fn containing(mut self, text: &str) -> Rule {
        self.containing = Some(text.to_owned());
        self
    }
    /// Applies to a matching request with a chance of `percent` in 100, drawn from a generator
    /// seeded with `seed` (the same seed, the same draws); `times` still bounds the uses.
    pub fn sometimes(mut self, percent: u64, seed: u64) -> Rule {
        self.chance = Some((percent, seed | 1));
        self
    }
    /// Applies to the next `n` matching requests.
    pub fn times(mut self, n: usize) -> Rule {
        self.left = n;
        self
    }
    pub fn status(self, status: u16) -> Rule {
        self.action(Action::Status {
            status,
            retry_after: None,
        })
    }
    /// Status 429 or 503 with `Retry-After: seconds`.
    pub fn status_retry_after(self, status: u16, seconds: u64) -> Rule {
        self.action(Action::Status {
            status,
            retry_after: Some(seconds),
        })
    }
    /// Answers `status` with the JSON `body` (an answer the server would not give).
    pub fn reply(self, status: u16, body: &str) -> Rule {
        self.action(Action::Reply {
            status,
            body: body.to_owned(),
        })
    }
    pub fn reset(self) -> Rule {
        self.action(Action::Reset)
    }
    pub fn close(self) -> Rule {
        self.action(Action::Close)
    }
    /// 200 announcing `bytes` of body, cut short.
    pub fn huge_body(self, bytes: u64) -> Rule {
        self.action(Action::HugeBody(bytes))
    }
    /// 200 with a body that never ends.
    pub fn endless_body(self) -> Rule {
        self.action(Action::EndlessBody)
    }
    pub fn delay(self, d: Duration) -> Rule {
        self.action(Action::Delay(d))
    }
    pub fn hold(self, gate: &Gate) -> Rule {
        self.action(Action::Hold(gate.clone()))
    }
    /// Waits at `gate` before the rule's action (a status, a reset...): a failure that comes
    /// when the test says.
    pub fn held_at(mut self, gate: &Gate) -> Rule {
        self.first = Some(gate.clone());
        self
    }
    fn action(mut self, action: Action) -> Rule {
        self.action = Some(action);
        self
    }

    /// Uses the rule once on a matching request; the gate to wait at first and its action, or
    /// None.
    pub(crate) fn take(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Option<(Option<Gate>, Action)> {
        let contains = |text: &String| {
            let text = text.as_bytes();
            body.windows(text.len().max(1)).any(|w| w == text)
        };
        if self.left == 0
            || !path.starts_with(&self.prefix)
            || self.method.as_deref().is_some_and(|m| m != method)
            || self.containing.as_ref().is_some_and(|t| !contains(t))
        {
            return None;
        }
        if let Some((percent, state)) = &mut self.chance {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            if *state % 100 >= *percent {
                return None;
            }
        }
        let action = self.action.clone()?;
        self.left -= 1;
        Some((self.first.clone(), action))
    }
}

/// Holds requests until released; counts how many are waiting at it.
#[derive(Clone, Debug, Default)]
pub struct Gate(Arc<GateState>);

#[derive(Debug, Default)]
struct GateState {
    released: AtomicBool,
    waiting: AtomicUsize,
    arrived: AtomicUsize,
    notify: Notify,
}

impl Gate {
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Lets every held request, and every later one, through.
    pub fn release(&self) {
        self.0.released.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    /// Requests waiting at the gate now.
    pub fn waiting(&self) -> usize {
        self.0.waiting.load(Ordering::SeqCst)
    }

    /// Requests that arrived at the gate so far (held or passed).
    pub fn arrived(&self) -> usize {
        self.0.arrived.load(Ordering::SeqCst)
    }

    /// Waits until `n` requests have arrived at the gate (held or passed), at most `timeout`.
    pub fn wait_arrived(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.0.arrived.load(Ordering::SeqCst) < n {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    }

    pub(crate) async fn pass(&self) {
        self.0.arrived.fetch_add(1, Ordering::SeqCst);
        self.0.waiting.fetch_add(1, Ordering::SeqCst);
        loop {
            let notified = self.0.notify.notified();
            if self.0.released.load(Ordering::SeqCst) {
                break;
            }
            notified.await;
        }
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}
