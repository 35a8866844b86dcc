//! The spool's storage layer through its public API only, as the runtime will use it: a first
//! run appends and is dropped without any shutdown, a second run gets back what was never
//! acknowledged, and a second holder is refused with a status the C caller understands.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use opencode_share::spool::{self, Content, Record, Secret, Share, Spool};

fn part(seq: u64, part: u32, text: &str) -> Record {
    Record::Content(Content {
        seq,
        key: format!("session/part/ses_1/msg_1/prt_{part}").into(),
        session: "ses_1".into(),
        text: text.into(),
    })
}

#[test]
fn a_run_dropped_without_shutdown_is_recovered_by_the_next() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("spool");
    let (mut spool, first) = Spool::open(&dir).unwrap();
    assert!(first.contents.is_empty() && first.shares.is_empty());
    let share = Share {
        session: "ses_1".into(),
        secret: Secret::new("3b9d-secret"),
        id: Some("ses_1abc".into()),
        url: Some("http://127.0.0.1:1/s/ses_1abc".into()),
        created: 1_700_000_000_000,
        service: Some("http://127.0.0.1:1".into()),
        protocol: Some("v1".into()),
    };
    spool
        .append(&[
            Record::Share(share.clone()),
            part(first.next_seq, 1, "{\"v\":1}"),
        ])
        .unwrap();
    spool
        .append(&[
            part(first.next_seq + 1, 1, "{\"v\":2}"),
            part(first.next_seq + 2, 2, "{}"),
        ])
        .unwrap();
    let key2: Arc<str> = "session/part/ses_1/msg_1/prt_2".into();
    spool
        .append(&[Record::Ack {
            key: key2,
            seq: first.next_seq + 2,
        }])
        .unwrap();

    let e = Spool::open(&dir).unwrap_err();
    assert_eq!(e.kind, spool::ErrorKind::Locked);
    let e = opencode_share::Error::from(e);
    assert_eq!(e.kind, opencode_share::ErrorKind::InvalidArgument);
    assert!(e.message.contains(&*dir.to_string_lossy()), "{}", e.message);
    drop(spool); // no sync: a killed process loses nothing that append wrote

    let (_spool, again) = Spool::open(&dir).unwrap();
    assert_eq!(again.shares, [share]);
    let got: Vec<(&str, &str)> = again.contents.iter().map(|c| (&*c.key, &*c.text)).collect();
    assert_eq!(got, [("session/part/ses_1/msg_1/prt_1", "{\"v\":2}")]);
    assert_eq!(again.next_seq, first.next_seq + 3);
    assert_eq!(again.skipped_bytes, 0);
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}
