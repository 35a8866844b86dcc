//! A recount of the queue's bookkeeping, for tests.

use std::collections::BTreeSet;

use super::Queue;

impl Queue {
    /// Checks the internal bookkeeping against a recount (tests only).
    pub fn check(&self) {
        self.check_totals();
        self.check_entries();
        self.check_health();
    }

    /// Pending and in-flight counts, the flush marks and the lifetime totals.
    fn check_totals(&self) {
        let pending: Vec<_> = self
            .entries
            .values()
            .filter_map(|e| e.pending.as_ref())
            .collect();
        assert_eq!(pending.len(), self.pending_keys);
        assert_eq!(
            pending.iter().map(|t| t.len()).sum::<usize>(),
            self.pending_bytes
        );
        let mut marks: BTreeSet<u64> = self
            .entries
            .values()
            .filter(|e| e.pending.is_some() && !e.held && !e.probe)
            .map(|e| e.position)
            .collect();
        marks.extend(
            self.entries
                .values()
                .filter_map(|e| e.in_flight.as_ref())
                .filter(|f| !f.probe)
                .map(|f| f.mark),
        );
        assert_eq!(marks, self.outstanding);
        let flying = self
            .entries
            .values()
            .filter(|e| e.in_flight.is_some())
            .count();
        assert_eq!(flying, self.in_flight);
        assert!(self.requests_in_flight() <= self.limits.concurrency);
        assert_eq!(self.ready.contents_in_flight(), self.in_flight);
        self.ready.check();
        let c = self.counts;
        assert_eq!(
            c.queued,
            c.sent + c.coalesced + c.dropped + self.pending_keys as u64 + self.in_flight as u64
        );
    }

    /// Each key is where its state says: held, ready or parked.
    fn check_entries(&self) {
        for (k, e) in &self.entries {
            assert!(
                e.pending.is_some() || e.in_flight.is_some(),
                "idle entry {k} kept"
            );
            let refused = self.is_refused(&e.session);
            if e.held {
                assert!(refused, "{k} held for a share that is not refused");
                assert_eq!(self.health[&e.session].held.get(&e.position), Some(k));
                assert!(e.pending.is_some());
            }
            if e.pending.is_some() && refused && !e.probe {
                assert!(e.held, "{k} of a refused share is not held");
            }
            let ready =
                e.pending.is_some() && e.in_flight.is_none() && e.parked_until.is_none() && !e.held;
            assert_eq!(
                self.ready.get(e.position) == Some(k),
                ready,
                "ready set wrong for {k}"
            );
            assert_eq!(
                e.parked_until.is_some(),
                self.waiting.values().any(|w| w == k)
            );
        }
        for at in &self.wakeable {
            assert!(self.waiting.contains_key(at), "wakeable but not parked");
        }
    }

    /// Refused shares have a probe on its way, and the probe schedule matches.
    fn check_health(&self) {
        for (s, h) in &self.health {
            assert!(h.streak > 0 || h.refused, "idle health of {s} kept");
            if h.refused {
                assert!(
                    h.probe_mark.is_some()
                        || h.probe_at.is_some()
                        || h.held.values().all(|k| self.entries[k].in_flight.is_some()),
                    "refused {s} without a probe"
                );
            }
            if let Some(at) = h.probe_at {
                assert!(self.probes.contains(&(at, s.clone())));
            }
        }
        assert_eq!(
            self.probes.len(),
            self.health
                .values()
                .filter(|h| h.probe_at.is_some())
                .count()
        );
    }
}
