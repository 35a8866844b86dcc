//! One viewer's feed: catch up from the store past what it has, then follow the share's hub
//! channel (catching up again if it fell behind), until the share is deleted or the viewer leaves.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OnceCell, broadcast, mpsc};

pub use crate::http::no_store;
use crate::hub::{LiveItem, PAGE, Subscription, Update};
use crate::state::AppState;
use crate::store::StoreError;

pub enum Feed {
    Item(Arc<LiveItem>),
    Deleted,
}

/// Feed items a viewer may have waiting; with `hub::PAGE`, what one slow viewer holds is bounded.
const WAITING: usize = 16;

/// Starts following share `id` after sequence `after`; the receiver ends after `Deleted`.
pub fn follow(state: Arc<AppState>, id: String, after: i64) -> mpsc::Receiver<Feed> {
    let (tx, rx) = mpsc::channel(WAITING);
    tokio::spawn(async move {
        let Some(mut subscription) = subscribe(&state, &id, &tx).await else {
            return;
        };
        let mut last = after;
        // catch up first: everything committed before the subscription is in the store
        if !catch_up(&state, &id, &mut last, &tx).await {
            return;
        }
        loop {
            match subscription.rx.recv().await {
                Ok(Update::Item(live)) if live.item.seq > last => {
                    last = live.item.seq;
                    if tx.send(Feed::Item(live)).await.is_err() {
                        return;
                    }
                }
                Ok(Update::Item(_)) => {}
                Ok(Update::Deleted) | Err(broadcast::error::RecvError::Closed) => {
                    let _ = tx.send(Feed::Deleted).await;
                    return;
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    if !catch_up(&state, &id, &mut last, &tx).await {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// The share's subscription; `None` when the share is gone (told) or the viewer left. A store
/// that fails is asked again each second while the viewer waits.
async fn subscribe(state: &AppState, id: &str, tx: &mpsc::Sender<Feed>) -> Option<Subscription> {
    loop {
        match state.hub.subscribe(id).await {
            Ok(subscription) => return Some(subscription),
            Err(StoreError::NotFound) => {
                let _ = tx.send(Feed::Deleted).await;
                return None;
            }
            Err(e) => tracing::warn!(share = %id, error = ?e, "subscribing a viewer failed"),
        }
        tokio::select! {
            _ = tx.closed() => return None,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Sends the committed items past `last`, a page at a time; false when the feed is over
/// (deleted, or viewer gone).
async fn catch_up(state: &AppState, id: &str, last: &mut i64, tx: &mpsc::Sender<Feed>) -> bool {
    loop {
        let items = match state.store.changes(id.to_owned(), *last, PAGE).await {
            Ok(items) => items,
            Err(StoreError::NotFound) => {
                let _ = tx.send(Feed::Deleted).await;
                return false;
            }
            Err(e) => {
                tracing::warn!(share = %id, error = ?e, "catching a viewer up failed");
                return true;
            }
        };
        let full = items.len() == PAGE;
        for item in items {
            *last = (*last).max(item.seq);
            let live = Arc::new(LiveItem {
                item,
                fragment: OnceCell::new(),
                appended: None, // read from the store: sent whole
            });
            if tx.send(Feed::Item(live)).await.is_err() {
                return false;
            }
        }
        if !full {
            return true;
        }
    }
}
