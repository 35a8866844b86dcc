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

/// A blocking HTTP client. reqwest is built with the library's `rustls-no-provider` (features
/// unify across the workspace), so ring's provider is installed first, as the library does.
pub fn http_client(timeout: Duration) -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder()
        .timeout(timeout)
        .build()
        .unwrap()
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
        Server {
            running,
            dir,
            http: http_client(Duration::from_secs(20)),
        }
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
        let r = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap();
        answer(r)
    }

    pub fn delete(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .delete(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap();
        answer(r)
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        answer(self.http.get(self.url(path)).send().unwrap())
    }

    /// Creates a ShareNext share; returns (id, secret).
    pub fn create_next(&self, session: &str) -> (String, String) {
        let (status, body) = self.post("/api/share", json!({ "sessionID": session }));
        assert_eq!(status, 200, "{body}");
        (
            body["id"].as_str().unwrap().into(),
            body["secret"].as_str().unwrap().into(),
        )
    }

    pub fn sync_next(&self, id: &str, secret: &str, items: Value) -> u16 {
        self.post(
            &format!("/api/share/{id}/sync"),
            json!({ "secret": secret, "data": items }),
        )
        .0
    }

    pub fn items(&self, id: &str) -> Vec<Value> {
        let (status, body) = self.get(&format!("/api/share/{id}/data"));
        assert_eq!(status, 200, "{body}");
        body.as_array().unwrap().clone()
    }
}

/// The server binary as a child process on a free port: (child, base URL from its first line).
pub fn start_binary(database: &str) -> (std::process::Child, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_opencode-share-server"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--database",
            database,
            "--rate-limit",
            "0",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let url = listening_on(&mut child);
    (child, url)
}

/// The base URL a started binary names in its first line of stdout (piped).
pub fn listening_on(child: &mut std::process::Child) -> String {
    use std::io::{BufRead, BufReader};
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.trim()
        .strip_prefix("listening on ")
        .expect("the first line names the address")
        .to_owned()
}

/// The test cluster's URL (OPENCODE_SHARE_TEST_POSTGRES), or None: the test then says it skipped
/// (under CI a missing cluster fails it).
pub fn test_postgres() -> Option<String> {
    let url = std::env::var("OPENCODE_SHARE_TEST_POSTGRES").ok();
    if url.is_none() {
        assert!(std::env::var("CI").is_err(), "CI must start PostgreSQL");
        eprintln!("skipped: OPENCODE_SHARE_TEST_POSTGRES is not set (scripts/test sets it)");
    }
    url
}

/// Runs `statements` on the PostgreSQL at `url`, from outside the server.
pub fn pg_execute(url: &str, statements: &str) {
    pg_query(url, statements);
}

/// Runs `sql` on the PostgreSQL at `url` (plain TCP); the first column of its first row, as text.
pub fn pg_query(url: &str, sql: &str) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        let driver = tokio::spawn(conn);
        let messages = client.simple_query(sql).await.unwrap();
        drop(client);
        let _ = driver.await;
        messages
            .iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
                _ => None,
            })
            .unwrap_or_default()
    })
}

fn answer(r: reqwest::blocking::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

pub fn part(mid: &str, pid: &str, text: &str) -> Value {
    json!({ "type": "part", "data": { "id": pid, "messageID": mid, "sessionID": "ses_test", "type": "text", "text": text } })
}

/// A session id whose share id (last 8 characters) is unique per call in this process.
/// (Random per process, so runs against one PostgreSQL database do not collide.)
pub fn session_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    static BASE: OnceLock<u32> = OnceLock::new();
    let base = *BASE.get_or_init(|| {
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish() as u32
    });
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!(
        "ses_test{:08x}",
        base.wrapping_add(n.wrapping_mul(2_654_435_761))
    )
}

/// An SSE client of `/share/<id>/events`: yields (event, data) pairs.
pub struct Events(std::io::Lines<std::io::BufReader<reqwest::blocking::Response>>);

impl Events {
    pub fn open(http: &reqwest::blocking::Client, base: &str, id: &str, after: i64) -> Events {
        use std::io::BufRead;
        let response = http
            .get(format!("{base}/share/{id}/events?after={after}"))
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        Events(std::io::BufReader::new(response).lines())
    }

    /// The next event (the server's keep-alive comes every 15 s; the client's timeout bounds a wait).
    pub fn next(&mut self) -> (String, Value) {
        let mut kind = String::new();
        for _ in 0..100 {
            let line = self.0.next().expect("the stream goes on").unwrap();
            if let Some(k) = line.strip_prefix("event: ") {
                kind = k.to_owned();
            } else if let Some(d) = line.strip_prefix("data: ") {
                return (kind, serde_json::from_str(d).unwrap());
            }
        }
        panic!("no event in 100 lines");
    }
}
