//! Live updates: one broadcast channel per share that has viewers. A write only pokes the share's
//! pump; the pump reads the committed items past the last sequence it broadcast and sends them in
//! sequence order (it starts from the share's head in the store when its channel is made, never
//! from what a viewer claims to have), so viewers see every committed write once, whichever process made it (on
//! PostgreSQL, other processes' writes poke it through LISTEN/NOTIFY). A subscriber catches up
//! from the store itself, so nothing between its page and its stream is missed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::{Notify, OnceCell, broadcast};

use crate::item::StoredItem;
use crate::store::{Change, Store, StoreError, StoreResult};
use crate::tail::{Appended, Tails};

/// Broadcast backlog per share; a viewer further behind catches up from the store.
const BACKLOG: usize = 1024;

/// Items one store read of the pump (or of a viewer catching up) holds at most.
pub const PAGE: usize = 64;

/// One committed item as viewers get it, with its viewer fragment rendered once for all of them
/// and, for a streamed text part, what it appended to the version before (`tail.rs`).
#[derive(Debug)]
pub struct LiveItem {
    pub item: StoredItem,
    pub fragment: OnceCell<String>,
    pub appended: Option<Appended>,
}

#[derive(Debug, Clone)]
pub enum Update {
    Item(Arc<LiveItem>),
    /// The share was deleted: viewers close.
    Deleted,
}

struct Channel {
    tx: broadcast::Sender<Update>,
    wake: Arc<Notify>,
}

/// The per-share channels of this process. Lock order: `channels` is a leaf lock, never held
/// across an await or a store call.
pub struct Hub {
    store: Weak<dyn Store>,
    channels: Mutex<HashMap<String, Channel>>,
}

/// A viewer's subscription; dropping it lets the share's pump stop when it was the last.
pub struct Subscription {
    pub rx: broadcast::Receiver<Update>,
    hub: Arc<Hub>,
    id: String,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.release(&self.id);
    }
}

impl Hub {
    pub fn new(store: &Arc<dyn Store>) -> Arc<Hub> {
        Arc::new(Hub {
            store: Arc::downgrade(store),
            channels: Mutex::default(),
        })
    }

    /// Subscribes to share `id`'s updates: everything committed after the moment its channel
    /// was made (the subscriber catches up on what came before from the store itself).
    pub async fn subscribe(self: &Arc<Self>, id: &str) -> StoreResult<Subscription> {
        let subscription = |rx| Subscription {
            rx,
            hub: self.clone(),
            id: id.to_owned(),
        };
        if let Some(rx) = self.join(id) {
            return Ok(subscription(rx));
        }
        let store = self.store.upgrade().ok_or(StoreError::NotFound)?;
        // the head is read before the channel exists: writes after it are either poked
        // (the channel exists) or found by the pump's first pass (it runs at once)
        let head = store.head(id.to_owned()).await?.seq;
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        let rx = match channels.get(id) {
            Some(ch) => ch.tx.subscribe(),
            None => {
                let (tx, rx) = broadcast::channel(BACKLOG);
                let wake = Arc::new(Notify::new());
                wake.notify_one();
                let channel = Channel {
                    tx: tx.clone(),
                    wake: wake.clone(),
                };
                channels.insert(id.to_owned(), channel);
                tokio::spawn(pump(self.clone(), id.to_owned(), tx, wake, head));
                rx
            }
        };
        Ok(subscription(rx))
    }

    /// A receiver of share `id`'s channel, if it has one.
    fn join(&self, id: &str) -> Option<broadcast::Receiver<Update>> {
        let channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels.get(id).map(|ch| ch.tx.subscribe())
    }

    /// Share `id` has new committed writes.
    pub fn poke(&self, id: &str) {
        let channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ch) = channels.get(id) {
            ch.wake.notify_one();
        }
    }

    /// Every share with viewers may have new writes (after the relay reconnected).
    fn poke_all(&self) {
        let channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        for ch in channels.values() {
            ch.wake.notify_one();
        }
    }

    /// What the store relays from other processes.
    pub fn apply(&self, change: Change<'_>) {
        match change {
            Change::Written(id) => self.poke(id),
            Change::Deleted(id) => self.close(id),
            Change::Resumed => self.poke_all(),
        }
    }

    /// Share `id` is gone: tell its viewers and drop the channel.
    pub fn close(&self, id: &str) {
        let removed = self
            .channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        if let Some(ch) = removed {
            let _ = ch.tx.send(Update::Deleted);
            ch.wake.notify_one();
        }
    }

    fn release(&self, id: &str) {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        // the dropping receiver is still counted while Drop runs
        if channels
            .get(id)
            .is_some_and(|ch| ch.tx.receiver_count() <= 1)
        {
            if let Some(ch) = channels.remove(id) {
                ch.wake.notify_one();
            }
        }
    }

    fn is_current(&self, id: &str, tx: &broadcast::Sender<Update>) -> bool {
        let channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels.get(id).is_some_and(|ch| ch.tx.same_channel(tx))
    }
}

/// Broadcasts share `id`'s committed items past `last`, once per wake-up, until the channel is dropped.
async fn pump(
    hub: Arc<Hub>,
    id: String,
    tx: broadcast::Sender<Update>,
    wake: Arc<Notify>,
    mut last: i64,
) {
    let mut tails = Tails::default();
    loop {
        wake.notified().await;
        if !hub.is_current(&id, &tx) {
            return;
        }
        let Some(store) = hub.store.upgrade() else {
            return;
        };
        match broadcast_past(&*store, &id, &tx, &mut last, &mut tails).await {
            Ok(()) => {}
            Err(StoreError::NotFound) => {
                hub.close(&id);
                return;
            }
            Err(e) => tracing::warn!(share = %id, error = ?e, "live update of a share failed"),
        }
    }
}

/// Broadcasts the committed items past `last`, a page at a time, until none are left.
async fn broadcast_past(
    store: &dyn Store,
    id: &str,
    tx: &broadcast::Sender<Update>,
    last: &mut i64,
    tails: &mut Tails,
) -> StoreResult<()> {
    loop {
        let items = store.changes(id.to_owned(), *last, PAGE).await?;
        let full = items.len() == PAGE;
        for item in items {
            *last = (*last).max(item.seq);
            let appended = tails.next(&item);
            let _ = tx.send(Update::Item(Arc::new(LiveItem {
                item,
                fragment: OnceCell::new(),
                appended,
            })));
        }
        if !full {
            return Ok(());
        }
    }
}
