//! The journal: the spool records (src/spool/record.rs) that the engine's own methods push as
//! they change its state (a push, no I/O), in the order of those changes. The spool thread
//! swaps them out under the runtime's lock and appends them to the log after it.
//!
//! A content's record replaces its key's record still waiting here (a streamed key is
//! rewritten far faster than the thread writes), so the older text is freed at once and never
//! written; a `Remove` ends that: a content must not move before it.

use std::sync::Arc;

use foldhash::HashMap;

use crate::spool::{Content, Record};

/// The records pushed since the spool thread last took them. Off (nothing kept) without a
/// spool.
#[derive(Debug, Default)]
pub struct Journal {
    on: bool,
    records: Vec<Record>,
    /// Where each key's content record is in `records`.
    index: HashMap<Arc<str>, usize>,
    /// Spool sequence number = `base` + the queue's: above every number an older run wrote.
    base: u64,
    /// Records pushed, ever (durability waits compare it with what the thread has written).
    pushed: u64,
}

impl Journal {
    /// Turns the journal on; this run's sequence numbers start above `base`.
    pub(super) fn start(&mut self, base: u64) {
        self.on = true;
        self.base = base;
    }

    pub fn is_on(&self) -> bool {
        self.on
    }

    /// The spool's number for the queue's write number `seq`.
    pub(super) fn seq(&self, seq: u64) -> u64 {
        self.base + seq
    }

    pub(super) fn push(&mut self, record: Record) {
        if !self.on {
            return;
        }
        if matches!(record, Record::Remove { .. }) {
            self.index.clear();
        }
        self.records.push(record);
        self.pushed += 1;
    }

    pub(super) fn push_content(&mut self, content: Content) {
        if !self.on {
            return;
        }
        self.pushed += 1;
        match self.index.get(&content.key) {
            Some(&at) => self.records[at] = Record::Content(content),
            None => {
                self.index.insert(content.key.clone(), self.records.len());
                self.records.push(Record::Content(content));
            }
        }
    }

    /// Records pushed, ever.
    pub fn pushed(&self) -> u64 {
        self.pushed
    }

    /// Swaps the waiting records (and their index) with the caller's empty ones.
    pub fn swap(&mut self, records: &mut Vec<Record>, index: &mut HashMap<Arc<str>, usize>) {
        std::mem::swap(&mut self.records, records);
        std::mem::swap(&mut self.index, index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(key: &str, seq: u64) -> Content {
        Content {
            seq,
            key: key.into(),
            session: "s".into(),
            text: format!("v{seq}").into(),
        }
    }

    fn shown(j: &Journal) -> Vec<String> {
        j.records
            .iter()
            .map(|r| match r {
                Record::Content(c) => format!("{}={}", c.key, c.seq),
                Record::Ack { key, seq } => format!("ack {key}={seq}"),
                Record::Remove { session } => format!("remove {session}"),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_newer_content_replaces_the_waiting_one_in_place_but_never_moves_before_a_remove() {
        let mut j = Journal::default();
        j.start(0);
        j.push_content(content("k", 1));
        j.push(Record::Ack {
            key: "j".into(),
            seq: 0,
        });
        j.push_content(content("k", 2));
        j.push_content(content("m", 3));
        assert_eq!(shown(&j), ["k=2", "ack j=0", "m=3"]);
        j.push(Record::Remove {
            session: "s".into(),
        });
        j.push_content(content("k", 4));
        assert_eq!(shown(&j), ["k=2", "ack j=0", "m=3", "remove s", "k=4"]);
        assert_eq!(j.pushed, 6);
    }

    #[test]
    fn without_a_spool_nothing_is_kept() {
        let mut j = Journal::default();
        j.push(Record::Remove {
            session: "s".into(),
        });
        j.push_content(content("k", 1));
        assert!(j.records.is_empty() && j.pushed == 0);
    }
}
