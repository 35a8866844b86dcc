//! Storage key rules: which writes are not ours, which carry a share, which are synced.

use crate::error::{Error, Result};

/// What a storage key means to the share client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key<'a> {
    /// Outside `session/`: not session state, ignored.
    Foreign,
    /// `session/share/<sessionID>`: carries the share (`{secret, url}`); never sent.
    Share { session: &'a str },
    /// Any other `session/<sub>/<sessionID>[/...]`: sent when the session has a share.
    Synced { session: &'a str },
}

/// Classifies `key`. A key whose first segment is `session` needs at least three segments,
/// none empty (`session/<sub>/<sessionID>[/...]`); anything else there is an error.
pub fn classify(key: &str) -> Result<Key<'_>> {
    let mut parts = key.split('/');
    if parts.next() != Some("session") {
        return Ok(Key::Foreign);
    }
    let sub = parts.next();
    let session = parts.next();
    let (Some(sub), Some(session)) = (sub, session) else {
        return Err(malformed(
            key,
            "it needs at least three segments: session/<sub>/<sessionID>",
        ));
    };
    if sub.is_empty() || session.is_empty() || parts.any(str::is_empty) {
        return Err(malformed(key, "a segment is empty"));
    }
    Ok(if sub == "share" {
        Key::Share { session }
    } else {
        Key::Synced { session }
    })
}

/// Checks a session id given to create/remove: non-empty, no `/` (it could not name a key).
pub fn check_session_id(session: &str) -> Result<()> {
    if session.is_empty() {
        return Err(Error::invalid("session id is empty"));
    }
    if session.contains('/') {
        return Err(Error::invalid(format!(
            "session id {session:?} contains '/'"
        )));
    }
    Ok(())
}

fn malformed(key: &str, why: &str) -> Error {
    Error::invalid(format!("malformed key {key:?}: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn keys_outside_session_are_foreign() {
        for key in [
            "",
            "project/abc",
            "sessions/info/x",
            "Session/info/x",
            "/session/info/x",
            "x",
        ] {
            assert_eq!(classify(key), Ok(Key::Foreign), "{key}");
        }
    }

    #[test]
    fn synced_keys_name_their_session() {
        assert_eq!(
            classify("session/info/ses_1"),
            Ok(Key::Synced { session: "ses_1" })
        );
        assert_eq!(
            classify("session/message/ses_1/msg_2"),
            Ok(Key::Synced { session: "ses_1" })
        );
        assert_eq!(
            classify("session/part/ses_1/msg_2/prt_3"),
            Ok(Key::Synced { session: "ses_1" })
        );
        // subs the hosted service drops are still ours to send (the service decides)
        assert_eq!(
            classify("session/diff/ses_9"),
            Ok(Key::Synced { session: "ses_9" })
        );
    }

    #[test]
    fn share_keys_are_recognised() {
        assert_eq!(
            classify("session/share/ses_1"),
            Ok(Key::Share { session: "ses_1" })
        );
    }

    #[test]
    fn malformed_session_keys_are_errors() {
        for key in [
            "session",
            "session/",
            "session/info",
            "session/info/",
            "session//ses_1",
            "session/part/ses_1//prt",
            "session/part/ses_1/msg/",
        ] {
            let err = classify(key).unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidArgument, "{key}");
            assert!(err.message.contains("malformed key"), "{}", err.message);
        }
    }

    #[test]
    fn session_ids_are_checked() {
        assert!(check_session_id("ses_abc").is_ok());
        assert!(check_session_id("").is_err());
        assert!(check_session_id("a/b").is_err());
    }
}
