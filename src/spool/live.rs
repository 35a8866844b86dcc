//! The live set: what the records read so far still require, i.e. the ledger (each share whose
//! deletion the service has not confirmed, removed or not) and the newest unsettled content of
//! each key of a shared session. Pure state: reading a log and appending both feed it,
//! compaction writes it out, recovery hands it to the runtime.

use std::sync::Arc;

use foldhash::HashMap;

use super::record::{Content, HEADER_LEN, Record, Share};

/// One share of the ledger, as the records left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub share: Share,
    /// Its removal was asked for and the service has not confirmed it: the delete is sent again.
    pub removing: bool,
    /// When the service last accepted a content of it (ms since the epoch; 0: not known).
    pub synced: u64,
}

impl Entry {
    /// The records that rebuild this entry: its share, when it last synced, its removal.
    pub fn records(&self) -> impl Iterator<Item = Record> + '_ {
        let session = &self.share.session;
        std::iter::once(Record::Share(self.share.clone()))
            .chain((self.synced > 0).then(|| Record::Synced {
                session: session.clone(),
                at: self.synced,
            }))
            .chain(self.removing.then(|| Record::Remove {
                session: session.clone(),
            }))
    }

    fn framed_len(&self) -> u64 {
        self.records().map(|r| r.framed_len()).sum()
    }
}

/// Records applied to a live set, and what they left.
#[derive(Debug, Default)]
pub struct Live {
    shares: HashMap<Arc<str>, Entry>,
    contents: HashMap<Arc<str>, Content>,
    /// Framed bytes of every share and content held.
    bytes: u64,
    /// One more than the highest sequence number seen in any record.
    next_seq: u64,
}

impl Live {
    /// Applies one record, in log order.
    pub fn apply(&mut self, record: &Record) {
        match record {
            Record::Share(share) => {
                // told again of the same share: it keeps when it last synced
                let synced = self
                    .shares
                    .get(&share.session)
                    .filter(|old| old.share.secret == share.secret)
                    .map_or(0, |old| old.synced);
                self.put(Entry {
                    share: share.clone(),
                    removing: false,
                    synced,
                });
            }
            Record::Content(c) => {
                self.see(c.seq);
                if self.shares.get(&c.session).is_none_or(|e| e.removing) {
                    return; // its share was never known or is removed: nothing to send it with
                }
                if let Some(old) = self.contents.get(&c.key) {
                    if old.seq >= c.seq {
                        return; // an older write reached the log late: the newer one stays
                    }
                    self.bytes -= old.framed_len();
                }
                self.bytes += c.framed_len();
                self.contents.insert(c.key.clone(), c.clone());
            }
            Record::Ack { key, seq } | Record::Dropped { key, seq } => {
                self.see(*seq);
                if self.contents.get(key).is_some_and(|c| c.seq <= *seq) {
                    let old = self.contents.remove(key).expect("just seen");
                    self.bytes -= old.framed_len();
                }
            }
            Record::Synced { session, at } => {
                if let Some(old) = self.shares.get(session) {
                    let entry = Entry {
                        synced: old.synced.max(*at),
                        ..old.clone()
                    };
                    self.put(entry);
                }
            }
            Record::Deleted { session } => {
                if self.shares.get(session).is_some_and(|e| e.removing) {
                    let old = self.shares.remove(session).expect("just seen");
                    self.bytes -= old.framed_len();
                }
            }
            Record::Remove { session } => {
                if let Some(old) = self.shares.get(session) {
                    let entry = Entry {
                        removing: true,
                        ..old.clone()
                    };
                    self.put(entry);
                }
                let bytes = &mut self.bytes;
                self.contents.retain(|_, c| {
                    let keep = c.session != *session;
                    if !keep {
                        *bytes -= c.framed_len();
                    }
                    keep
                });
            }
        }
    }

    /// Puts (or replaces) a ledger entry, keeping the byte count.
    fn put(&mut self, entry: Entry) {
        self.bytes += entry.framed_len();
        if let Some(old) = self.shares.insert(entry.share.session.clone(), entry) {
            self.bytes -= old.framed_len();
        }
    }

    fn see(&mut self, seq: u64) {
        self.next_seq = self.next_seq.max(seq.saturating_add(1));
    }

    /// The size a log holding only this live set would have (header included).
    pub fn log_len(&self) -> u64 {
        HEADER_LEN + self.bytes
    }

    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub fn share_count(&self) -> usize {
        self.shares.len()
    }

    pub fn content_count(&self) -> usize {
        self.contents.len()
    }

    /// The live shares (not being removed), by session id.
    pub fn shares(&self) -> Vec<Share> {
        self.ledger()
            .into_iter()
            .filter(|e| !e.removing)
            .map(|e| e.share)
            .collect()
    }

    /// Every share of the ledger, removed or not, by session id.
    pub fn ledger(&self) -> Vec<Entry> {
        let mut entries: Vec<Entry> = self.shares.values().cloned().collect();
        entries.sort_by(|a, b| a.share.session.cmp(&b.share.session));
        entries
    }

    /// The newest unsettled content of each key, in write order (by sequence number).
    pub fn contents(&self) -> Vec<Content> {
        let mut contents: Vec<Content> = self.contents.values().cloned().collect();
        contents.sort_by_key(|c| c.seq);
        contents
    }

