//! `share_stats`: one runtime's figures as JSON.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::instance::Instance;
use super::spool_writer;
use crate::events::hub;

/// `stats.service`: "up" or "down", and for how long (`for_ms`; null: up since the start).
fn service(down: Option<Instant>, up: Option<Instant>) -> serde_json::Value {
    let (state, since) = match down {
        Some(at) => ("down", Some(at)),
        None => ("up", up),
    };
    let for_ms = since.map(|at| at.elapsed().as_millis() as u64);
    serde_json::json!({ "state": state, "for_ms": for_ms })
}

impl Instance {
    /// The stats as JSON.
    pub fn stats_json(&self, running: bool) -> String {
        let engine = self.lock();
        let (queue, n) = (engine.queue(), engine.counters);
        let c = queue.counts();
        serde_json::json!({
            "running": running,
            "url": self.config.shown_url,
            "protocol": self.protocol.name(),
            "requests": n.requests,
            "queued": c.queued,
            "sent": c.sent,
            "coalesced": c.coalesced,
            "retried": c.retried,
            "failed": c.failed,
            "dropped": c.dropped,
            "rejected": self.rejected.load(Ordering::Relaxed),
            "ignored": self.ignored.load(Ordering::Relaxed),
            "refused_shares": queue.refused_shares(),
            "refused_contents": queue.held(),
            "too_large": n.too_large,
            "unsafe": n.unsafe_contents,
            "panics": n.panics,
            "redacted": n.redacted,
            "appends": {
                "sent": n.appends,
                "refused": n.append_refusals,
                "acked_bytes": engine.acked_bytes(),
            },
            "pending_keys": queue.pending_keys(),
            "pending_bytes": queue.pending_bytes(),
            "in_flight": queue.in_flight(),
            "shares": engine.registry().len(),
            "events_lost": hub().lost(),
            "spool": spool_writer::stats(&self.spool),
            "service": service(queue.service_down_since(), queue.service_up_since()),
        })
        .to_string()
    }
}
