//! `share_sync` on the caller's thread: classify the key, check the share, validate the JSON
//! without building a tree, copy it once into an `Arc<str>`, and hand it to the engine under
//! the lock (which wakes a worker only if one is needed). No I/O.
//!
//! The walk of one write, from here to the service:
//! 1. `ffi::share_sync` checks for NULL and UTF-8 and catches panics; `api::sync` finds the
//!    running runtime (SHARE_ERR_NOT_INITIALIZED if none).
//! 2. `key::classify`: a foreign key is counted as ignored; `session/share/<id>` with a string
//!    `secret` tells the engine the session's share; any other session key goes on only if its
//!    session is shared (and, under "next", only if the protocol carries it).
//! 3. `content::validate` checks the text is one JSON value; over `max_content_bytes` it stops
//!    here, counted as given up and named by a `dropped` event.
//! 4. `Engine::accept_content` queues it (coalesced into the key's waiting content, or at the
//!    position of its first unsent write; parked if the key's last request started less than
//!    `min_interval` ago; held if its share is refused), journals its record, and claims only
//!    as many workers as requests that could start and that no awake worker will pick up.
//! 5. A worker (runtime/worker.rs) takes the dispatch, waits for its records to be in the
//!    spool's log, removes the secret, sends, and brings the answer back to `Engine::settle`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::instance::Instance;
use super::messages::Tick;
use crate::content;
use crate::engine::Refusal;
use crate::error::{Error, ErrorKind, Result};
use crate::events::{Event, Reason, hub};
use crate::key::{self, Key};

impl Instance {
    /// `share_sync` after the NULL, UTF-8 and initialisation checks. True when the content was
    /// queued (an event naming its key or session will follow), false when it was ignored.
    pub fn sync(&self, key: &str, text: &str) -> Result<bool> {
        match key::classify(key)? {
            Key::Foreign => self.ignore(),
            Key::Share { session } => match content::share_record_with_url(key, text)? {
                Some((share, url)) => {
                    let now = Instant::now();
                    let probe = self
                        .decide(|engine, _| engine.accept_share(session, share, url, now))
                        .map_err(|_| Error::not_initialized())?;
                    if probe {
                        let _ = self.timer.send(Tick::Wake);
                    }
                    Ok(false)
                }
                None => self.ignore(),
            },
            Key::Synced { .. } if !self.protocol.carries(key) => self.ignore(),
            Key::Synced { session } => {
                if !self.lock().is_shared(session) {
                    return self.ignore(); // not shared: the content is not even parsed
                }
                content::validate(key, text)?;
                if text.len() > self.config.max_content_bytes {
                    return self.too_large(key, session, text.len());
                }
                let text: Arc<str> = Arc::from(text);
                let accepted = self.decide(|engine, fx| {
                    engine.accept_content(key, session, text, Instant::now, fx)
                });
                match accepted {
                    Ok(()) => Ok(true),
                    Err(Refusal::Closed) => Err(Error::not_initialized()),
                    Err(Refusal::Unshared) => self.ignore(), // removed meanwhile
                    Err(Refusal::Full(full)) => {
                        Err(self.queue_full(key, full.pending_bytes, full.limit))
                    }
                }
            }
        }
    }

    /// True while `key` has content pending, parked or in flight.
    pub fn key_pending(&self, key: &str) -> Result<bool> {
        self.lock()
            .key_pending(key)
            .map_err(|_| Error::not_initialized())
    }

    fn ignore(&self) -> Result<bool> {
        self.ignored.fetch_add(1, Ordering::Relaxed);
        Ok(false)
    }

    /// A content over `max_content_bytes`: never uploaded; counted, and named by an event.
    fn too_large(&self, key: &str, session: &str, len: usize) -> Result<bool> {
        self.lock()
            .too_large()
            .map_err(|_| Error::not_initialized())?;
        hub().emit([Event::Dropped {
            reason: Reason::TooLarge,
            key: Some(key.into()),
            session: Some(session.into()),
            count: 1,
            bytes: Some(len as u64),
            error: None,
        }]);
        Ok(true)
    }

    fn queue_full(&self, key: &str, pending: usize, limit: usize) -> Error {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        hub().emit([Event::Dropped {
            reason: Reason::QueueFull,
            key: Some(key.into()),
            session: None,
            count: 1,
            bytes: None,
            error: None,
        }]);
        Error::new(
            ErrorKind::QueueFull,
            format!(
                "{key:?} not queued: {pending} bytes are pending and max_pending_bytes is {limit}"
            ),
        )
    }
}
