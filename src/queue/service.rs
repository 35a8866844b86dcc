//! The service's health, one view per runtime: after [`OUTAGE_AFTER`] failed answers in a row
//! (network errors, timeouts, 408, 429, 502-504; not a share's 500s) the service is down, and
//! the gate lets out one probe at a time (the oldest waiting key, so it carries real content),
//! spaced by the jittered backoff, and nothing else; writes keep coalescing. A success opens the
//! gate: every waiting key goes at once (within `concurrency`). A 429 or a Retry-After closes
//! the gate for the whole service for its wait, down or not.

use std::time::{Duration, Instant};

use super::{Failure, Queue};

/// Failed answers in a row (of any share) after which the service counts as down.
pub const OUTAGE_AFTER: u32 = 3;

/// Longest wait between two probes of a down service (unless it asked for more with a 429 or
/// Retry-After): the keys' own backoff may reach `retry_max_ms`, but a service that is back
/// is found within this, and a dead one gets about one request a second at most.
pub const PROBE_SPACING_MAX: Duration = Duration::from_secs(1);

/// The gate's state.
#[derive(Debug, Default)]
pub(super) struct Service {
    /// Failed answers in a row, of any share, since the last success.
    pub(super) failures: u32,
    /// Since when the service is down (None: up).
    pub(super) down_since: Option<Instant>,
    /// When its last outage ended (None: up since the start).
    pub(super) up_since: Option<Instant>,
    /// No request starts before this (a probe's backoff, or a Retry-After / 429 wait).
    pub(super) gate_at: Option<Instant>,
    /// A probe is under way: nothing else starts while down.
    pub(super) probe_out: bool,
    /// Requests the gate held back during this outage: keys that became ready to go (a new
    /// write, a retry come due) while the service was down.
    pub(super) held_back: u64,
    /// Changes not yet told (taken by the engine after each step).
    pub(super) changes: Vec<ServiceChange>,
}

/// A change of the service's health, to be told as an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceChange {
    /// The gate closed: the service is down after this many failed answers in a row.
    Outage { failures: u32 },
    /// The gate opened: the outage lasted `duration`; `held_back` requests were not made.
    Recovered { duration: Duration, held_back: u64 },
}

impl Queue {
    /// Since when the service is down, or None while it is up.
    pub fn service_down_since(&self) -> Option<Instant> {
        self.service.down_since
    }

    /// When the service's last outage ended, if one did.
    pub fn service_up_since(&self) -> Option<Instant> {
        self.service.up_since
    }

    /// Changes of the service's health since the last call.
    pub fn take_service_changes(&mut self) -> Vec<ServiceChange> {
        std::mem::take(&mut self.service.changes)
    }

    /// True if the gate lets a request start now; while down, the request is a probe.
    pub(super) fn gate_open(&mut self, now: Instant) -> bool {
        let s = &mut self.service;
        if s.gate_at.is_some_and(|at| at > now) {
            return false;
        }
        s.gate_at = None;
        !(s.down_since.is_some() && s.probe_out)
    }

    /// While the gate is closed, or down with a probe under way: no request may start.
    pub(super) fn gated(&self) -> bool {
        let s = &self.service;
        s.gate_at.is_some() || (s.down_since.is_some() && s.probe_out)
    }

    /// While down: makes the oldest waiting key (parked for its retry) ready if it is older
    /// than every ready key, so the probe carries the oldest content.
    pub(super) fn ready_oldest_for_probe(&mut self, now: Instant) {
        if self.service.down_since.is_none() {
            return;
        }
        let Some((&(at, position), _)) = self.waiting.iter().min_by_key(|((_, p), _)| *p) else {
            return;
        };
        if self.ready.first_position().is_some_and(|p| p < position) {
            return;
        }
        let key = &self.waiting[&(at, position)];
        if self.earliest_start(key).is_some_and(|start| start > now) {
            return; // its interval since its last request still runs
        }
        let key = self.waiting.remove(&(at, position)).expect("listed");
        self.wakeable.remove(&(at, position));
        if let Some(e) = self.entries.get_mut(&key) {
            e.parked_until = None;
            let session = e.session.clone();
            self.ready.insert(position, key, session);
        }
    }

    /// A request started now; true if it is the service's probe.
    pub(super) fn note_service_start(&mut self) -> bool {
        let s = &mut self.service;
        if s.down_since.is_some() {
            s.probe_out = true;
        }
        s.down_since.is_some()
    }

    /// A key became ready to go: held back if the service is down.
    pub(super) fn note_ready(&mut self) {
        if self.service.down_since.is_some() {
            self.service.held_back += 1;
        }
    }

    /// A request answered: the service is up. Ends an outage (every waiting key goes now,
    /// within its `min_interval`); true if one ended.
    pub(super) fn service_up(&mut self, now: Instant) -> bool {
        let s = &mut self.service;
        s.failures = 0;
        s.probe_out = false;
        let Some(since) = s.down_since.take() else {
            return false;
        };
        s.up_since = Some(now);
        s.gate_at = None;
        let held_back = std::mem::take(&mut s.held_back);
        s.changes.push(ServiceChange::Recovered {
            duration: now.saturating_duration_since(since),
            held_back,
        });
        let parked: Vec<_> = std::mem::take(&mut self.waiting).into_iter().collect();
        self.wakeable.clear();
        for ((_, position), key) in parked {
            if let Some(e) = self.entries.get_mut(&key) {
                e.parked_until = None;
            }
            self.make_ready(key, position, || now);
        }
        true
    }

    /// A request failed and its keys wait `wait`. An outage or a 429 counts toward the service
    /// being down (a share's 500 does not); a probe's failure, or a wait the service asked for
    /// (`Busy`), sets when the next request may go.
    pub(super) fn service_failed(
        &mut self,
        probe: bool,
        failure: Failure,
        wait: Duration,
        now: Instant,
    ) {
        let busy = failure == Failure::Busy;
        let s = &mut self.service;
        if matches!(failure, Failure::Outage | Failure::Busy) {
            s.failures = s.failures.saturating_add(1);
        }
        if probe {
            s.probe_out = false;
        }
        if s.down_since.is_none() && s.failures >= OUTAGE_AFTER {
            s.down_since = Some(now);
            s.held_back = 0;
            s.changes.push(ServiceChange::Outage {
                failures: s.failures,
            });
            s.gate_at = Some(now + spacing(wait, busy));
        } else if probe || busy {
            let at = now + spacing(wait, busy);
            s.gate_at = Some(s.gate_at.map_or(at, |g| g.max(at)));
        }
    }

    /// A probe ended without a retry (dropped, or its share purged): the next may go now.
    pub(super) fn probe_ended(&mut self) {
        self.service.probe_out = false;
    }

    /// When the gate opens, if it is closed by time.
    pub(super) fn gate_at(&self) -> Option<Instant> {
        self.service.gate_at
    }
}

/// The wait before the next probe: the keys' backoff, at most [`PROBE_SPACING_MAX`] unless the
/// service asked for its wait.
fn spacing(wait: Duration, busy: bool) -> Duration {
    if busy {
        wait
    } else {
        wait.min(PROBE_SPACING_MAX)
    }
}
