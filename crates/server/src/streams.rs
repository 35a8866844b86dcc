//! Open live streams (viewer SSE, legacy WebSocket), counted per share and in total, so that no
//! crowd on one share, or on all of them, takes every connection the server can hold.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::ApiError;

/// Lock order: `open` is a leaf lock held only for counting.
pub struct Streams {
    max_per_share: usize,
    max_total: usize,
    /// Open streams per share id, and their total.
    open: Mutex<(HashMap<String, usize>, usize)>,
}

/// One open stream; dropping it frees its place.
pub struct StreamPermit {
    streams: Arc<Streams>,
    id: String,
}

impl Streams {
    pub fn new(max_per_share: usize, max_total: usize) -> Arc<Streams> {
        Arc::new(Streams {
            max_per_share,
            max_total,
            open: Mutex::default(),
        })
    }

    /// How many streams are open now.
    pub fn total(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).1
    }

    /// A place for one more stream of share `id`, or 503 with the limit that is reached.
    pub fn open(self: &Arc<Self>, id: &str) -> Result<StreamPermit, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let (per_share, total) = &mut *open;
        let on_share = per_share.get(id).copied().unwrap_or(0);
        let refused = if *total >= self.max_total {
            Some(format!(
                "the server has {total} live streams open, its limit"
            ))
        } else if on_share >= self.max_per_share {
            Some(format!(
                "this share has {on_share} live streams open, its limit"
            ))
        } else {
            None
        };
        if let Some(reason) = refused {
            return Err(ApiError::Busy {
                reason,
                retry_after_s: 10,
            });
        }
        *per_share.entry(id.to_owned()).or_default() += 1;
        *total += 1;
        Ok(StreamPermit {
            streams: self.clone(),
            id: id.to_owned(),
        })
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self.streams.open.lock().unwrap_or_else(|p| p.into_inner());
        let (per_share, total) = &mut *open;
        *total -= 1;
        if let Some(n) = per_share.get_mut(&self.id) {
            *n -= 1;
            if *n == 0 {
                per_share.remove(&self.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_counted_per_share_and_in_total_and_freed_on_drop() {
        let streams = Streams::new(2, 3);
        let a1 = streams.open("a").unwrap();
        let _a2 = streams.open("a").unwrap();
        assert!(streams.open("a").is_err());
        let _b1 = streams.open("b").unwrap();
        assert!(streams.open("c").is_err());
        drop(a1);
        assert!(streams.open("a").is_ok());
    }
}
