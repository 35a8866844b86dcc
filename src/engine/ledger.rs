//! The ledger of shares (issue 19): every share the library created or was told of, with its
//! URL, secret, times and state, kept until the service confirmed its deletion, so that no
//! share is orphaned when its host forgets the session, crashes or restarts. Pure state beside
//! the registry (which holds only the shares syncs go to); the engine's methods change both and
//! journal what changed, and with `spool_dir` the spool keeps it across runs
//! (`src/spool/live.rs` rebuilds the same entries from the records).
//!
//! An entry belongs to the service it was made with (base URL and protocol): a run configured
//! for another service lists it but neither syncs to it nor sends its delete there.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use foldhash::HashMap;
use serde_json::{Value, json};

use crate::registry::{Secret, Share};
use crate::spool::{self, Entry, Record};

/// How often at most a share's "last synced" time is journaled (the entry in memory is exact).
const SYNCED_EVERY_MS: u64 = 1000;

/// The shares of the ledger, by session id. See the module documentation.
#[derive(Debug)]
pub struct Ledger {
    entries: HashMap<Arc<str>, Entry>,
    /// When each share's "last synced" time was last journaled.
    journaled_synced: HashMap<Arc<str>, u64>,
    service: Arc<str>,
    protocol: Arc<str>,
    /// A monotonic instant and the wall-clock time at it, to date the engine's `Instant`s.
    clock: (Instant, u64),
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger::new("", "v1")
    }
}

/// Milliseconds since the Unix epoch now (0 if the clock is before it).
fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Ledger {
    /// An empty ledger of a run that speaks `protocol` to the service at `service`.
    pub fn new(service: &str, protocol: &str) -> Ledger {
        Ledger {
            entries: HashMap::default(),
            journaled_synced: HashMap::default(),
            service: Arc::from(service),
            protocol: Arc::from(protocol),
            clock: (Instant::now(), wall_ms()),
        }
    }

    /// `now` as milliseconds since the Unix epoch.
    pub fn unix_ms(&self, now: Instant) -> u64 {
        let (at, wall) = self.clock;
        match now.checked_duration_since(at) {
            Some(after) => wall + after.as_millis() as u64,
            None => wall.saturating_sub(at.duration_since(now).as_millis() as u64),
        }
    }

    /// True if `share` was made with this run's service (or by a version 1 spool, which did not
    /// say: those are taken to be this run's).
    pub fn belongs_here(&self, share: &spool::Share) -> bool {
        let same =
            |mine: &Arc<str>, theirs: &Option<Arc<str>>| theirs.as_ref().is_none_or(|t| t == mine);
        same(&self.service, &share.service) && same(&self.protocol, &share.protocol)
    }

    /// Takes the entries a spool held at `share_init`.
    pub fn recover(&mut self, entries: Vec<Entry>) {
        for entry in entries {
            self.journaled_synced
                .insert(entry.share.session.clone(), entry.synced);
            self.entries.insert(entry.share.session.clone(), entry);
        }
    }

    pub fn get(&self, session: &str) -> Option<&Entry> {
        self.entries.get(session)
    }

    /// Every entry, by session id.
    pub fn entries(&self) -> Vec<Entry> {
        let mut entries: Vec<Entry> = self.entries.values().cloned().collect();
        entries.sort_by(|a, b| a.share.session.cmp(&b.share.session));
        entries
    }

    /// A share created or told of: the entry (new, or the session's, replaced) and its record.
    /// Told again of the same share, it keeps when it was first known, its URL and when it
    /// last synced.
    pub fn shared(
        &mut self,
        session: &str,
        share: &Share,
        url: Option<Arc<str>>,
        now: Instant,
    ) -> Record {
        let old = self
            .entries
            .get(session)
            .filter(|old| old.share.secret == share.secret);
        let entry = Entry {
            share: spool::Share {
                session: Arc::from(session),
                secret: share.secret.clone(),
                id: share
                    .id
                    .clone()
                    .or_else(|| old.and_then(|o| o.share.id.clone())),
                url: url.or_else(|| old.and_then(|o| o.share.url.clone())),
                created: old.map_or_else(|| self.unix_ms(now), |o| o.share.created),
                service: Some(self.service.clone()),
                protocol: Some(self.protocol.clone()),
            },
            removing: false,
            synced: old.map_or(0, |o| o.synced),
        };
        let record = Record::Share(entry.share.clone());
        self.entries.insert(entry.share.session.clone(), entry);
        record
    }

    /// The session's removal was asked for, with `secret`: its entry (made now if the ledger did
    /// not have the share, or if the secret differs) is marked as being removed. The records to
    /// journal.
    pub fn removing(&mut self, session: &str, secret: &Secret, now: Instant) -> Vec<Record> {
        let mut records = Vec::with_capacity(2);
        if self
            .entries
            .get(session)
            .is_none_or(|e| e.share.secret != *secret)
        {
            let share = Share::with_secret(secret.clone());
            records.push(self.shared(session, &share, None, now));
        }
        let entry = self.entries.get_mut(session).expect("just made");
        entry.removing = true;
        records.push(Record::Remove {
            session: entry.share.session.clone(),
        });
        records
    }

    /// The service accepted a content of the session: its record, if one is due (at most one a
    /// second per share).
    pub fn synced(&mut self, session: &str, now: Instant) -> Option<Record> {
        let at = self.unix_ms(now);
        let entry = self.entries.get_mut(session)?;
        entry.synced = entry.synced.max(at);
        let last = self
            .journaled_synced
            .entry(entry.share.session.clone())
            .or_default();
        if at < last.saturating_add(SYNCED_EVERY_MS) {
            return None;
        }
        *last = at;
        Some(Record::Synced {
            session: entry.share.session.clone(),
            at,
        })
    }

    /// The service confirmed the deletion of the session's share (2xx, 404 or 410): its entry
    /// leaves the ledger if it was being removed (one made again since stays). Its record.
    pub fn deleted(&mut self, session: &str) -> Option<Record> {
        if !self.entries.get(session).is_some_and(|e| e.removing) {
            return None;
        }
        let (session, _) = self.entries.remove_entry(session)?;
        self.journaled_synced.remove(&session);
        Some(Record::Deleted { session })
    }
}

