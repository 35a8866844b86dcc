//! Upgrades: a database made by the schema before versioning (the exact DDL those releases ran)
//! opens with this server, keeps its shares (readable, writable with their secrets) and ends at
//! the latest version; a database newer than this release is refused. SQLite always; PostgreSQL
//! when OPENCODE_SHARE_TEST_POSTGRES names a cluster (scripts/test starts one).

mod support;

use serde_json::json;
use sha2::{Digest, Sha256};
use support::{Server, part};

/// What releases before versioning ran on every SQLite open.
const SQLITE_BEFORE: &str = "
CREATE TABLE IF NOT EXISTS shares (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    secret_hash BLOB NOT NULL,
    seq INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS items (
    share_id TEXT NOT NULL,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    seq INTEGER NOT NULL,
    size INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (share_id, key)
);
CREATE INDEX IF NOT EXISTS items_by_seq ON items (share_id, seq);
";

/// What releases before versioning ran on every PostgreSQL open.
const POSTGRES_BEFORE: &str = "
SELECT pg_advisory_xact_lock(7215993401);
CREATE TABLE IF NOT EXISTS shares (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    secret_hash BYTEA NOT NULL,
    seq BIGINT NOT NULL DEFAULT 0,
    bytes BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS items (
    share_id TEXT NOT NULL REFERENCES shares (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    seq BIGINT NOT NULL,
    size BIGINT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (share_id, key)
);
CREATE INDEX IF NOT EXISTS items_by_seq ON items (share_id, seq);
";

const OLD_ID: &str = "old12345";
const OLD_SESSION: &str = "ses_upgradeold12345";
const OLD_SECRET: &str = "a-secret-of-the-old-release";

fn old_part() -> String {
    json!({ "id": "prt_1", "messageID": "msg_1", "sessionID": OLD_SESSION, "type": "text", "text": "written before the upgrade" }).to_string()
}

/// The share the old release left: its row and one part, as that release stored them.
const INSERT_SHARE: &str = "INSERT INTO shares (id, session_id, secret_hash, seq, bytes) VALUES ";

/// The old share reads back, takes a write with its secret, and refuses a wrong one.
fn check_upgraded(server: &Server) {
    let items = server.items(OLD_ID);
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["data"]["text"], "written before the upgrade");
    let write = json!([part("msg_1", "prt_2", "written after")["data"]]);
    let items_next = json!([{ "type": "part", "data": write[0] }]);
    assert_eq!(
        server.sync_next(OLD_ID, OLD_SECRET, items_next.clone()),
        200
    );
    assert_eq!(server.sync_next(OLD_ID, "wrong", items_next), 403);
    assert_eq!(server.items(OLD_ID).len(), 2);
}

#[test]
fn a_sqlite_database_of_the_release_before_versioning_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("share.db");
    {
        let old = rusqlite::Connection::open(&path).unwrap();
        old.execute_batch(SQLITE_BEFORE).unwrap();
        let data = old_part();
        old.execute(
            &format!("{INSERT_SHARE}(?1, ?2, ?3, 1, ?4)"),
            rusqlite::params![
                OLD_ID,
                OLD_SESSION,
                Sha256::digest(OLD_SECRET).to_vec(),
                data.len() as i64
            ],
        )
        .unwrap();
        old.execute(
            "INSERT INTO items (share_id, key, kind, seq, size, data) VALUES (?1, 'part/msg_1/prt_1', 'part', 1, ?2, ?3)",
            rusqlite::params![OLD_ID, data.len() as i64, data],
        )
        .unwrap();
        let version: i64 = old
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 0);
    }
    let database = format!("sqlite://{}", path.display());
    let server = Server::with(|c| c.database = database.clone());
    check_upgraded(&server);
    drop(server);
    let db = rusqlite::Connection::open(&path).unwrap();
    let version: usize = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, opencode_share_server::store::migrations::latest());
    let (created, updated): (i64, i64) = db
        .query_row(
            "SELECT created_at, updated_at FROM shares WHERE id = ?1",
            [OLD_ID],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(
        created > 1_700_000_000 && updated >= created,
        "{created} {updated}"
    );
    // a second open of the upgraded file changes nothing and still serves it
    let server = Server::with(|c| c.database = database.clone());
    assert_eq!(server.items(OLD_ID).len(), 2);
    drop(server);
    // a database a newer release migrated is refused, with the reason
    db.execute_batch("PRAGMA user_version = 999").unwrap();
    drop(db);
    let mut config = opencode_share_server::Config {
        listen: "127.0.0.1:0".into(),
        database,
        ..Default::default()
    };
    config.limits.rate_per_share = 0;
    let refused = opencode_share_server::spawn(config).err().unwrap();
    assert!(refused.contains("version 999, newer"), "{refused}");
}

#[test]
fn a_postgres_database_of_the_release_before_versioning_is_upgraded_in_place() {
    let Some(url) = support::test_postgres() else {
        return;
    };
    // a database of its own, so the shared one's schema is left alone
    let name = format!("upgrade_{}", std::process::id());
    let sql = |url: String, statements: String| support::pg_execute(&url, &statements);
    sql(url.clone(), format!("DROP DATABASE IF EXISTS {name}"));
    sql(url.clone(), format!("CREATE DATABASE {name}"));
    let own = format!("{}/{name}", url.rsplit_once('/').unwrap().0);
    let hash: String = Sha256::digest(OLD_SECRET)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let data = old_part();
    sql(
        own.clone(),
        format!(
            "BEGIN; {POSTGRES_BEFORE} {INSERT_SHARE}('{OLD_ID}', '{OLD_SESSION}', '\\x{hash}', 1, {len});
             INSERT INTO items (share_id, key, kind, seq, size, data) VALUES ('{OLD_ID}', 'part/msg_1/prt_1', 'part', 1, {len}, '{data}'); COMMIT;",
            len = data.len()
        ),
    );
    let server = Server::with(|c| c.database = own.clone());
    check_upgraded(&server);
    drop(server);
    // the version table says latest; a second open changes nothing
    let server = Server::with(|c| c.database = own.clone());
    assert_eq!(server.items(OLD_ID).len(), 2);
    drop(server);
    let latest = opencode_share_server::store::migrations::latest();
    let check = format!(
        "DO $$ BEGIN IF (SELECT MAX(version) FROM opencode_share_schema) <> {latest} OR (SELECT COUNT(*) FROM opencode_share_schema) <> {latest} THEN RAISE EXCEPTION 'wrong version'; END IF; END $$;
         DO $$ BEGIN IF (SELECT MIN(created_at) FROM shares) < 1700000000 THEN RAISE EXCEPTION 'no creation time'; END IF; END $$;"
    );
    sql(own.clone(), check);
    sql(
        own.clone(),
        "INSERT INTO opencode_share_schema (version) VALUES (999)".into(),
    );
    let refused = opencode_share_server::spawn(opencode_share_server::Config {
        listen: "127.0.0.1:0".into(),
        database: own.clone(),
        ..Default::default()
    })
    .err()
    .unwrap();
    assert!(refused.contains("version 999, newer"), "{refused}");
    sql(url, format!("DROP DATABASE {name} WITH (FORCE)"));
}
