//! Flush marks: which writes are still outstanding (a flush waits until none is at or below its
//! mark) and which were given up (each reported by one flush).

use std::sync::Arc;
use std::time::Instant;

use super::{Flight, GIVEN_UP_LOG, Queue};

impl Queue {
    /// Sequence number of the newest content accepted so far.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// True while some content numbered `seq` or lower is still pending or in flight (contents
    /// of refused shares aside: see [`Queue::held_up_to`]).
    pub fn holds_up_to(&self, seq: u64) -> bool {
        self.outstanding.first().is_some_and(|&first| first <= seq)
    }

    /// Takes the count of given-up contents numbered `seq` or lower not yet reported (and any
    /// older ones that outgrew the log): a flush reports each once.
    pub fn take_given_up(&mut self, seq: u64) -> u64 {
        let later = self.given_up.split_off(&seq.saturating_add(1));
        let upto = std::mem::replace(&mut self.given_up, later);
        upto.values().sum::<u64>() + std::mem::take(&mut self.given_up_old)
    }

    pub(super) fn note_given_up(&mut self, position: u64) {
        *self.given_up.entry(position).or_insert(0) += 1;
        if self.given_up.len() > GIVEN_UP_LOG {
            if let Some((_, n)) = self.given_up.pop_first() {
                self.given_up_old += n;
            }
        }
    }

    /// Forgets a dropped flight's mark: a flush's, or its share's probe (another goes now).
    pub(super) fn land_mark(&mut self, session: &Arc<str>, flight: &Flight, now: Instant) {
        if !flight.probe {
            self.outstanding.remove(&flight.mark);
            return;
        }
        if let Some(h) = self.health.get_mut(session) {
            h.probe_mark = None;
            if h.refused {
                self.schedule_probe(session, now);
            }
        }
    }
}
