//! Taking work in: a content write (the locked half of `share_sync`), a share record, a share
//! the service created, and a remove. Each journals what it changed.

use std::sync::Arc;
use std::time::Instant;

use super::{Effects, Engine, Forgotten, Refusal};
use crate::events::{Event, Reason};
use crate::queue::Offer;
use crate::registry::{Secret, Share};
use crate::spool::Content;

impl Engine {
    /// True while `session` has a share.
    pub fn is_shared(&self, session: &str) -> bool {
        self.registry.contains(session)
    }

    /// True while `key` has content pending, parked or in flight.
    pub fn key_pending(&self, key: &str) -> Result<bool, Refusal> {
        self.open()?;
        Ok(self.queue.holds_key(key))
    }

    fn open(&self) -> Result<(), Refusal> {
        if self.closed {
            return Err(Refusal::Closed);
        }
        Ok(())
    }

    /// A content of a shared session's key: queued (replacing the key's waiting content), its
    /// record journaled with the write's number, and the workers it needs claimed.
    pub fn accept_content(
        &mut self,
        key: &str,
        session: &str,
        text: Arc<str>,
        now: impl FnOnce() -> Instant,
        fx: &mut Effects,
    ) -> Result<(), Refusal> {
        self.open()?;
        if !self.registry.contains(session) {
            return Err(Refusal::Unshared);
        }
        let journaled = self.journal.is_on().then(|| text.clone());
        let offer = self
            .queue
            .offer(key, session, text, now)
            .map_err(Refusal::Full)?;
        if let Some(text) = journaled {
            let (key, session) = self.queue.names(key).expect("an offered key has an entry");
            let content = Content {
                seq: self.journal.seq(self.queue.last_seq()),
                key: key.clone(),
                session: session.clone(),
                text,
            };
            self.journal.push_content(content);
        }
        fx.tokens = self.claim_workers();
        fx.wake_timer = offer == Offer::Parked; // the key's time may be the earliest
        Ok(())
    }

    /// A content over `max_content_bytes`: never queued, but it takes a position so flushes
    /// after it report it as given up.
    pub fn too_large(&mut self) -> Result<(), Refusal> {
        self.open()?;
        self.queue.give_up_unsent();
        self.counters.too_large += 1;
        Ok(())
    }

    /// A share record the host wrote: the session is shared (with this secret) from now on. True
    /// if its share was refused and a probe goes now (the timer must look again).
    pub fn accept_share(
        &mut self,
        session: &str,
        share: Share,
        url: Option<Arc<str>>,
        now: Instant,
    ) -> Result<bool, Refusal> {
        self.open()?;
        Ok(self.add_share(session, share, url, now))
    }

    /// A share the service created. Fails with the session that already holds the same
    /// secret (the hosted service keys shares by the last 8 characters of the session id).
    /// After shutdown it is not remembered. True if a probe goes now.
    pub fn created(
        &mut self,
        session: &str,
        share: Share,
        url: Arc<str>,
        now: Instant,
    ) -> Result<bool, String> {
        if let Some(other) = self.registry.holder(session, &share.secret) {
            return Err(other.to_owned());
        }
        if self.closed {
            // not remembered for syncs, but the ledger keeps it so that it can be removed
            let record = self.ledger.shared(session, &share, Some(url), now);
            self.journal.push(record);
            return Ok(false);
        }
        Ok(self.add_share(session, share, Some(url), now))
    }

    /// The session is shared: the ledger and the registry have it, the spool is told.
    fn add_share(
        &mut self,
        session: &str,
        share: Share,
        url: Option<Arc<str>>,
        now: Instant,
    ) -> bool {
        let record = self.ledger.shared(session, &share, url, now);
        self.journal.push(record);
        self.acked.forget_session(session); // what the service holds is not known any more
        self.registry.insert(session, share);
        self.queue.probe_now(session, now)
    }

    /// The service confirmed the deletion of the session's share (2xx, 404 or 410): it leaves
    /// the ledger (unless it was shared again meanwhile), and the spool is told.
    pub fn deleted(&mut self, session: &str) {
        if let Some(record) = self.ledger.deleted(session) {
            self.journal.push(record);
        }
    }

    /// The local part of `share_remove` (with `secret`, the one the delete goes with): the
    /// session's pending work is dropped (named by an event) and its share forgotten, and the
    /// ledger marks it as being removed until the service confirms; journaled first, so the
    /// spool forgets the work too and keeps the removal.
    pub fn forget(
        &mut self,
        session: &str,
        secret: Secret,
        now: Instant,
        fx: &mut Effects,
    ) -> Forgotten {
        for record in self.ledger.removing(session, &secret, now) {
            self.journal.push(record);
        }
        let refused = self.queue.is_refused(session);
        let dropped = self.queue.purge_session(session, false);
        self.acked.forget_session(session);
        let id = self.registry.remove(session).and_then(|share| share.id);
        if dropped > 0 {
            fx.emit([Event::Dropped {
                reason: Reason::Removed,
                key: None,
                session: Some(session.into()),
                count: dropped,
                bytes: None,
                error: None,
            }]);
        }
        self.settled(now, fx);
        let id = id.or_else(|| self.ledger.get(session).and_then(|e| e.share.id.clone()));
        Forgotten {
            secret,
            refused,
            id,
        }
    }
}
