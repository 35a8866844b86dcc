//! The schema's versions, in order, for each database. A database records the last version it
//! ran (SQLite's `user_version`, PostgreSQL's `opencode_share_schema` table); opening it runs the
//! ones after that in one transaction, and refuses a database newer than this binary. Append only:
//! a released step is never edited, a change is a new step at the end of both lists.
//!
//! Version 1 is the schema of every release before versioning (tables made `IF NOT EXISTS`), so a
//! database made by one of those (version 0, its tables already there) passes through it unchanged.

/// SQLite's steps (run by `rusqlite_migration`, which keeps the version in `user_version`).
pub const SQLITE: &[&str] = &[
    // 1: shares and their items
    "
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
",
    // 2: when a share was created and last written (Unix seconds), for the admin's list and
    // retention; shares older than this step count from the upgrade
    "
ALTER TABLE shares ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE shares ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;
UPDATE shares SET created_at = CAST(strftime('%s', 'now') AS INTEGER), updated_at = CAST(strftime('%s', 'now') AS INTEGER);
CREATE INDEX shares_by_update ON shares (updated_at);
",
    // 3: appends kept beside their item's stored base until folded into it (store/pending.rs),
    // so a streamed text costs its suffix per write, not its whole length
    "
CREATE TABLE item_appends (
    share_id TEXT NOT NULL,
    key TEXT NOT NULL,
    seq INTEGER NOT NULL,
    grows TEXT NOT NULL,
    PRIMARY KEY (share_id, key, seq)
) WITHOUT ROWID;
",
];

/// PostgreSQL's steps, the same versions as SQLite's.
pub const POSTGRES: &[&str] = &[
    // 1: shares and their items
    "
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
",
    // 2: when a share was created and last written (Unix seconds)
    "
ALTER TABLE shares ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE shares ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
UPDATE shares SET created_at = EXTRACT(EPOCH FROM now())::BIGINT, updated_at = EXTRACT(EPOCH FROM now())::BIGINT;
CREATE INDEX shares_by_update ON shares (updated_at);
",
    // 3: appends kept beside their item's stored base until folded into it
    "
CREATE TABLE item_appends (
    share_id TEXT NOT NULL REFERENCES shares (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    seq BIGINT NOT NULL,
    grows TEXT NOT NULL,
    PRIMARY KEY (share_id, key, seq)
);
",
];

/// PostgreSQL's migration: under an advisory lock (several processes may start at once), in the
/// caller's transaction, run the steps after the recorded version and record each.
pub async fn postgres(tx: &tokio_postgres::Transaction<'_>) -> Result<(), String> {
    let fail = |e: tokio_postgres::Error| format!("cannot migrate the schema: {e}");
    tx.batch_execute(
        "SELECT pg_advisory_xact_lock(7215993401);
         CREATE TABLE IF NOT EXISTS opencode_share_schema (
             version INTEGER PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         );",
    )
    .await
    .map_err(fail)?;
    let at: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM opencode_share_schema",
            &[],
        )
        .await
        .map_err(fail)?
        .get(0);
    let known = POSTGRES.len() as i32;
    if at > known {
        return Err(newer(at as usize, POSTGRES.len()));
    }
    for (n, step) in POSTGRES.iter().enumerate().skip(at as usize) {
        let version = n as i32 + 1;
        tx.batch_execute(step).await.map_err(fail)?;
        tx.execute(
            "INSERT INTO opencode_share_schema (version) VALUES ($1)",
            &[&version],
        )
        .await
        .map_err(fail)?;
        tracing::info!(version, "schema migrated");
    }
    Ok(())
}

/// SQLite's migration, on the writer's connection before anything else uses the file.
pub fn sqlite(conn: &mut rusqlite::Connection) -> Result<(), String> {
    let at: usize = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| format!("cannot read the schema version: {e}"))?;
    if at > SQLITE.len() {
        return Err(newer(at, SQLITE.len()));
    }
    let steps: Vec<rusqlite_migration::M<'static>> = SQLITE
        .iter()
        .map(|sql| rusqlite_migration::M::up(sql))
        .collect();
    rusqlite_migration::Migrations::new(steps)
        .to_latest(conn)
        .map_err(|e| format!("cannot migrate the schema: {e}"))?;
    if at < SQLITE.len() {
        tracing::info!(from = at, to = SQLITE.len(), "schema migrated");
    }
    Ok(())
}

/// The refusal to open a database a newer release migrated (its schema may mean other things).
fn newer(at: usize, known: usize) -> String {
    format!(
        "the database's schema is version {at}, newer than this release's {known}: run the \
         release that upgraded it (or newer)"
    )
}

/// The version this release migrates to.
pub fn latest() -> usize {
    SQLITE.len()
}

#[cfg(test)]
mod tests {
    #[test]
    fn both_databases_have_the_same_versions() {
        assert_eq!(super::SQLITE.len(), super::POSTGRES.len());
    }
}
