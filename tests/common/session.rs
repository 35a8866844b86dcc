//! A host's session under the "next" protocol, for tests: it writes opencode's storage keys
//! through `api::sync` with SDK-shaped contents (parts carry `id` and `messageID`, objects a
//! version `v` per item) and remembers the item each key becomes, so a test can compare what a
//! service holds with exactly the newest item of every key.
#![allow(dead_code)]

use std::collections::BTreeMap;

use opencode_share::api;
use serde_json::{Value, json};

/// One shared session as the host writes it.
pub struct Session {
    pub sid: String,
    /// item key (`session`, `message/<mid>`, `part/<mid>/<pid>`, ...) → `{"type","data"}`
    pub expected: BTreeMap<String, Value>,
    versions: BTreeMap<String, u64>,
}

impl Session {
    pub fn new(sid: &str) -> Session {
        Session {
            sid: sid.to_owned(),
            expected: BTreeMap::new(),
            versions: BTreeMap::new(),
        }
    }

    /// Writes `session/info/<sid>`.
    pub fn info(&mut self, title: &str) {
        let data = json!({"id": self.sid, "title": title, "version": "1"});
        self.write(
            format!("session/info/{}", self.sid),
            "session",
            "session".into(),
            data,
        );
    }

    /// Writes `session/message/<sid>/<mid>`.
    pub fn message(&mut self, mid: &str) {
        let data = json!({"id": mid, "sessionID": self.sid, "role": "assistant"});
        let key = format!("session/message/{}/{mid}", self.sid);
        self.write(key, "message", format!("message/{mid}"), data);
    }

    /// Writes `session/part/<sid>/<mid>/<pid>` with a text part.
    pub fn part(&mut self, mid: &str, pid: &str, text: &str) {
        let data = json!({"id": pid, "messageID": mid, "sessionID": self.sid, "type": "text", "text": text});
        let key = format!("session/part/{}/{mid}/{pid}", self.sid);
        self.write(key, "part", format!("part/{mid}/{pid}"), data);
    }

    /// Writes `session/part/<sid>/<mid>/<pid>` as a streamed text part: only its text changes
    /// from one write to the next (its `v` stays), so a growing text is an append of the last.
    pub fn stream(&mut self, mid: &str, pid: &str, text: &str) {
        let data = json!({"id": pid, "messageID": mid, "sessionID": self.sid, "type": "text", "text": text});
        let key = format!("session/part/{}/{mid}/{pid}", self.sid);
        let item = format!("part/{mid}/{pid}");
        self.versions.entry(item.clone()).or_insert(0);
        self.put(key, "part", item, data, false);
    }

    /// Writes `session/diff/<sid>` (a JSON array).
    pub fn diff(&mut self, files: &[&str]) {
        let data: Vec<Value> = files
            .iter()
            .map(|f| json!({"file": f, "additions": 1, "deletions": 0, "status": "modified"}))
            .collect();
        let key = format!("session/diff/{}", self.sid);
        self.write(
            key,
            "session_diff",
            "session_diff".into(),
            Value::Array(data),
        );
    }

    /// Writes `session/model/<sid>` (a JSON array).
    pub fn model(&mut self, ids: &[&str]) {
        let data: Vec<Value> = ids
            .iter()
            .map(|id| json!({"id": id, "providerID": "p"}))
            .collect();
        let key = format!("session/model/{}", self.sid);
        self.write(key, "model", "model".into(), Value::Array(data));
    }

    /// The newest version `v` written to an item (objects only).
    pub fn version(&self, item: &str) -> u64 {
        self.versions.get(item).copied().unwrap_or(0)
    }

    fn write(&mut self, key: String, kind: &str, item: String, data: Value) {
        self.put(key, kind, item, data, true);
    }

    /// Writes `data` with the item's version `v`, counted up first if `bump`.
    fn put(&mut self, key: String, kind: &str, item: String, mut data: Value, bump: bool) {
        if let Some(obj) = data.as_object_mut() {
            let v = self.versions.entry(item.clone()).or_insert(0);
            *v += u64::from(bump || *v == 0);
            obj.insert("v".into(), json!(*v));
        }
        api::sync(&key, &data.to_string()).unwrap_or_else(|e| panic!("sync {key}: {e}"));
        self.expected
            .insert(item, json!({"type": kind, "data": data}));
    }
}

/// Panics with the differing item keys unless `held` is exactly `expected`.
pub fn assert_exactly(held: &BTreeMap<String, Value>, expected: &BTreeMap<String, Value>) {
    let wrong: Vec<&String> = expected
        .keys()
        .chain(held.keys())
        .filter(|k| held.get(*k) != expected.get(*k))
        .collect();
    assert!(
        wrong.is_empty(),
        "the service's items differ from the newest writes at {wrong:?}\nheld: {held:?}"
    );
}
