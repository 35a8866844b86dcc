//! One viewer's feed: catch up from the store past what it has, then follow the share's hub
//! channel (catching up again if it fell behind), until the share is deleted or the viewer leaves.

use std::sync::{Arc, OnceLock};

use tokio::sync::{broadcast, mpsc};

pub use crate::http::no_store;
use crate::hub::{LiveItem, Update};
use crate::state::AppState;
use crate::store::StoreError;

pub enum Feed {
    Item(Arc<LiveItem>),
    Deleted,
}

/// Starts following share `id` after sequence `after`; the receiver ends after `Deleted`.
pub fn follow(state: Arc<AppState>, id: String, after: i64) -> mpsc::Receiver<Feed> {
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(async move {
        let mut subscription = state.hub.subscribe(&id, after);
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

/// Sends the committed items past `last`; false when the feed is over (deleted, or viewer gone).
async fn catch_up(state: &AppState, id: &str, last: &mut i64, tx: &mpsc::Sender<Feed>) -> bool {
    match state.store.changes(id.to_owned(), *last).await {
        Ok(items) => {
            for item in items {
                *last = (*last).max(item.seq);
                if tx
                    .send(Feed::Item(Arc::new(LiveItem {
                        item,
                        fragment: OnceLock::new(),
                    })))
                    .await
                    .is_err()
                {
                    return false;
                }
            }
            true
        }
        Err(StoreError::NotFound) => {
            let _ = tx.send(Feed::Deleted).await;
            false
        }
        Err(e) => {
            tracing::warn!(share = %id, error = ?e, "catching a viewer up failed");
            true
        }
    }
}
