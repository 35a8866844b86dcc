//! The spool's records and their byte layout. Both protocols need the same thing kept: each
//! live share, and the newest content of each of its keys until the service has it.
//!
//! The spool is also the ledger of shares (SPEC "Durability", issue 19): every share stays in
//! it, with its secret, until the service confirmed its deletion, so a removal survives a crash
//! and a host that forgot a session can still take its share down.
//!
//! # On-disk format (version 2; version 1 is read too)
//!
//! The log file `spool.log` is a 12-byte header followed by frames, all integers little-endian:
//!
//! ```text
//! header   magic b"OCSPOOL\n" (8 bytes) | version u32 (= 2)
//! frame    len u32 | crc u32 | payload (len bytes)
//!            len: 1..=MAX_PAYLOAD; crc: CRC-32 (IEEE) of the 4 len bytes, then the payload
//! payload  tag u8, then the record's fields, and nothing after them
//!   1 Share    session str | secret str | id opt | url opt
//!              | created u64 | service opt | protocol opt          (these three: version 2)
//!   2 Content  seq u64 | key str | session str | text str
//!   3 Ack      seq u64 | key str
//!   4 Dropped  seq u64 | key str
//!   5 Remove   session str       (its removal was asked for; v2 keeps the share until Deleted)
//!   6 Deleted  session str       (version 2: the service confirmed it: 2xx, 404 or 410)
//!   7 Synced   session str | at u64   (version 2: the service last accepted a content then)
//! str      u32 byte length, then that many bytes of UTF-8
//! opt      u8 0 (none), or u8 1 then a str
//! times    milliseconds since the Unix epoch; 0 = unknown
//! ```
//!
//! Version 1 (before the ledger) has the short `Share` and no tags 6 and 7. A version 1 log is
//! read with its meaning (a `Remove` not followed by a deletion is a removal to send again) and
//! rewritten as version 2 at open, before anything is appended to it.
//!
//! A reader stops at the first frame that is short, too long, fails its checksum or does not
//! decode, and reports the bytes from there to the end as skipped: the log is append-only, so a
//! crash leaves at most a torn last frame, and whatever follows damage cannot be trusted.
//! Versioning: a new layout gets a new version number, and a reader refuses a version it does not
//! know (rather than misreading it); new record kinds need a new version too, because version 1
//! reads an unknown tag as damage.

use std::fmt;
use std::sync::Arc;

use crate::registry::Secret;

/// The file's first 8 bytes.
pub const MAGIC: [u8; 8] = *b"OCSPOOL\n";
/// The layout this code writes.
pub const VERSION: u32 = 2;
/// The older layout this code reads (and rewrites as [`VERSION`] at open).
pub const VERSION_1: u32 = 1;
/// Bytes of magic and version at the start of the file.
pub const HEADER_LEN: u64 = 12;
/// Bytes of `len` and `crc` before each payload.
pub const FRAME_LEN: usize = 8;
/// The largest payload a frame may hold (64 MiB): a damaged length above it is damage, not an
/// allocation, and a record above it is refused at append.
pub const MAX_PAYLOAD: usize = 64 << 20;

const TAG_SHARE: u8 = 1;
const TAG_CONTENT: u8 = 2;
const TAG_ACK: u8 = 3;
const TAG_DROPPED: u8 = 4;
const TAG_REMOVE: u8 = 5;
const TAG_DELETED: u8 = 6;
const TAG_SYNCED: u8 = 7;

/// A session's share: what the runtime needs to send its contents again after a restart. The
/// secret is a credential: it is written to the spool file and nowhere else (`Debug` redacts it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub session: Arc<str>,
    pub secret: Secret,
    /// The share id under "next" (`None`: the last 8 characters of the session id).
    pub id: Option<Arc<str>>,
    pub url: Option<Arc<str>>,
    /// When the library first knew the share (ms since the epoch; 0: unknown, a version 1 record).
    pub created: u64,
    /// The base URL of the service it lives on (None: a version 1 record).
    pub service: Option<Arc<str>>,
    /// The protocol it was made with, `"v1"` or `"next"` (None: a version 1 record).
    pub protocol: Option<Arc<str>>,
}

/// One content the host wrote. `seq` is the runtime's number for this write, increasing across
/// all keys and across restarts (start at [`super::Recovery::next_seq`]).
#[derive(Clone, PartialEq, Eq)]
pub struct Content {
    pub seq: u64,
    pub key: Arc<str>,
    pub session: Arc<str>,
    pub text: Arc<str>,
}