/// The share id of an entry: the one the service gave, or the last 8 characters of the session
/// id (what both protocols' services key a share by).
pub fn share_id(share: &spool::Share) -> Arc<str> {
    share.id.clone().unwrap_or_else(|| {
        let s = &*share.session;
        let start = s.char_indices().rev().nth(7).map_or(0, |(i, _)| i);
        Arc::from(&s[start..])
    })
}

/// The state an entry is in, as `share_list` names it.
pub fn state(entry: &Entry) -> &'static str {
    if entry.removing { "removing" } else { "shared" }
}

/// The ledger as `share_list` hands it over: a JSON array of `{"session","id","url",
/// "created","synced","state","service","protocol"}` by session id, times in milliseconds
/// since the epoch (null when unknown). Never the secret: whoever reads the list (a UI, a log)
/// has no use for it, and the library and the `opencode-share` command remove from the ledger
/// by session id.
pub fn to_json(entries: &[Entry]) -> String {
    let time = |ms: u64| if ms == 0 { Value::Null } else { json!(ms) };
    let list: Vec<Value> = entries
        .iter()
        .map(|e| {
            let s = &e.share;
            json!({
                "session": &*s.session,
                "id": &*share_id(s),
                "url": s.url.as_deref(),
                "created": time(s.created),
                "synced": time(e.synced),
                "state": state(e),
                "service": s.service.as_deref(),
                "protocol": s.protocol.as_deref(),
            })
        })
        .collect();
    Value::Array(list).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const SECRET: &str = "7e1d5f-ledger-secret";

    fn share(secret: &str) -> Share {
        Share::with_secret(Secret::new(secret))
    }

    #[test]
    fn told_again_keeps_created_url_and_synced_and_a_new_secret_starts_over() {
        let mut l = Ledger::new("http://127.0.0.1:1", "v1");
        let t0 = Instant::now();
        l.shared("ses_1", &share(SECRET), Some("http://x/s/1".into()), t0);
        let created = l.get("ses_1").unwrap().share.created;
        assert!(created > 0);
        assert!(l.synced("ses_1", t0 + Duration::from_secs(2)).is_some());
        // within a second of the last: exact in memory, not journaled
        assert!(
            l.synced("ses_1", t0 + Duration::from_millis(2500))
                .is_none()
        );
        l.shared("ses_1", &share(SECRET), None, t0 + Duration::from_secs(9));
        let e = l.get("ses_1").unwrap();
        assert_eq!(
            (e.share.created, e.share.url.as_deref(), e.synced),
            (created, Some("http://x/s/1"), created + 2500)
        );
        l.shared("ses_1", &share("other"), None, t0 + Duration::from_secs(9));
        let e = l.get("ses_1").unwrap();
        assert_eq!((e.share.url.as_deref(), e.synced), (None, 0));
        assert_eq!(e.share.created, created + 9000);
    }

    #[test]
    fn an_entry_leaves_only_once_its_removal_is_confirmed() {
        let mut l = Ledger::default();
        let now = Instant::now();
        l.shared("ses_1", &share(SECRET), None, now);
        assert!(l.deleted("ses_1").is_none(), "not being removed");
        // removal of a share the ledger never had: made, then marked
        let records = l.removing("ses_2", &Secret::new(SECRET), now);
        assert!(matches!(
            records.as_slice(),
            [Record::Share(_), Record::Remove { .. }]
        ));
        assert_eq!(l.removing("ses_1", &Secret::new(SECRET), now).len(), 1);
        assert_eq!(state(l.get("ses_1").unwrap()), "removing");
        assert!(l.deleted("ses_1").is_some());
        assert!(l.get("ses_1").is_none());
        assert_eq!(l.entries().len(), 1);
    }

    #[test]
    fn the_list_has_no_secret_and_names_ids_and_states() {
        let mut l = Ledger::new("http://127.0.0.1:1", "v1");
        let now = Instant::now();
        l.shared(
            "ses_abcdefghijklmnop12345678",
            &share(SECRET),
            Some("http://127.0.0.1:1/s/12345678".into()),
            now,
        );
        l.removing("ses_b", &Secret::new(SECRET), now);
        let json = to_json(&l.entries());
        assert!(!json.contains(SECRET), "{json}");
        let v: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v[0]["id"], "12345678");
        assert_eq!(v[0]["state"], "shared");
        assert_eq!(v[0]["synced"], Value::Null);
        assert!(v[0]["created"].as_u64().unwrap() > 0);
        assert_eq!(v[1]["id"], "ses_b");
        assert_eq!(v[1]["state"], "removing");
        assert_eq!(v[1]["service"], "http://127.0.0.1:1");
    }

    #[test]
    fn entries_of_another_service_do_not_belong_here() {
        let l = Ledger::new("http://a", "v1");
        let mut s = spool::Share {
            session: "s".into(),
            secret: Secret::new(SECRET),
            id: None,
            url: None,
            created: 0,
            service: None,
            protocol: None,
        };
        assert!(l.belongs_here(&s), "a version 1 record");
        s.service = Some("http://a".into());
        s.protocol = Some("v1".into());
        assert!(l.belongs_here(&s));
        s.protocol = Some("next".into());
        assert!(!l.belongs_here(&s));
        s.protocol = Some("v1".into());
        s.service = Some("http://b".into());
        assert!(!l.belongs_here(&s));
    }
}
