//! Test helpers: a server on loopback (in-process, SQLite in a temporary folder) and small HTTP calls.

#![allow(dead_code)]

use std::time::Duration;

use opencode_share_server::{Config, Running};
use serde_json::{Value, json};

pub struct Server {
    pub running: Running,
    pub dir: tempfile::TempDir,
    pub http: reqwest::blocking::Client,
}

impl Server {
    pub fn start() -> Server {
        Server::with(|_| {})
    }

    pub fn with(adjust: impl FnOnce(&mut Config)) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            listen: "127.0.0.1:0".into(),
            database: format!("sqlite://{}", dir.path().join("share.db").display()),
            ..Config::default()
        };
        adjust(&mut config);
        let running = opencode_share_server::spawn(config).expect("server starts");
        let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
        Server { running, dir, http }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.running.url)
    }

    /// POST a body as the legacy client did: no content-type.
    pub fn post_raw(&self, path: &str, body: String) -> (u16, Value) {
        let r = self.http.post(self.url(path)).body(body).send().unwrap();
        answer(r)
    }

    pub fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self.http.post(self.url(path)).header("content-type", "application/json").body(body.to_string()).send().unwrap();
        answer(r)
    }

    pub fn delete(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self.http.delete(self.url(path)).header("content-type", "application/json").body(body.to_string()).send().unwrap();
        answer(r)
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        answer(self.http.get(self.url(path)).send().unwrap())
    }

    /// Creates a ShareNext share; returns (id, secret).
    pub fn create_next(&self, session: &str) -> (String, String) {
        let (status, body) = self.post("/api/share", json!({ "sessionID": session }));
        assert_eq!(status, 200, "{body}");
        (body["id"].as_str().unwrap().into(), body["secret"].as_str().unwrap().into())
    }

    pub fn sync_next(&self, id: &str, secret: &str, items: Value) -> u16 {
        self.post(&format!("/api/share/{id}/sync"), json!({ "secret": secret, "data": items })).0
    }

    pub fn items(&self, id: &str) -> Vec<Value> {
        let (status, body) = self.get(&format!("/api/share/{id}/data"));
        assert_eq!(status, 200, "{body}");
        body.as_array().unwrap().clone()
    }
}

fn answer(r: reqwest::blocking::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

pub fn part(mid: &str, pid: &str, text: &str) -> Value {
    json!({ "type": "part", "data": { "id": pid, "messageID": mid, "sessionID": "ses_test", "type": "text", "text": text } })
}

/// A session id whose share id (last 8 characters) is unique per call in this process.
pub fn session_id() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("ses_test{:04x}{:08}", std::process::id() & 0xffff, n)
}
