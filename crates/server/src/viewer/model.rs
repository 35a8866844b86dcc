//! A share's items as the page reads them: the session, its messages in id order, each with its
//! parts in id order, the changed files, and the totals of the summary header. Built in one pass
//! over the snapshot plus a sort: linear in the number of items (up to the sort's log). A part's
//! JSON is parsed only when it is rendered (most of a long share's page is fetched later).

use std::collections::HashMap;

use serde_json::Value;

use super::json;
use crate::store::Snapshot;

pub fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |v, k| v.get(*k))
        .and_then(Value::as_str)
}

pub fn number(v: &Value, path: &[&str]) -> Option<f64> {
    path.iter()
        .try_fold(v, |v, k| v.get(*k))
        .and_then(Value::as_f64)
}

pub struct Message<'a> {
    pub id: &'a str,
    pub info: Option<Value>,
    /// (part id, its JSON as stored)
    pub parts: Vec<(&'a str, &'a str)>,
}

impl Message<'_> {
    pub fn role(&self) -> Option<&str> {
        self.info.as_ref().and_then(|i| text(i, &["role"]))
    }
}

#[derive(Default)]
pub struct Share<'a> {
    pub session: Option<Value>,
    pub diff: Option<Value>,
    pub models: Option<Value>,
    pub messages: Vec<Message<'a>>,
    pub seq: i64,
}

/// Token and cost totals of the assistant messages.
#[derive(Default, Debug, PartialEq)]
pub struct Totals {
    pub cost: f64,
    pub input: u64,
    pub output: u64,
    pub reasoning: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

impl<'a> Share<'a> {
    pub fn from_snapshot(snapshot: &'a Snapshot) -> Share<'a> {
        let mut share = Share {
            seq: snapshot.seq(),
            ..Share::default()
        };
        let mut index: HashMap<&str, usize> = HashMap::new();
        for stored in &snapshot.items {
            let mut seg = stored.key.splitn(3, '/');
            match (seg.next(), seg.next(), seg.next()) {
                (Some("session"), None, None) => share.session = Some(json::parse(&stored.data)),
                (Some("session_diff"), None, None) => share.diff = Some(json::parse(&stored.data)),
                (Some("model"), None, None) => share.models = Some(json::parse(&stored.data)),
                (Some(kind @ ("message" | "part")), Some(mid), pid) => {
                    let at = *index.entry(mid).or_insert_with(|| {
                        share.messages.push(Message {
                            id: mid,
                            info: None,
                            parts: Vec::new(),
                        });
                        share.messages.len() - 1
                    });
                    let m = &mut share.messages[at];
                    match (kind, pid) {
                        ("message", None) => m.info = Some(json::parse(&stored.data)),
                        ("part", Some(pid)) => m.parts.push((pid, &stored.data)),
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        share.messages.sort_unstable_by(|a, b| a.id.cmp(b.id));
        for m in &mut share.messages {
            m.parts.sort_by(|a, b| a.0.cmp(b.0));
        }
        share
    }

    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for info in self.messages.iter().filter_map(|m| m.info.as_ref()) {
            if text(info, &["role"]) != Some("assistant") {
                continue;
            }
            let n = |k: &[&str]| number(info, k).unwrap_or(0.0).max(0.0) as u64;
            t.cost += number(info, &["cost"]).unwrap_or(0.0).max(0.0);
            t.input += n(&["tokens", "input"]);
            t.output += n(&["tokens", "output"]);
            t.reasoning += n(&["tokens", "reasoning"]);
            t.cache_read += n(&["tokens", "cache", "read"]);
            t.cache_write += n(&["tokens", "cache", "write"]);
        }
        t
    }

    /// The models of the assistant messages (`provider/model`), in order of first use.
    pub fn models_used(&self) -> Vec<String> {
        let mut seen: Vec<String> = Vec::new();
        for info in self.messages.iter().filter_map(|m| m.info.as_ref()) {
            if let Some(model) = text(info, &["modelID"]) {
                let name = match text(info, &["providerID"]) {
                    Some(p) => format!("{p}/{model}"),
                    None => model.to_owned(),
                };
                if !seen.contains(&name) && seen.len() < 16 {
                    seen.push(name);
                }
            }
        }
        seen
    }
}

/// A UTC date and time (`2025-07-10 09:20 UTC`) from milliseconds since the epoch.
pub fn date(ms: f64) -> Option<String> {
    if !ms.is_finite() || !(0.0..=253_402_300_799_000.0).contains(&ms) {
        return None;
    }
    let secs = (ms / 1000.0) as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // civil from days (H. Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Some(format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::StoredItem;

    #[test]
    fn dates_are_utc() {
        assert_eq!(date(1_752_139_200_000.0).unwrap(), "2025-07-10 09:20 UTC");
        assert_eq!(date(0.0).unwrap(), "1970-01-01 00:00 UTC");
        assert_eq!(date(951_782_400_000.0).unwrap(), "2000-02-29 00:00 UTC");
        assert!(date(-1.0).is_none() && date(f64::NAN).is_none() && date(1e300).is_none());
    }

    #[test]
    fn messages_group_in_order_whatever_the_write_order() {
        let item = |key: &str, data: &str| StoredItem {
            key: key.into(),
            kind: String::new(),
            seq: 1,
            data: data.into(),
        };
        let snap = Snapshot {
            session_id: "s".into(),
            items: vec![
                item("part/m2/p1", r#"{"type":"text"}"#),
                item("part/m1/p2", r#"{"type":"text"}"#),
                item(
                    "message/m2",
                    r#"{"role":"assistant","cost":0.5,"tokens":{"input":3}}"#,
                ),
                item("part/m1/p1", r#"{"type":"text"}"#),
                item("message/m1", r#"{"role":"user"}"#),
            ],
        };
        let share = Share::from_snapshot(&snap);
        let ids: Vec<_> = share
            .messages
            .iter()
            .map(|m| (m.id, m.parts.iter().map(|p| p.0).collect::<Vec<_>>()))
            .collect();
        assert_eq!(ids, [("m1", vec!["p1", "p2"]), ("m2", vec!["p1"])]);
        assert_eq!(share.totals().input, 3);
        assert_eq!(share.totals().cost, 0.5);
    }
}