    /// The live set as records, the ledger first: a log of exactly these rebuilds this live set.
    pub fn records(&self) -> Vec<Record> {
        let ledger = self.ledger();
        let shares = ledger.iter().flat_map(Entry::records);
        shares
            .chain(self.contents().into_iter().map(Record::Content))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Secret;

    fn share(session: &str, secret: &str) -> Record {
        Record::Share(Share {
            session: session.into(),
            secret: Secret::new(secret),
            id: None,
            url: None,
            created: 0,
            service: None,
            protocol: None,
        })
    }

    fn content(seq: u64, key: &str, text: &str) -> Record {
        let session = key.split('/').nth(2).unwrap();
        Record::Content(Content {
            seq,
            key: key.into(),
            session: session.into(),
            text: text.into(),
        })
    }

    fn live(records: &[Record]) -> Live {
        let mut live = Live::default();
        for r in records {
            live.apply(r);
        }
        live
    }

    fn texts(live: &Live) -> Vec<(String, String)> {
        live.contents()
            .iter()
            .map(|c| (c.key.to_string(), c.text.to_string()))
            .collect()
    }

    fn recount(live: &Live) -> u64 {
        HEADER_LEN + live.records().iter().map(Record::framed_len).sum::<u64>()
    }

    #[test]
    fn newest_content_per_key_in_write_order() {
        let l = live(&[
            share("a", "s1"),
            content(1, "session/part/a/m/1", "p1"),
            content(2, "session/info/a", "i1"),
            content(3, "session/part/a/m/1", "p1b"),
            content(2, "session/info/a", "stale duplicate"),
        ]);
        assert_eq!(
            texts(&l),
            [
                ("session/info/a".into(), "i1".into()),
                ("session/part/a/m/1".into(), "p1b".into())
            ]
        );
        assert_eq!(l.next_seq(), 4);
        assert_eq!(l.log_len(), recount(&l));
    }

    #[test]
    fn ack_and_dropped_forget_only_what_they_cover() {
        let l = live(&[
            share("a", "s1"),
            content(1, "session/info/a", "i1"),
            content(2, "session/part/a/m/1", "p1"),
            content(3, "session/part/a/m/1", "p2"),
            Record::Ack {
                key: "session/info/a".into(),
                seq: 1,
            },
            // the ack of p1 arrives after p2 was written: p2 stays
            Record::Ack {
                key: "session/part/a/m/1".into(),
                seq: 2,
            },
        ]);
        assert_eq!(texts(&l), [("session/part/a/m/1".into(), "p2".into())]);
        let mut l = l;
        l.apply(&Record::Dropped {
            key: "session/part/a/m/1".into(),
            seq: 3,
        });
        assert!(texts(&l).is_empty());
        assert_eq!(l.log_len(), recount(&l));
        assert_eq!(l.share_count(), 1);
    }

    #[test]
    fn remove_forgets_the_share_and_its_contents_and_later_orphans() {
        let mut l = live(&[
            share("a", "s1"),
            share("b", "s2"),
            content(1, "session/info/a", "a1"),
            content(2, "session/info/b", "b1"),
            Record::Remove {
                session: "a".into(),
            },
            // a content of a removed (or never shared) session is not kept
            content(3, "session/part/a/m/1", "late"),
            content(4, "session/info/c", "never shared"),
        ]);
        assert_eq!(texts(&l), [("session/info/b".into(), "b1".into())]);
        assert_eq!(
            l.shares().iter().map(|s| &*s.session).collect::<Vec<_>>(),
            ["b"]
        );
        // the removed share stays in the ledger, being removed, until the service confirms it
        let ledger = l.ledger();
        assert_eq!(
            ledger
                .iter()
                .map(|e| (&*e.share.session, e.removing))
                .collect::<Vec<_>>(),
            [("a", true), ("b", false)]
        );
        assert_eq!(l.next_seq(), 5);
        // shared again: only what comes after counts
        l.apply(&share("a", "s3"));
        l.apply(&content(5, "session/info/a", "a2"));
        assert_eq!(texts(&l)[1], ("session/info/a".into(), "a2".into()));
        assert_eq!(l.shares()[0].secret.expose(), "s3");
        assert_eq!(l.log_len(), recount(&l));
    }

    #[test]
    fn the_ledger_keeps_a_removal_until_the_service_confirmed_it() {
        let session: Arc<str> = "a".into();
        let mut l = live(&[
            share("a", "s1"),
            share("b", "s2"),
            // a deletion of a share not being removed changes nothing
            Record::Deleted {
                session: session.clone(),
            },
            Record::Synced {
                session: session.clone(),
                at: 50,
            },
            Record::Synced {
                session: session.clone(),
                at: 40,
            },
            Record::Remove {
                session: session.clone(),
            },
        ]);
        let a = &l.ledger()[0];
        assert_eq!((a.removing, a.synced), (true, 50));
        assert_eq!(l.log_len(), recount(&l));
        assert_eq!(live(&l.records()).ledger(), l.ledger());
        l.apply(&Record::Deleted { session });
        assert_eq!(
            l.ledger()
                .iter()
                .map(|e| &*e.share.session)
                .collect::<Vec<_>>(),
            ["b"]
        );
        assert_eq!(l.log_len(), recount(&l));
    }

    #[test]
    fn a_newer_share_replaces_the_older_and_keeps_contents() {
        let l = live(&[
            share("a", "s1"),
            content(1, "session/info/a", "a1"),
            share("a", "s2"),
        ]);
        assert_eq!(l.share_count(), 1);
        assert_eq!(l.shares()[0].secret.expose(), "s2");
        assert_eq!(l.content_count(), 1);
        assert_eq!(l.log_len(), recount(&l));
    }

    #[test]
    fn records_rebuild_the_same_live_set() {
        let l = live(&[
            share("b", "s2"),
            share("a", "s1"),
            content(7, "session/info/a", "a1"),
            content(3, "session/info/b", "b1"),
            Record::Ack {
                key: "session/info/b".into(),
                seq: 9,
            },
        ]);
        let again = live(&l.records());
        assert_eq!(again.shares(), l.shares());
        assert_eq!(again.contents(), l.contents());
        assert_eq!(again.log_len(), l.log_len());
    }
}