/// `Debug` shows the text's length only: a content may hold the secret before it is stripped.
impl fmt::Debug for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Content")
            .field("seq", &self.seq)
            .field("key", &self.key)
            .field("session", &self.session)
            .field("text_bytes", &self.text.len())
            .finish()
    }
}

/// What the runtime writes to the spool. Records apply in log order; `Ack` and `Dropped` compare
/// sequence numbers, so one that reaches the log before a newer content of its key never
/// forgets that newer content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// The session is shared (a newer share of the session replaces the older).
    Share(Share),
    /// The newest content of a key, to be sent. Kept only if its session has a share by then.
    Content(Content),
    /// The service accepted `key`'s content numbered `seq`: it and older contents are forgotten.
    Ack { key: Arc<str>, seq: u64 },
    /// `key`'s content numbered `seq` was given up for good (e.g. refused by the service): it and
    /// older contents are forgotten, like an `Ack`.
    Dropped { key: Arc<str>, seq: u64 },
    /// The session's removal was asked for: all its contents so far are forgotten, its share
    /// stays in the ledger (with its secret) until `Deleted`, and its delete is sent again after a
    /// restart.
    Remove { session: Arc<str> },
    /// The service confirmed the session's share deleted (2xx, 404 or 410): the share leaves the
    /// ledger (if it was being removed; a share made again since stays).
    Deleted { session: Arc<str> },
    /// The service accepted a content of the session at `at` (ms since the epoch).
    Synced { session: Arc<str>, at: u64 },
}

/// A payload whose checksum held but whose fields do not decode (a bug, or a future layout
/// written under this version).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

fn str_len(s: &str) -> usize {
    4 + s.len()
}

fn opt_len(s: &Option<Arc<str>>) -> usize {
    1 + s.as_deref().map_or(0, str_len)
}

impl Share {
    /// Bytes this share's record takes in the log, frame included.
    pub fn framed_len(&self) -> u64 {
        let payload = 1
            + str_len(&self.session)
            + str_len(self.secret.expose())
            + opt_len(&self.id)
            + opt_len(&self.url)
            + 8
            + opt_len(&self.service)
            + opt_len(&self.protocol);
        (FRAME_LEN + payload) as u64
    }
}

impl Content {
    /// Bytes this content's record takes in the log, frame included.
    pub fn framed_len(&self) -> u64 {
        let payload = 1 + 8 + str_len(&self.key) + str_len(&self.session) + str_len(&self.text);
        (FRAME_LEN + payload) as u64
    }
}

impl Record {
    /// Bytes of this record's payload (without the frame).
    pub fn payload_len(&self) -> usize {
        match self {
            Record::Share(s) => s.framed_len() as usize - FRAME_LEN,
            Record::Content(c) => c.framed_len() as usize - FRAME_LEN,
            Record::Ack { key, .. } | Record::Dropped { key, .. } => 1 + 8 + str_len(key),
            Record::Remove { session } | Record::Deleted { session } => 1 + str_len(session),
            Record::Synced { session, .. } => 1 + str_len(session) + 8,
        }
    }

    /// Bytes this record takes in the log, frame included.
    pub fn framed_len(&self) -> u64 {
        (FRAME_LEN + self.payload_len()) as u64
    }

