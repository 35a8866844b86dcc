//! The share registry: which sessions are shared, with which secret (and, under "next", id).

use foldhash::HashMap;
use std::fmt;
use std::sync::Arc;

/// A share's secret. Its `Debug` form is redacted so it cannot slip into a log line or message.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    pub fn new(secret: &str) -> Self {
        Secret(Arc::from(secret))
    }

    /// The secret itself, for the request body and for redaction only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// What the library knows of one share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub secret: Secret,
    /// The service's id of the share ("next"), when a create or a share record gave one.
    pub id: Option<Arc<str>>,
}

impl Share {
    /// A share known by its secret only.
    pub fn with_secret(secret: Secret) -> Share {
        Share { secret, id: None }
    }
}

/// Session id to share, filled by `share_create` and by `session/share/<id>` writes.
#[derive(Debug, Default)]
pub struct Registry {
    shares: HashMap<Box<str>, Share>,
}

impl Registry {
    pub fn get(&self, session: &str) -> Option<&Share> {
        self.shares.get(session)
    }

    pub fn contains(&self, session: &str) -> bool {
        self.shares.contains_key(session)
    }

    /// Remembers (or replaces) the share of `session`.
    pub fn insert(&mut self, session: &str, share: Share) {
        self.shares.insert(session.into(), share);
    }

    /// Another session than `session` that holds `secret`, if any: the service handed one
    /// share to two sessions (opencode's hosted service keys shares by the last 8 characters of
    /// the session id). A URL alike is no such proof: a service that gives each session its own
    /// secret keys shares by the whole id, and the syncs of each go to its own share.
    pub fn holder(&self, session: &str, secret: &Secret) -> Option<&str> {
        self.shares
            .iter()
            .find(|(s, held)| &***s != session && held.secret == *secret)
            .map(|(s, _)| &**s)
    }

    /// Forgets the share of `session`, returning it.
    pub fn remove(&mut self, session: &str) -> Option<Share> {
        self.shares.remove(session)
    }

    pub fn len(&self) -> usize {
        self.shares.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shares.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_is_redacted() {
        let s = Secret::new("5f1c-secret");
        assert!(!format!("{s:?}").contains("5f1c"));
        let mut r = Registry::default();
        r.insert("ses_1", Share::with_secret(s.clone()));
        assert!(!format!("{r:?}").contains("5f1c"));
        assert_eq!(
            r.get("ses_1").map(|s| s.secret.expose()),
            Some("5f1c-secret")
        );
        assert!(r.remove("ses_1").is_some());
        assert!(!r.contains("ses_1"));
    }

    #[test]
    fn a_share_held_by_another_session_is_found_by_its_secret() {
        let mut r = Registry::default();
        r.insert("ses_a_12345678", Share::with_secret(Secret::new("s1")));
        let a = Some("ses_a_12345678");
        assert_eq!(r.holder("ses_b_12345678", &Secret::new("s1")), a);
        assert_eq!(
            r.holder("ses_a_12345678", &Secret::new("s1")),
            None,
            "its own"
        );
        assert_eq!(r.holder("ses_b_12345678", &Secret::new("s2")), None);
        r.remove("ses_a_12345678");
        assert_eq!(r.holder("ses_b_12345678", &Secret::new("s1")), None);
    }
}
