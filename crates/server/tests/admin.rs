//! The administrator's tools: `opencode-share-server admin list|show|export|delete|backup` on the
//! database (a server running on it), a backup restored into a new server, and the admin HTTP API
//! behind `--admin-token` (401 without it, a takedown closes the share's live viewers, the token
//! in no log line).

mod support;

use std::process::Command;

use serde_json::{Value, json};
use support::{Events, Server, part, session_id};

/// Runs `admin ARGS` on `database`: (exit success, stdout, stderr).
fn admin(database: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_opencode-share-server"))
        .args(["admin", "--database", database])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A share with `parts` parts; returns (id, secret).
fn share_with(server: &Server, parts: usize) -> (String, String) {
    let (id, secret) = server.create_next(&session_id());
    let items: Vec<Value> = (0..parts)
        .map(|n| part("msg_1", &format!("prt_{n}"), "some text"))
        .collect();
    assert_eq!(server.sync_next(&id, &secret, json!(items)), 200);
    (id, secret)
}

#[test]
fn the_admin_commands_list_show_export_delete_and_back_up_a_live_database() {
    let server = Server::start();
    let (kept, _) = share_with(&server, 2);
    let (gone, _) = share_with(&server, 3);
    let path = server.dir.path().join("share.db");
    let database = format!("sqlite://{}", path.display());

    let (ok, listed, err) = admin(&database, &["list"]);
    assert!(ok, "{err}");
    let rows: Vec<Value> = listed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2, "{listed}");
    let row = rows.iter().find(|r| r["id"] == gone.as_str()).unwrap();
    assert_eq!(row["items"], 3);
    assert!(row["updated"].as_i64().unwrap() > 1_700_000_000);
    assert!(!listed.contains("secret"), "{listed}");
    let (_, one, _) = admin(&database, &["list", "--limit", "1"]);
    assert_eq!(one.lines().count(), 1);

    let (ok, shown, _) = admin(&database, &["show", &kept]);
    assert!(ok);
    assert_eq!(serde_json::from_str::<Value>(&shown).unwrap()["items"], 2);
    let (ok, exported, _) = admin(&database, &["export", &kept]);
    assert!(ok);
    let exported: Value = serde_json::from_str(&exported).unwrap();
    assert_eq!(exported["items"].as_array().unwrap().len(), 2);
    assert_eq!(exported["items"][0]["data"]["text"], "some text");

    let (ok, said, _) = admin(&database, &["delete", &gone]);
    assert!(ok && said.contains(&gone), "{said}");
    assert_eq!(server.get(&format!("/api/share/{gone}/data")).0, 404);
    let (ok, _, err) = admin(&database, &["show", &gone]);
    assert!(!ok && err.contains("no such share"), "{err}");
    let (ok, _, err) = admin(&database, &["delete", &gone]);
    assert!(!ok && err.contains("no such share"), "{err}");

    // a backup taken while the server runs, restored as another server's database
    let backup = server.dir.path().join("backup.db");
    let (ok, _, err) = admin(&database, &["backup", &backup.display().to_string()]);
    assert!(ok, "{err}");
    let (ok, _, err) = admin(&database, &["backup", &backup.display().to_string()]);
    assert!(
        !ok && err.contains("cannot back up"),
        "an existing file is never overwritten: {err}"
    );
    let restored_dir = tempfile::tempdir().unwrap();
    let restored = restored_dir.path().join("share.db");
    std::fs::copy(&backup, &restored).unwrap();
    let restored_url = format!("sqlite://{}", restored.display());
    let second = Server::with(|c| c.database = restored_url.clone());
    assert_eq!(second.items(&kept).len(), 2);
    assert_eq!(second.get(&format!("/api/share/{gone}/data")).0, 404);

    let (ok, _, err) = admin("mysql://x", &["list"]);
    assert!(!ok && err.contains("--database must be"), "{err}");
}

