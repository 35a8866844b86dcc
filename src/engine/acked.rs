//! The content the service last acknowledged per key, as it was sent (secret removed,
//! credentials redacted): the base an append extends (docs/append-protocol.md). A dispatch
//! takes its keys' bases out, so a request that fails in any way leaves none behind and the
//! key's next request is whole; only a 2xx puts the content sent back. Kept only while the
//! service advertises appends, and bounded: past [`MAX_ACKED_BYTES`] it starts over empty.

use std::collections::HashMap;
use std::sync::Arc;

/// The most content bytes kept (a session's worth of streamed parts).
pub const MAX_ACKED_BYTES: usize = 32 * 1024 * 1024;

#[derive(Debug, Default)]
pub struct Acked {
    texts: HashMap<Arc<str>, Arc<str>>,
    bytes: usize,
}

impl Acked {
    /// Takes `key`'s base out (the request about to be made decides what comes back).
    pub fn take(&mut self, key: &str) -> Option<Arc<str>> {
        let text = self.texts.remove(key)?;
        self.bytes -= text.len();
        Some(text)
    }

    /// The service acknowledged `text` for `key`.
    pub fn record(&mut self, key: Arc<str>, text: Arc<str>) {
        self.take(&key);
        if self.bytes + text.len() > MAX_ACKED_BYTES {
            self.clear(); // the next request of each key is whole
        }
        if text.len() <= MAX_ACKED_BYTES {
            self.bytes += text.len();
            self.texts.insert(key, text);
        }
    }

    /// Forgets every key of `session` (`session/<sub>/<session>/...`): its share changed.
    pub fn forget_session(&mut self, session: &str) {
        let bytes = &mut self.bytes;
        self.texts.retain(|key, text| {
            let ours = key.split('/').nth(2) == Some(session);
            if ours {
                *bytes -= text.len();
            }
            !ours
        });
    }

    pub fn clear(&mut self) {
        self.texts.clear();
        self.bytes = 0;
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_is_taken_once_and_sessions_and_the_bound_forget() {
        let mut acked = Acked::default();
        acked.record("session/part/s1/m/p".into(), "abc".into());
        acked.record("session/part/s2/m/p".into(), "de".into());
        acked.record("session/part/s1/m/p".into(), "abcd".into());
        assert_eq!(acked.bytes(), 6);
        assert_eq!(acked.take("session/part/s1/m/p").as_deref(), Some("abcd"));
        assert_eq!(acked.take("session/part/s1/m/p"), None);
        acked.record("session/info/s1".into(), "x".into());
        acked.forget_session("s1");
        assert_eq!(acked.bytes(), 2);
        let big: Arc<str> = "x".repeat(MAX_ACKED_BYTES).into();
        acked.record("session/part/s3/m/p".into(), big);
        assert_eq!(acked.take("session/part/s2/m/p"), None, "started over");
        assert_eq!(acked.bytes(), MAX_ACKED_BYTES);
    }
}
