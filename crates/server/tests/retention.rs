//! `--expire-after DAYS`: a share nobody wrote to for that long is deleted by the sweep and its
//! open viewers are told; a share written since is kept. The idle time is made by setting the
//! share's last-write time in the database (no sleeping for days). SQLite always; PostgreSQL
//! when OPENCODE_SHARE_TEST_POSTGRES names a cluster.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{Events, Server, part, session_id};

/// Runs one SQL statement on the database the server uses, from outside the server.
type Sql = Box<dyn Fn(&str)>;

fn expiring(database: Option<String>) -> Server {
    Server::with(|c| {
        if let Some(url) = database {
            c.database = url;
        }
        c.expire_after = Some(Duration::from_secs(86_400));
        c.expire_sweep = Duration::from_millis(100);
        c.admin_token = Some("admin".into());
    })
}

/// The share's last-write time as the admin API tells it.
fn updated(server: &Server, id: &str) -> i64 {
    let r = server
        .http
        .get(server.url(&format!("/admin/shares/{id}")))
        .header("authorization", "Bearer admin")
        .send()
        .unwrap();
    r.json::<serde_json::Value>().unwrap()["updated"]
        .as_i64()
        .unwrap()
}

fn idle_shares_are_deleted_and_their_viewers_closed(server: &Server, sql: Sql) {
    let (idle, _) = server.create_next(&session_id());
    let (busy, busy_secret) = server.create_next(&session_id());
    let (fresh, _) = server.create_next(&session_id());
    for id in [&idle, &busy, &fresh] {
        assert_eq!(server.items(id).len(), 0);
    }
    let mut viewer = Events::open(&server.http, &server.running.url, &idle, 0);
    // half a day without a write for `busy` (kept), then a write makes it fresh again
    sql(&format!(
        "UPDATE shares SET updated_at = updated_at - 43200 WHERE id = '{busy}'"
    ));
    let aged = updated(server, &busy);
    let write = json!([part("msg_1", "prt_1", "still here")]);
    assert_eq!(server.sync_next(&busy, &busy_secret, write), 200);
    assert!(
        updated(server, &busy) >= aged + 43200,
        "a write sets the last-write time"
    );
    // two days without a write for `idle`
    sql(&format!(
        "UPDATE shares SET updated_at = updated_at - 2 * 86400 WHERE id = '{idle}'"
    ));
    // the sweep (every 100 ms) deletes it, then tells the viewer (polled, at most 20 s)
    let gone = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        server.get(&format!("/api/share/{idle}/data")).0 == 404
    });
    assert!(gone, "the idle share was not swept");
    assert_eq!(viewer.next().0, "deleted");
    for kept in [&busy, &fresh] {
        assert_eq!(
            server.get(&format!("/api/share/{kept}/data")).0,
            200,
            "{kept}"
        );
    }
}

#[test]
fn sqlite_idle_shares_expire() {
    let server = expiring(None);
    let path = server.dir.path().join("share.db");
    let sql: Sql = Box::new(move |statement| {
        let db = rusqlite::Connection::open(&path).unwrap();
        db.busy_timeout(Duration::from_secs(10)).unwrap();
        db.execute_batch(statement).unwrap();
    });
    idle_shares_are_deleted_and_their_viewers_closed(&server, sql);
}

#[test]
fn postgres_idle_shares_expire() {
    let Some(url) = support::test_postgres() else {
        return;
    };
    let server = expiring(Some(url.clone()));
    let sql: Sql = Box::new(move |statement| support::pg_execute(&url, statement));
    idle_shares_are_deleted_and_their_viewers_closed(&server, sql);
}