/// The binary with `--admin-token` (from the environment) and its log in a file.
struct Logged {
    child: std::process::Child,
    url: String,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Logged {
    fn start(token: &str) -> Logged {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("server.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_opencode-share-server"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--wrong-secret-limit",
                "7",
                "--database",
            ])
            .arg(format!("sqlite://{}", dir.path().join("s.db").display()))
            .env("OPENCODE_SHARE_ADMIN_TOKEN", token)
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let url = support::listening_on(&mut child);
        Logged {
            child,
            url,
            log,
            _dir: dir,
        }
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_admin_api_needs_its_token_lists_and_takes_a_share_down_closing_its_viewers() {
    let token = "admin-token-4f1c9a7e3b2d";
    let server = Logged::start(token);
    let http = support::http_client(std::time::Duration::from_secs(20));
    let call = |method: reqwest::Method, path: &str, bearer: Option<&str>| {
        let mut request = http.request(method, format!("{}{path}", server.url));
        if let Some(b) = bearer {
            request = request.header("authorization", format!("Bearer {b}"));
        }
        let response = request.send().unwrap();
        let status = response.status().as_u16();
        let text = response.text().unwrap();
        (
            status,
            serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
        )
    };
    let post = |path: &str, body: Value| {
        let r = http
            .post(format!("{}{path}", server.url))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        r.json::<Value>().unwrap()
    };
    let mut ids = Vec::new();
    for _ in 0..3 {
        let created = post("/api/share", json!({ "sessionID": session_id() }));
        let id = created["id"].as_str().unwrap().to_owned();
        let write =
            json!({ "secret": created["secret"], "data": [part("msg_1", "prt_1", "hello")] });
        post(&format!("/api/share/{id}/sync"), write);
        ids.push(id);
    }
    ids.sort();
    use reqwest::Method;
    for bearer in [None, Some("wrong"), Some("admin-token-4f1c9a7e3b2")] {
        let (status, body) = call(Method::GET, "/admin/shares", bearer);
        assert_eq!(status, 401, "{bearer:?}");
        assert!(body["error"].as_str().unwrap().contains("admin token"));
        assert_eq!(
            call(Method::DELETE, &format!("/admin/shares/{}", ids[0]), bearer).0,
            401
        );
    }
    let (status, page) = call(Method::GET, "/admin/shares?limit=2", Some(token));
    assert_eq!(status, 200);
    let listed: Vec<&str> = page["shares"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [ids[0].as_str(), ids[1].as_str()]);
    let (_, rest) = call(
        Method::GET,
        &format!(
            "/admin/shares?limit=2&after={}",
            page["next"].as_str().unwrap()
        ),
        Some(token),
    );
    assert_eq!(rest["shares"][0]["id"], ids[2].as_str());
    assert!(rest["next"].is_null());
    let (status, one) = call(
        Method::GET,
        &format!("/admin/shares/{}", ids[1]),
        Some(token),
    );
    assert_eq!((status, one["items"].as_i64()), (200, Some(1)));
    let (status, whole) = call(
        Method::GET,
        &format!("/admin/shares/{}/export", ids[1]),
        Some(token),
    );
    assert_eq!(
        (status, whole["items"][0]["data"]["text"].as_str()),
        (200, Some("hello"))
    );

    // a viewer watching the share is told it is gone and its stream ends
    let mut viewer = Events::open(&http, &server.url, &ids[1], 0);
    assert_eq!(viewer.next().0, "item");
    let (status, _) = call(
        Method::DELETE,
        &format!("/admin/shares/{}", ids[1]),
        Some(token),
    );
    assert_eq!(status, 204);
    assert_eq!(viewer.next().0, "deleted");
    assert_eq!(
        call(Method::GET, &format!("/api/share/{}/data", ids[1]), None).0,
        404
    );
    assert_eq!(
        call(
            Method::DELETE,
            &format!("/admin/shares/{}", ids[1]),
            Some(token)
        )
        .0,
        404
    );
    assert_eq!(
        call(Method::GET, "/admin/shares/bad%20id", Some(token)).0,
        400
    );

    // wrong tokens spend the client's budget (7 a minute here, 6 spent above): then 429
    assert_eq!(call(Method::GET, "/admin/shares", Some("guess")).0, 401);
    let (status, body) = call(Method::GET, "/admin/shares", Some("guess"));
    assert_eq!(status, 429, "{body}");
    assert_eq!(
        call(Method::GET, "/admin/shares", Some(token)).0,
        200,
        "the right token still works"
    );

    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(
        log.contains("/admin/shares"),
        "the admin calls are in the access log: {log}"
    );
    assert!(
        !log.contains("admin-token-4f1c"),
        "the token is in the log: {log}"
    );
}

#[test]
fn without_an_admin_token_there_is_no_admin_api() {
    let server = Server::start();
    assert_eq!(server.get("/admin/shares").0, 404);
}

#[test]
fn on_postgres_the_admin_commands_take_a_share_down_and_the_running_server_closes_its_viewers() {
    let Some(url) = support::test_postgres() else {
        return;
    };
    let server = Server::with(|c| c.database = url.clone());
    let (id, _) = share_with(&server, 2);
    let (ok, listed, err) = admin(&url, &["list"]);
    assert!(ok && listed.contains(&format!("\"id\":\"{id}\"")), "{err}");
    let (ok, shown, _) = admin(&url, &["show", &id]);
    assert!(ok && shown.contains("\"items\":2"), "{shown}");
    let mut viewer = Events::open(&server.http, &server.running.url, &id, 0);
    assert_eq!(viewer.next().0, "item");
    let (ok, _, err) = admin(&url, &["delete", &id]);
    assert!(ok, "{err}");
    // told through LISTEN/NOTIFY, as another server process's delete would be
    for _ in 0..3 {
        let (kind, _) = viewer.next();
        if kind == "deleted" {
            break;
        }
        assert_eq!(kind, "item");
    }
    assert_eq!(server.get(&format!("/api/share/{id}/data")).0, 404);
    let (ok, _, err) = admin(&url, &["backup", "/tmp/never-written.db"]);
    assert!(!ok && err.contains("pg_dump"), "{err}");
}
