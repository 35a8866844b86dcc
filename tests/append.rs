//! The append extension (docs/append-protocol.md) from the library's side, under both
//! protocols, against the real server behind the fault proxy: a streamed part goes as appends
//! once the server advertised them and lands exactly; a service that never advertised them
//! (opencode's hosted services, played by the testkit) never gets one; an append the server
//! refuses goes again whole at once, and nothing is lost or doubled.

mod common;

use std::time::Duration;

use common::{
    Protocol, Session, assert_exactly, share, short_id, start, start_hosted, start_next, stats,
};
use opencode_share::api;
use serde_json::{Value, json};
use testkit::Passed;

const FLUSH: Duration = Duration::from_secs(30);

/// Whether a sync request carried an append (v1's `append`, or a "next" item's).
fn appends(p: &Passed) -> bool {
    let json = p.json().unwrap_or_default();
    json.get("append").is_some()
        || json["data"]
            .as_array()
            .is_some_and(|items| items.iter().any(|i| i.get("append").is_some()))
}

/// Writes a part of 8 KB (whole: it is new) and sends it; the request it went in.
fn big_part(rig: &testkit::Service, protocol: Protocol, s: &mut Session) -> Passed {
    s.part("msg_1", "prt_big", &"a long tool output line\n".repeat(350));
    api::flush(FLUSH).unwrap();
    rig.syncs_of(protocol, &s.sid).pop().expect("a sync")
}

/// Streams `revisions` growing revisions of one part, each sent before the next is written.
fn stream_part(s: &mut Session, revisions: usize) -> String {
    api::flush(FLUSH).unwrap(); // what came before goes first, on its own
    let mut text = "An answer streamed a few words at a time. ".repeat(4);
    for n in 0..revisions {
        text.push_str(&format!("word {n}, é \"quoted\"\n"));
        s.stream("msg_1", "prt_1", &text);
        api::flush(FLUSH).unwrap();
    }
    text
}

#[test]
fn a_streamed_part_goes_as_appends_and_lands_exactly() {
    for protocol in Protocol::ALL {
        let rig = start(protocol, "");
        let mut s = Session::new("ses_append_stream001");
        share(&s.sid);
        s.message("msg_1");
        stream_part(&mut s, 20);
        assert_exactly(&rig.data_of(protocol, &s.sid), &s.expected);
        let syncs = rig.syncs_of(protocol, &s.sid);
        assert!(syncs.iter().all(|p| p.status == Some(200)), "{syncs:?}");
        // the first revision goes whole (nothing acknowledged yet), every later one as an append
        let appended = syncs.iter().filter(|p| appends(p)).count();
        assert_eq!(appended, 19, "{protocol:?}");
        let st = stats();
        assert_eq!(
            (
                st["appends"]["sent"].as_u64(),
                st["appends"]["refused"].as_u64()
            ),
            (Some(19), Some(0))
        );
        // an append carries the words it adds, never the text before them
        let last = syncs.last().unwrap();
        assert!(
            last.body.contains("word 19") && !last.body.contains("word 18"),
            "{}",
            last.body
        );
        assert_eq!(
            last.header("content-encoding"),
            None,
            "a small body goes as it is"
        );
        // a body of several KB goes gzip-compressed (the proxy logs it decoded)
        let big = big_part(&rig, protocol, &mut s);
        assert_eq!(big.header("content-encoding"), Some("gzip"));
        assert!(big.body.contains("a long tool output line") && big.status == Some(200));
        assert_exactly(&rig.data_of(protocol, &s.sid), &s.expected);
    }
}

#[test]
fn a_service_that_never_advertised_appends_never_gets_one() {
    for protocol in Protocol::ALL {
        let rig = match protocol {
            Protocol::V1 => start_hosted(""),
            Protocol::Next => start_next(""),
        };
        let mut s = Session::new("ses_append_hosted001");
        share(&s.sid);
        s.message("msg_1");
        stream_part(&mut s, 10);
        let syncs = rig.syncs_of(protocol, &s.sid);
        assert_eq!(syncs.len(), 11, "{protocol:?}: {syncs:?}");
        assert!(
            !syncs.iter().any(appends),
            "{protocol:?}: an append reached a service without the extension"
        );
        let big = big_part(&rig, protocol, &mut s);
        assert_eq!(
            big.header("content-encoding"),
            None,
            "gzip only where advertised"
        );
        assert_eq!(stats()["appends"]["sent"], 0);
        assert_exactly(&rig.data_of(protocol, &s.sid), &s.expected);
    }
}

#[test]
fn an_append_the_server_refuses_goes_again_whole_at_once() {
    for protocol in Protocol::ALL {
        let rig = start(protocol, "");
        let mut s = Session::new("ses_append_refused01");
        let secret = share(&s.sid);
        let id = short_id(&s.sid).to_owned();
        s.message("msg_1");
        let text = stream_part(&mut s, 2);
        // someone else (another host of the session) writes the part behind the library's back
        let other = json!({ "id": "prt_1", "messageID": "msg_1", "type": "text", "text": "other" });
        let key = format!("session/part/{}/msg_1/prt_1", s.sid);
        let (status, _) = match protocol {
            Protocol::V1 => rig.post(
                "/share_sync",
                &json!({ "sessionID": s.sid, "secret": secret, "key": key, "content": other })
                    .to_string(),
            ),
            Protocol::Next => rig.post(
                &format!("/api/share/{id}/sync"),
                &json!({ "secret": secret, "data": [{ "type": "part", "data": other }] })
                    .to_string(),
            ),
        };
        assert_eq!(status, 200);
        // the library's next revision is an append of what it had acknowledged: refused (the
        // stored text is not that long), then sent whole
        s.stream("msg_1", "prt_1", &format!("{text}and the end."));
        api::flush(FLUSH).unwrap();
        let syncs = rig.syncs_of(protocol, &s.sid);
        let tail: Vec<(Option<u16>, bool)> = syncs
            .iter()
            .rev()
            .take(2)
            .rev()
            .map(|p| (p.status, appends(p)))
            .collect();
        assert_eq!(
            tail,
            [(Some(409), true), (Some(200), false)],
            "{protocol:?}"
        );
        assert_exactly(&rig.data_of(protocol, &s.sid), &s.expected);
        let st = stats();
        assert_eq!(
            (st["appends"]["refused"].as_u64(), st["dropped"].as_u64()),
            (Some(1), Some(0))
        );
        assert_eq!(st["requests"].as_u64(), Some(syncs.len() as u64));
        // and the next revision is an append again
        s.stream("msg_1", "prt_1", &format!("{text}and the end. Really."));
        api::flush(FLUSH).unwrap();
        let last = rig.syncs_of(protocol, &s.sid).pop().unwrap();
        assert!(appends(&last) && last.status == Some(200), "{last:?}");
        assert_exactly(&rig.data_of(protocol, &s.sid), &s.expected);
    }
}

/// What the server holds for `sid`'s share, as `{"type","data"}` by item key.
trait DataOf {
    fn data_of(&self, protocol: Protocol, sid: &str) -> std::collections::BTreeMap<String, Value>;
}

impl DataOf for testkit::Service {
    fn data_of(&self, _protocol: Protocol, sid: &str) -> std::collections::BTreeMap<String, Value> {
        self.next_items(short_id(sid)).expect("the share exists")
    }
}