    /// Appends this record's frame to `out`; `Err(payload length)` (and nothing appended) when
    /// the payload would pass [`MAX_PAYLOAD`].
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), usize> {
        let len = self.payload_len();
        if len > MAX_PAYLOAD {
            return Err(len);
        }
        let start = out.len();
        out.reserve(FRAME_LEN + len);
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        self.encode_payload(out);
        debug_assert_eq!(out.len() - start, FRAME_LEN + len);
        let crc = checksum(&out[start..start + 4], &out[start + FRAME_LEN..]);
        out[start + 4..start + FRAME_LEN].copy_from_slice(&crc.to_le_bytes());
        Ok(())
    }

    fn encode_payload(&self, out: &mut Vec<u8>) {
        let put_str = |out: &mut Vec<u8>, s: &str| {
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        };
        let put_opt = |out: &mut Vec<u8>, s: &Option<Arc<str>>| match s {
            None => out.push(0),
            Some(s) => {
                out.push(1);
                put_str(out, s);
            }
        };
        match self {
            Record::Share(s) => {
                out.push(TAG_SHARE);
                put_str(out, &s.session);
                put_str(out, s.secret.expose());
                put_opt(out, &s.id);
                put_opt(out, &s.url);
                out.extend_from_slice(&s.created.to_le_bytes());
                put_opt(out, &s.service);
                put_opt(out, &s.protocol);
            }
            Record::Content(c) => {
                out.push(TAG_CONTENT);
                out.extend_from_slice(&c.seq.to_le_bytes());
                put_str(out, &c.key);
                put_str(out, &c.session);
                put_str(out, &c.text);
            }
            Record::Ack { key, seq } | Record::Dropped { key, seq } => {
                let tag = if matches!(self, Record::Ack { .. }) {
                    TAG_ACK
                } else {
                    TAG_DROPPED
                };
                out.push(tag);
                out.extend_from_slice(&seq.to_le_bytes());
                put_str(out, key);
            }
            Record::Remove { session } => {
                out.push(TAG_REMOVE);
                put_str(out, session);
            }
            Record::Deleted { session } => {
                out.push(TAG_DELETED);
                put_str(out, session);
            }
            Record::Synced { session, at } => {
                out.push(TAG_SYNCED);
                put_str(out, session);
                out.extend_from_slice(&at.to_le_bytes());
            }
        }
    }

    /// Reads a payload (of this code's [`VERSION`]) whose checksum held.
    pub fn decode(payload: &[u8]) -> Result<Record, Malformed> {
        Record::decode_version(payload, VERSION)
    }

    /// Reads a payload of a log of `version` (1 or 2) whose checksum held.
    pub fn decode_version(payload: &[u8], version: u32) -> Result<Record, Malformed> {
        let v2 = version >= VERSION;
        let mut r = Reader(payload);
        let record = match r.u8()? {
            TAG_SHARE => Record::Share(Share {
                session: r.str()?,
                secret: Secret::new(&r.str()?),
                id: r.opt()?,
                url: r.opt()?,
                created: if v2 { r.u64()? } else { 0 },
                service: if v2 { r.opt()? } else { None },
                protocol: if v2 { r.opt()? } else { None },
            }),
            TAG_CONTENT => Record::Content(Content {
                seq: r.u64()?,
                key: r.str()?,
                session: r.str()?,
                text: r.str()?,
            }),
            TAG_ACK => Record::Ack {
                seq: r.u64()?,
                key: r.str()?,
            },
            TAG_DROPPED => Record::Dropped {
                seq: r.u64()?,
                key: r.str()?,
            },
            TAG_REMOVE => Record::Remove { session: r.str()? },
            TAG_DELETED if v2 => Record::Deleted { session: r.str()? },
            TAG_SYNCED if v2 => Record::Synced {
                session: r.str()?,
                at: r.u64()?,
            },
            _ => return Err(Malformed),
        };
        if r.0.is_empty() {
            Ok(record)
        } else {
            Err(Malformed)
        }
    }
}

/// The frame checksum: CRC-32 of the length bytes, then the payload (a damaged length that
/// happens to land on plausible bytes still fails it).
pub fn checksum(len_bytes: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(len_bytes);
    h.update(payload);
    h.finalize()
}

