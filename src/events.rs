//! Events for the host: what was synced, retried, failed or dropped. They are buffered only
//! while the host has a sink, taken as one JSON array, and announced by a wake-up that the
//! runtime's notifier thread delivers (workers never call into the host).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::locks::lock;

/// Events kept for the host before it takes them; older ones are kept, newer ones counted lost.
pub const CAPACITY: usize = 65_536;

/// Why contents were given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The service refused the content with a 4xx other than 401/403/404/408/429.
    Rejected,
    /// The content is larger than `max_content_bytes`: never uploaded.
    TooLarge,
    /// The share's secret could not be removed from the content: never uploaded.
    Unsafe,
    /// The library panicked while sending it (a bug): not retried.
    Panic,
    /// The service answered 401/403/404: the share is gone.
    Unshared,
    /// `share_remove` purged the session's pending work.
    Removed,
    /// `share_shutdown`'s deadline came first, or the content's share was refused then.
    Shutdown,
    /// `share_sync` answered SHARE_ERR_QUEUE_FULL.
    QueueFull,
}

/// One event. Never holds a secret: keys, session ids, statuses and network error text only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The service accepted the newest content of `key` (the original's "synced" log line).
    Synced { key: Arc<str>, status: u16 },
    /// An attempt failed and `key` will be tried again after `delay_ms`.
    Retry {
        key: Arc<str>,
        retry: u32,
        delay_ms: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// An attempt failed for good (a `dropped` event follows).
    Failed {
        key: Arc<str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// `count` contents were given up.
    Dropped {
        reason: Reason,
        #[serde(skip_serializing_if = "Option::is_none")]
        key: Option<Arc<str>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        session: Option<Arc<str>>,
        count: u64,
        /// The content's size, for `too_large`.
        #[serde(skip_serializing_if = "Option::is_none")]
        bytes: Option<u64>,
        /// Why, for `unsafe` and `panic` (never holds the secret).
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// Credentials in `key`'s content were replaced by markers before upload: the rules that
    /// matched (never the values) and how many.
    Redacted {
        key: Arc<str>,
        rules: Vec<Arc<str>>,
        count: u64,
    },
    /// The service answered 401/403/404 for `session`: its share is forgotten.
    Unshared { session: Arc<str>, status: u16 },
    /// The service answered 500 to `count` requests in a row of `session`'s share: it counts as
    /// refused (a wrong or stale secret, a deleted share). Its contents wait, flushes no longer
    /// wait for them, and one request per `retry_max_ms` probes it; raised once per refusal.
    Refused { session: Arc<str>, count: u32 },
    /// A request of refused `session`'s share succeeded: it is live again, its contents go.
    Resumed { session: Arc<str> },
    /// The service failed `failures` requests in a row (network errors, timeouts, 408, 429,
    /// 502-504): it counts as down. Until a request succeeds, one request at a time probes it
    /// (the oldest waiting content), spaced by the backoff up to `retry_max_ms`; writes keep
    /// coalescing and nothing else is sent.
    Outage { failures: u32 },
    /// A request succeeded after an outage of `duration_ms`: every waiting content goes now.
    /// `held_back`: requests the outage did not make (contents that became ready to go, by a
    /// write or a retry come due, while the service was down).
    Recovered { duration_ms: u64, held_back: u64 },
    /// `count` events did not fit in the buffer and are missing before this one: a host that
    /// tracks keys from events must re-check them.
    Lost { count: u64 },
    /// The durable spool (`spool_dir`): at `share_init`, `skipped_bytes` after its last whole
    /// record were cut off (a torn last write, damage or garbage); or writing, syncing or
    /// compacting it failed (`error`: the write is retried, nothing accepted is dropped).
    Spool {
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped_bytes: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
}

/// The host's sink: a wake-up telling it to take the events.
pub type Sink = Arc<dyn Fn() + Send + Sync>;
/// How a running runtime gets the sink called on its notifier thread.
pub type Courier = Arc<dyn Fn() + Send + Sync>;

#[derive(Default)]
struct Buffer {
    events: VecDeque<Event>,
    /// Events lost since the host last took them.
    lost_since_take: u64,
    sink: Option<Sink>,
    courier: Option<Courier>,
}

/// The global event buffer.
pub struct Hub {
    buffer: Mutex<Buffer>,
    /// True while the host has a sink: only then are events kept.
    enabled: AtomicBool,
    /// A wake-up is on its way and the host has not taken the events since.
    notified: AtomicBool,
    lost: AtomicU64,
}

/// Static: the host's event buffer belongs to the process, not a runtime (its sink is set before
/// `share_init`, and the events of a shutdown are taken after it).
static HUB: Hub = Hub {
    buffer: Mutex::new(Buffer {
        events: VecDeque::new(),
        lost_since_take: 0,
        sink: None,
        courier: None,
    }),
    enabled: AtomicBool::new(false),
    notified: AtomicBool::new(false),
    lost: AtomicU64::new(0),
};

/// The process's hub.
pub fn hub() -> &'static Hub {
    &HUB
}

impl Hub {
    /// Sets the host's sink; events are kept from now on. None stops keeping them and forgets
    /// those buffered.
    pub fn set_sink(&self, sink: Option<Sink>) {
        let mut buffer = lock(&self.buffer);
        self.enabled.store(sink.is_some(), Ordering::SeqCst);
        if sink.is_none() {
            buffer.events.clear();
            buffer.lost_since_take = 0;
        }
        buffer.sink = sink;
        self.notified.store(false, Ordering::SeqCst);
    }

    /// The host's sink, for the notifier thread to call.
    pub fn sink(&self) -> Option<Sink> {
        lock(&self.buffer).sink.clone()
    }

    /// Sets how wake-ups reach the host (None while no runtime runs: events wait).
    pub fn set_courier(&self, courier: Option<Courier>) {
        lock(&self.buffer).courier = courier;
        self.notified.store(false, Ordering::SeqCst);
    }

    /// Records events, if the host listens, and sends one wake-up per batch it has not taken.
    pub fn emit(&self, events: impl IntoIterator<Item = Event>) {
        if self.record(events) {
            self.wake();
        }
    }

    /// Records events, if the host listens, without waking anyone: true when a wake-up must
    /// follow ([`Hub::wake`], called with no lock held). The buffer's lock is a leaf: code
    /// holding the runtime's state lock may record.
    pub fn record(&self, events: impl IntoIterator<Item = Event>) -> bool {
        if !self.enabled.load(Ordering::Relaxed) {
            return false;
        }
        let buffer = &mut *lock(&self.buffer);
        for event in events {
            if buffer.events.len() >= CAPACITY {
                self.lost.fetch_add(1, Ordering::Relaxed);
                buffer.lost_since_take += 1;
            } else {
                buffer.events.push_back(event);
            }
        }
        if buffer.events.is_empty() || buffer.courier.is_none() {
            return false;
        }
        // one wake-up per batch the host has not taken yet
        !self.notified.swap(true, Ordering::SeqCst)
    }

    /// Sends the wake-up [`Hub::record`] asked for (a channel send to the notifier thread;
    /// never the host itself), outside every lock.
    pub fn wake(&self) {
        let courier = lock(&self.buffer).courier.clone();
        if let Some(courier) = courier {
            courier();
        }
    }

    /// Takes every buffered event, oldest first, and a `lost` event last if some did not fit.
    pub fn take(&self) -> Vec<Event> {
        let mut buffer = lock(&self.buffer);
        self.notified.store(false, Ordering::SeqCst);
        let mut events: Vec<Event> = buffer.events.drain(..).collect();
        let lost = std::mem::take(&mut buffer.lost_since_take);
        if lost > 0 {
            events.push(Event::Lost { count: lost });
        }
        events
    }

    /// Events that did not fit in the buffer, since the process started.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }
}

/// The events as one JSON array.
pub fn to_json(events: &[Event]) -> String {
    serde_json::to_string(events).expect("events serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_with_their_type() {
        let json = to_json(&[
            Event::Synced {
                key: "session/info/ses_1".into(),
                status: 200,
            },
            Event::Retry {
                key: "k".into(),
                retry: 2,
                delay_ms: 40,
                status: None,
                error: Some("reset".into()),
            },
            Event::Dropped {
                reason: Reason::TooLarge,
                key: Some("k".into()),
                session: None,
                count: 1,
                bytes: Some(200_000),
                error: None,
            },
        ]);
        assert_eq!(
            json,
            r#"[{"type":"synced","key":"session/info/ses_1","status":200},{"type":"retry","key":"k","retry":2,"delay_ms":40,"error":"reset"},{"type":"dropped","reason":"too_large","key":"k","count":1,"bytes":200000}]"#
        );
    }

    #[test]
    fn events_that_do_not_fit_are_reported_by_one_lost_event_at_the_next_take() {
        let hub = Hub {
            buffer: Mutex::new(Buffer::default()),
            enabled: AtomicBool::new(false),
            notified: AtomicBool::new(false),
            lost: AtomicU64::new(0),
        };
        hub.set_sink(Some(Arc::new(|| {})));
        let synced = |i: usize| Event::Synced {
            key: format!("session/part/s/m/{i}").into(),
            status: 200,
        };
        hub.emit((0..CAPACITY + 3).map(synced));
        let taken = hub.take();
        assert_eq!(taken.len(), CAPACITY + 1);
        assert_eq!(
            taken[CAPACITY - 1],
            synced(CAPACITY - 1),
            "the oldest events are the ones kept"
        );
        assert_eq!(taken[CAPACITY], Event::Lost { count: 3 });
        assert_eq!(hub.lost(), 3);
        hub.emit([synced(0)]);
        assert_eq!(hub.take(), vec![synced(0)], "the loss is reported once");
    }
}