/// The file header this code writes.
pub fn header() -> [u8; HEADER_LEN as usize] {
    let mut h = [0; HEADER_LEN as usize];
    h[..8].copy_from_slice(&MAGIC);
    h[8..].copy_from_slice(&VERSION.to_le_bytes());
    h
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.0.len() < n {
            return Err(Malformed);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, Malformed> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().map_err(|_| Malformed)?,
        ))
    }

    fn str(&mut self) -> Result<Arc<str>, Malformed> {
        let len = u32::from_le_bytes(self.take(4)?.try_into().map_err(|_| Malformed)?);
        let bytes = self.take(len as usize)?;
        std::str::from_utf8(bytes)
            .map(Arc::from)
            .map_err(|_| Malformed)
    }

    fn opt(&mut self) -> Result<Option<Arc<str>>, Malformed> {
        match self.u8()? {
            0 => Ok(None),
            1 => self.str().map(Some),
            _ => Err(Malformed),
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub fn text() -> impl Strategy<Value = Arc<str>> {
        "[a-z0-9/_\"{}:é]{0,24}".prop_map(|s| Arc::from(s.as_str()))
    }

    pub fn record() -> impl Strategy<Value = Record> {
        prop_oneof![
            (
                text(),
                text(),
                proptest::option::of(text()),
                proptest::option::of(text()),
                any::<u64>(),
                proptest::option::of(text()),
            )
                .prop_map(
                    |(session, secret, id, url, created, service)| Record::Share(Share {
                        session,
                        secret: Secret::new(&secret),
                        id,
                        url,
                        created,
                        protocol: service.as_ref().map(|_| Arc::from("v1")),
                        service,
                    })
                ),
            (any::<u64>(), text(), text(), text()).prop_map(|(seq, key, session, text)| {
                Record::Content(Content {
                    seq,
                    key,
                    session,
                    text,
                })
            }),
            (text(), any::<u64>()).prop_map(|(key, seq)| Record::Ack { key, seq }),
            (text(), any::<u64>()).prop_map(|(key, seq)| Record::Dropped { key, seq }),
            text().prop_map(|session| Record::Remove { session }),
            text().prop_map(|session| Record::Deleted { session }),
            (text(), any::<u64>()).prop_map(|(session, at)| Record::Synced { session, at }),
        ]
    }

    fn frame(r: &Record) -> Vec<u8> {
        let mut out = Vec::new();
        r.encode(&mut out).unwrap();
        out
    }

    proptest! {
        #[test]
        fn every_record_round_trips(r in record()) {
            let bytes = frame(&r);
            prop_assert_eq!(bytes.len() as u64, r.framed_len());
            let len = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
            prop_assert_eq!(len, bytes.len() - FRAME_LEN);
            let crc = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
            prop_assert_eq!(crc, checksum(&bytes[..4], &bytes[FRAME_LEN..]));
            prop_assert_eq!(Record::decode(&bytes[FRAME_LEN..]), Ok(r));
        }

        #[test]
        fn a_cut_or_padded_payload_is_malformed(r in record(), cut in any::<prop::sample::Index>()) {
            let bytes = frame(&r);
            let payload = &bytes[FRAME_LEN..];
            let short = &payload[..cut.index(payload.len())];
            prop_assert_eq!(Record::decode(short), Err(Malformed));
            let mut long = payload.to_vec();
            long.push(0);
            prop_assert_eq!(Record::decode(&long), Err(Malformed));
        }
    }

    #[test]
    fn unknown_tags_bad_options_and_bad_utf8_are_malformed() {
        assert_eq!(Record::decode(&[]), Err(Malformed));
        assert_eq!(Record::decode(&[9, 0, 0, 0, 0]), Err(Malformed));
        // Remove with a 2-byte session that is not UTF-8
        assert_eq!(
            Record::decode(&[TAG_REMOVE, 2, 0, 0, 0, 0xff, 0xfe]),
            Err(Malformed)
        );
        // Share whose id option byte is 2
        let mut share = vec![TAG_SHARE, 1, 0, 0, 0, b's', 1, 0, 0, 0, b'k', 2];
        assert_eq!(Record::decode(&share), Err(Malformed));
        share[11] = 0;
        share.push(0);
        // a version 1 share ends here; a version 2 one has created, service and protocol
        assert!(Record::decode_version(&share, VERSION_1).is_ok());
        assert_eq!(Record::decode(&share), Err(Malformed));
        share.extend_from_slice(&[7, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let Ok(Record::Share(s)) = Record::decode(&share) else {
            panic!("a version 2 share")
        };
        assert_eq!((s.created, s.service, s.protocol), (7, None, None));
        // the ledger's records are version 2 only
        let deleted = [TAG_DELETED, 1, 0, 0, 0, b's'];
        assert!(Record::decode(&deleted).is_ok());
        assert_eq!(Record::decode_version(&deleted, VERSION_1), Err(Malformed));
    }

    #[test]
    fn a_payload_over_the_bound_is_refused_and_nothing_written() {
        let big = Record::Content(Content {
            seq: 1,
            key: "session/part/s/m/p".into(),
            session: "s".into(),
            text: Arc::from("x".repeat(MAX_PAYLOAD)),
        });
        let mut out = vec![7];
        assert_eq!(big.encode(&mut out), Err(big.payload_len()));
        assert_eq!(out, [7]);
    }

    #[test]
    fn debug_shows_neither_secret_nor_content_text() {
        let share = Record::Share(Share {
            session: "ses_1".into(),
            secret: Secret::new("9c1f-secret"),
            id: None,
            url: Some("https://x/s/1".into()),
            created: 1,
            service: None,
            protocol: None,
        });
        let content = Record::Content(Content {
            seq: 3,
            key: "session/info/ses_1".into(),
            session: "ses_1".into(),
            text: r#"{"share":{"secret":"9c1f-secret"}}"#.into(),
        });
        let shown = format!("{share:?} {content:?}");
        assert!(!shown.contains("9c1f"), "{shown}");
        assert!(
            shown.contains("ses_1") && shown.contains("text_bytes"),
            "{shown}"
        );
    }
}
