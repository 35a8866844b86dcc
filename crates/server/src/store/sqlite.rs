//! The embedded store: one SQLite file in WAL mode. One writer thread owns the only writing
//! connection and commits whatever jobs are waiting in one transaction (group commit, each job
//! in its own savepoint, so one refused job leaves the others alone). A job's answer goes out only
//! once its transaction is durable: the writer commits without waiting for the disk and hands the
//! group to the syncer thread, which fdatasyncs the WAL (one sync covers every group committed
//! before it began) and then answers; the writer meanwhile commits the next group. That is
//! `synchronous=FULL`'s guarantee (the WAL is on disk before the answer) with the fsync off the
//! writer's path. Reads run on blocking threads over a pool of read-only connections and never
//! wait for the writer.
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

use futures_util::future::BoxFuture;
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use tokio::sync::oneshot;

use super::pending::{self, Bases, Pending};
use super::{Head, OnChange, ShareInfo, Snapshot, Store, StoreError, StoreResult};
use crate::append::Resolved;
use crate::item::{Item, StoredItem};
use crate::secret;

/// Most jobs one transaction commits (bounds the latency one commit adds to the first job).
const GROUP_MAX: usize = 256;

/// A job runs on the writer's connection inside a savepoint and returns what to do once the
/// enclosing transaction committed (or failed to).
type Job = Box<dyn FnOnce(&Connection) -> Completion + Send>;
type Completion = Box<dyn FnOnce(StoreResult<()>) + Send>;

pub struct SqliteStore {
    jobs: Mutex<mpsc::Sender<Job>>,
    path: String,
    readers: Arc<Mutex<Vec<Connection>>>,
    /// The checkpoint thread runs while this lives.
    _alive: Arc<()>,
    /// Set when a write found the disk full: the next checkpoint truncates the WAL.
    full: Arc<AtomicBool>,
}

/// A full disk is `Full` (answered 507, retried by the client); anything else is `Backend`.
fn backend(e: rusqlite::Error) -> StoreError {
    if e.sqlite_error_code() == Some(ErrorCode::DiskFull) {
        StoreError::Full
    } else {
        StoreError::Backend(e.to_string())
    }
}

/// A WAL larger than this is checkpointed with truncation, which gives its space back.
const WAL_TRUNCATE_AT: u64 = 16 << 20;

impl SqliteStore {
    /// `target` is `PATH`, or `PATH?synchronous=normal` to skip the fsync at each commit (a
    /// commit then survives the server's crash or kill, not the machine's power loss).
    pub fn open(target: &str) -> Result<Self, String> {
        // SQLite itself never syncs at a commit (NORMAL): with `full` (the default) the syncer
        // thread fdatasyncs the WAL before any answer; with `normal` nothing does
        let (path, durable) = match target.split_once('?') {
            None => (target, true),
            Some((path, "synchronous=full")) => (path, true),
            Some((path, "synchronous=normal")) => (path, false),
            Some(_) => {
                return Err(
                    "sqlite://PATH takes only ?synchronous=full or ?synchronous=normal".into(),
                );
            }
        };
        let mut conn = Connection::open(path).map_err(|e| format!("cannot open {path}: {e}"))?;
        // the writer never checkpoints inside a commit (a latency spike for every job of that
        // group); a thread of its own copies the WAL back into the database every second
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000; PRAGMA wal_autocheckpoint=0;",
        )
            .map_err(|e| format!("cannot prepare {path}: {e}"))?;
        super::migrations::sqlite(&mut conn).map_err(|e| format!("{path}: {e}"))?;
        let (tx, rx) = mpsc::channel::<Job>();
        let syncs = if durable {
            let (sync_tx, sync_rx) = mpsc::channel::<Vec<Completion>>();
            let wal = format!("{path}-wal");
            thread::Builder::new()
                .name("sqlite-syncer".into())
                .spawn(move || syncer(&wal, sync_rx))
                .map_err(|e| e.to_string())?;
            Some(sync_tx)
        } else {
            None
        };
        thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer(conn, rx, syncs))
            .map_err(|e| e.to_string())?;
        let wal_path = format!("{path}-wal");
        let full = Arc::new(AtomicBool::new(false));
        let full_seen = full.clone();
        let checkpointer =
            Connection::open(path).map_err(|e| format!("cannot open {path}: {e}"))?;
        let alive = Arc::new(());
        let weak = Arc::downgrade(&alive);
        thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoints(checkpointer, wal_path, weak, full_seen))
            .map_err(|e| e.to_string())?;
        Ok(SqliteStore {
            jobs: Mutex::new(tx),
            path: path.to_owned(),
            readers: Arc::default(),
            _alive: alive,
            full,
        })
    }

    /// Runs `f` on the writer; resolves once its transaction committed.
    fn exec<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> BoxFuture<'static, StoreResult<T>> {
        let (tx, rx) = oneshot::channel();
        let full = self.full.clone();
        let job: Job = Box::new(move |conn| {
            let run = |sql: &str| {
                conn.prepare_cached(sql)
                    .and_then(|mut s| s.execute([]))
                    .map_err(backend)
            };
            let result = match run("SAVEPOINT job") {
                Err(e) => Err(e),
                Ok(_) => {
                    let r = f(conn);
                    let ended = if r.is_ok() {
                        run("RELEASE job")
                    } else {
                        run("ROLLBACK TO job").and_then(|_| run("RELEASE job"))
                    };
                    ended.and(r)
                }
            };
            Box::new(move |commit: StoreResult<()>| {
                let outcome = commit.and(result);
                if let Err(StoreError::Full) = outcome {
                    full.store(true, Ordering::Relaxed);
                }
                let _ = tx.send(outcome);
            })
        });
        let sent = self
            .jobs
            .lock()
            .map(|jobs| jobs.send(job).is_ok())
            .unwrap_or(false);
        Box::pin(async move {
            if !sent {
                return Err(StoreError::Backend("the SQLite writer has stopped".into()));
            }
            rx.await.unwrap_or_else(|_| {
                Err(StoreError::Backend("the SQLite writer has stopped".into()))
            })
        })
    }

    /// Runs `f` on a pooled read-only connection on a blocking thread.
    fn query<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> BoxFuture<'static, StoreResult<T>> {
        let (readers, path) = (self.readers.clone(), self.path.clone());
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let pooled = readers.lock().ok().and_then(|mut r| r.pop());
                let conn = match pooled {
                    Some(c) => c,
                    None => {
                        let c = Connection::open(&path).map_err(backend)?;
                        c.execute_batch("PRAGMA query_only=1; PRAGMA busy_timeout=10000; PRAGMA cache_size=-65536; PRAGMA mmap_size=1073741824;").map_err(backend)?;
                        c
                    }
                };
                let result = f(&conn);
                if let Ok(mut r) = readers.lock() {
                    r.push(conn);
                }
                result
            })
            .await
            .unwrap_or_else(|e| Err(StoreError::Backend(format!("read task failed: {e}"))))
        })
    }
}

/// Every second, a passive checkpoint (never waits for, or blocks, the writer or readers).
/// A WAL past `WAL_TRUNCATE_AT` (a burst, or a disk that filled up) is checkpointed with
/// truncation instead, so the WAL stays bounded and a full disk's writes resume as soon as
/// the WAL can be copied back and its space freed.
fn checkpoints(conn: Connection, wal: String, store: std::sync::Weak<()>, full: Arc<AtomicBool>) {
    let _ = conn.execute_batch("PRAGMA busy_timeout=1000;");
    loop {
        thread::sleep(std::time::Duration::from_secs(1));
        if store.strong_count() == 0 {
            return; // the store was dropped
        }
        let big = full.swap(false, Ordering::Relaxed)
            || std::fs::metadata(&wal).is_ok_and(|m| m.len() > WAL_TRUNCATE_AT);
        let sql = if big {
            "PRAGMA wal_checkpoint(TRUNCATE)"
        } else {
            "PRAGMA wal_checkpoint(PASSIVE)"
        };
        if let Err(e) = conn.query_row(sql, [], |_| Ok(())) {
            tracing::warn!(error = %e, "checkpoint failed");
        }
    }
}

/// The writer thread: take every waiting job, run them in one transaction, commit, and hand the
/// answers to the syncer (or, without one, answer at once).
fn writer(
    conn: Connection,
    jobs: mpsc::Receiver<Job>,
    syncs: Option<mpsc::Sender<Vec<Completion>>>,
) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < GROUP_MAX {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            // the jobs' answer channels drop with them: their callers get "the writer has stopped"
            tracing::error!(error = %e, "cannot begin a transaction");
            drop(group);
            continue;
        }
        let completions: Vec<Completion> = group.into_iter().map(|job| job(&conn)).collect();
        match conn.execute_batch("COMMIT") {
            Ok(()) => match &syncs {
                // a syncer that stopped drops the answers: their callers get "the writer has stopped"
                Some(syncer) => drop(syncer.send(completions)),
                None => answer(completions, &Ok(())),
            },
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                answer(completions, &Err(backend(e)));
            }
        }
    }
}

/// The syncer thread: fdatasync the WAL once for every group committed so far, then answer them.
/// The commits wrote their frames before they were sent here, so the sync covers them all.
/// A failed fdatasync is final: the kernel may have dropped the dirty pages and cleared the
/// error, so a later sync that succeeds proves nothing about the earlier frames. Every write
/// from then on is answered with the error (never a 200 that might not be on disk), until the
/// server is restarted and SQLite recovers from what the disk holds.
fn syncer(wal: &str, groups: mpsc::Receiver<Vec<Completion>>) {
    let mut file: Option<std::fs::File> = None;
    let mut broken: Option<String> = None;
    while let Ok(mut waiting) = groups.recv() {
        while let Ok(more) = groups.try_recv() {
            waiting.extend(more);
        }
        if let Some(why) = &broken {
            answer(waiting, &Err(StoreError::Backend(why.clone())));
            continue;
        }
        let opened = match &file {
            Some(f) => Ok(f),
            None => std::fs::File::open(wal).map(|f| &*file.insert(f)),
        };
        let synced = match opened {
            // not opened: nothing was lost, the next group tries again
            Err(e) => Err(format!("cannot open {wal} to sync it: {e}")),
            Ok(f) => f.sync_data().map_err(|e| {
                let why = format!("cannot sync {wal}: {e}; writes are refused until a restart");
                broken = Some(why.clone());
                why
            }),
        };
        if let Err(e) = &synced {
            tracing::error!(error = %e, "sync of the write-ahead log failed");
        }
        answer(waiting, &synced.map_err(StoreError::Backend));
    }
}

fn answer(completions: Vec<Completion>, outcome: &StoreResult<()>) {
    for done in completions {
        done(outcome.clone());
    }
}

/// The share's stored secret hash, byte total and sequence; `NotFound` or `Forbidden` otherwise.
fn authorize(conn: &Connection, id: &str, secret_text: &str) -> StoreResult<(i64, i64)> {
    let row: Option<(Vec<u8>, i64, i64)> = conn
        .prepare_cached("SELECT secret_hash, bytes, seq FROM shares WHERE id = ?1")
        .and_then(|mut s| {
            s.query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
        })
        .map_err(backend)?;
    let (hash, bytes, seq) = row.ok_or(StoreError::NotFound)?;
    if !secret::matches(secret_text, &hash) {
        return Err(StoreError::Forbidden);
    }
    Ok((bytes, seq))
}

fn rows(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> StoreResult<Vec<StoredItem>> {
    let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
    let items = stmt
        .query_map(args, |r| {
            Ok(StoredItem {
                key: r.get(0)?,
                kind: r.get(1)?,
                seq: r.get(2)?,
                data: r.get(3)?,
            })
        })
        .map_err(backend)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(backend)?;
    Ok(items)
}

/// Runs `read` in one read transaction if share `id` exists (`NotFound` otherwise).
fn in_share<T>(
    conn: &Connection,
    id: &str,
    read: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    conn.execute_batch("BEGIN").map_err(backend)?;
    let result = exists(conn, id)
        .and_then(|found| found.ok_or(StoreError::NotFound))
        .and_then(|_| read(conn));
    let _ = conn.execute_batch("COMMIT");
    result
}

/// One column of share `id`'s row, or `NotFound`.
fn share_field<T: rusqlite::types::FromSql>(
    conn: &Connection,
    sql: &str,
    id: &str,
) -> StoreResult<T> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
        .map_err(backend)?
        .ok_or(StoreError::NotFound)
}

/// The write's append items made whole against the texts they extend (read in the write's
/// transaction: base and pending appends), and the pending appends of each key read.
fn resolve_appends(
    conn: &Connection,
    id: &str,
    items: Vec<Item>,
) -> StoreResult<(Vec<Resolved>, HashMap<String, Pending>)> {
    let needed = crate::append::bases_needed(&items);
    let mut read = conn
        .prepare_cached("SELECT data FROM items WHERE share_id = ?1 AND key = ?2")
        .map_err(backend)?;
    let mut bases = Bases::default();
    for key in needed {
        let data: Option<String> = read
            .query_row(params![id, key], |r| r.get(0))
            .optional()
            .map_err(backend)?;
        if let Some(base) = data {
            let rows = pending_rows(conn, id, Some(&key))?.remove(&key);
            bases.add(key, base, &rows.unwrap_or_default())?;
        }
    }
    bases.resolve(items)
}

/// The stored grows of share `id`'s pending appends (of `key` only, if given), by key, each
/// key's in sequence order.
fn pending_rows(
    conn: &Connection,
    id: &str,
    key: Option<&str>,
) -> StoreResult<HashMap<String, Vec<String>>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT key, grows FROM item_appends WHERE share_id = ?1 AND (?2 IS NULL OR key = ?2) ORDER BY key, seq",
        )
        .map_err(backend)?;
    let mut rows: HashMap<String, Vec<String>> = HashMap::new();
    let found = stmt
        .query_map(params![id, key], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(backend)?;
    for row in found {
        let (key, grows) = row.map_err(backend)?;
        rows.entry(key).or_default().push(grows);
    }
    Ok(rows)
}

/// Items of share `id` read by `sql` with their pending appends folded in (in the caller's read
/// transaction).
fn folded_rows(
    conn: &Connection,
    id: &str,
    sql: &str,
    args: impl rusqlite::Params,
) -> StoreResult<Vec<StoredItem>> {
    let mut items = rows(conn, sql, args)?;
    pending::fold_into(&mut items, &pending_rows(conn, id, None)?)?;
    Ok(items)
}

/// The columns of a `ShareInfo`, in `info_row`'s order.
const INFO: &str = "SELECT id, session_id, seq, bytes, (SELECT COUNT(*) FROM items WHERE share_id = shares.id), created_at, updated_at FROM shares";

fn info_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ShareInfo> {
    Ok(ShareInfo {
        id: r.get(0)?,
        session_id: r.get(1)?,
        seq: r.get(2)?,
        bytes: r.get(3)?,
        items: r.get(4)?,
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
    })
}

/// Deletes share `id` and its items; whether there was one.
fn remove_share(conn: &Connection, id: &str) -> StoreResult<bool> {
    conn.prepare_cached("DELETE FROM item_appends WHERE share_id = ?1")
        .and_then(|mut s| s.execute([id]))
        .map_err(backend)?;
    conn.prepare_cached("DELETE FROM items WHERE share_id = ?1")
        .and_then(|mut s| s.execute([id]))
        .map_err(backend)?;
    let gone = conn
        .prepare_cached("DELETE FROM shares WHERE id = ?1")
        .and_then(|mut s| s.execute([id]))
        .map_err(backend)?;
    Ok(gone > 0)
}

fn exists(conn: &Connection, id: &str) -> StoreResult<Option<String>> {
    conn.prepare_cached("SELECT session_id FROM shares WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
        .map_err(backend)
}

impl Store for SqliteStore {
    fn create(
        &self,
        id: String,
        session_id: String,
        secret_hash: Vec<u8>,
    ) -> BoxFuture<'_, StoreResult<()>> {
        self.exec(move |conn| {
            match conn.execute(
                "INSERT INTO shares (id, session_id, secret_hash, created_at, updated_at) VALUES (?1, ?2, ?3, CAST(strftime('%s', 'now') AS INTEGER), CAST(strftime('%s', 'now') AS INTEGER))",
                params![id, session_id, secret_hash],
            ) {
                Ok(_) => Ok(()),
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == ErrorCode::ConstraintViolation =>
                {
                    Err(StoreError::Exists)
                }
                Err(e) => Err(backend(e)),
            }
        })
    }

    fn write(
        &self,
        id: String,
        secret_text: String,
        items: Vec<Item>,
        max_share_bytes: u64,
    ) -> BoxFuture<'_, StoreResult<Vec<StoredItem>>> {
        self.exec(move |conn| {
            let (mut bytes, mut seq) = authorize(conn, &id, &secret_text)?;
            let (items, mut pending) = resolve_appends(conn, &id, items)?;
            let mut size_of = conn
                .prepare_cached("SELECT size FROM items WHERE share_id = ?1 AND key = ?2")
                .map_err(backend)?;
            let mut upsert = conn
                .prepare_cached(
                    "INSERT INTO items (share_id, key, kind, seq, size, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (share_id, key) DO UPDATE SET
                       kind = excluded.kind, seq = excluded.seq, size = excluded.size, data = excluded.data",
                )
                .map_err(backend)?;
            let mut unpend = conn
                .prepare_cached("DELETE FROM item_appends WHERE share_id = ?1 AND key = ?2")
                .map_err(backend)?;
            let mut pend = conn
                .prepare_cached("INSERT INTO item_appends (share_id, key, seq, grows) VALUES (?1, ?2, ?3, ?4)")
                .map_err(backend)?;
            // the row's other columns only: SQLite overwrites a same-sized record in place and
            // leaves the unchanged text's overflow pages alone
            let mut touch = conn
                .prepare_cached("UPDATE items SET seq = ?3, size = ?4 WHERE share_id = ?1 AND key = ?2")
                .map_err(backend)?;
            let mut stored = Vec::with_capacity(items.len());
            for Resolved { item, grows } in items {
                let old: i64 = size_of.query_row(params![id, item.key], |r| r.get(0)).optional().map_err(backend)?.unwrap_or(0);
                let size = item.data.len() as i64;
                bytes += size - old;
                if bytes as u64 > max_share_bytes {
                    return Err(StoreError::ShareTooLarge { limit: max_share_bytes });
                }
                seq += 1;
                let kept = grows.map(|g| pending::encode(&g)).filter(|g| {
                    pending.get(&item.key).is_some_and(|p| p.keeps(g.len()))
                });
                match kept {
                    Some(grows) => {
                        pend.execute(params![id, item.key, seq, grows]).map_err(backend)?;
                        touch.execute(params![id, item.key, seq, size]).map_err(backend)?;
                        if let Some(p) = pending.get_mut(&item.key) {
                            p.count += 1;
                            p.bytes += grows.len() as i64;
                        }
                    }
                    None => {
                        upsert.execute(params![id, item.key, item.kind, seq, size, item.data]).map_err(backend)?;
                        unpend.execute(params![id, item.key]).map_err(backend)?;
                        pending.remove(&item.key);
                    }
                }
                stored.push(StoredItem { key: item.key, kind: item.kind.to_owned(), seq, data: item.data });
            }
            conn.prepare_cached("UPDATE shares SET bytes = ?2, seq = ?3, updated_at = CAST(strftime('%s', 'now') AS INTEGER) WHERE id = ?1")
                .and_then(|mut s| s.execute(params![id, bytes, seq]))
                .map_err(backend)?;
            Ok(stored)
        })
    }

    fn delete(&self, id: String, secret_text: String) -> BoxFuture<'_, StoreResult<()>> {
        self.exec(move |conn| {
            authorize(conn, &id, &secret_text)?;
            remove_share(conn, &id).map(|_| ())
        })
    }

    fn read(&self, id: String) -> BoxFuture<'_, StoreResult<Snapshot>> {
        self.query(move |conn| {
            // one read transaction, so the items belong to the share row that was read
            conn.execute_batch("BEGIN").map_err(backend)?;
            let result = (|| {
                let session_id = exists(conn, &id)?.ok_or(StoreError::NotFound)?;
                let items = folded_rows(
                    conn,
                    &id,
                    "SELECT key, kind, seq, data FROM items WHERE share_id = ?1 ORDER BY key",
                    [&id],
                )?;
                Ok(Snapshot { session_id, items })
            })();
            let _ = conn.execute_batch("COMMIT");
            result
        })
    }

    fn changes(
        &self,
        id: String,
        after: i64,
        limit: usize,
    ) -> BoxFuture<'_, StoreResult<Vec<StoredItem>>> {
        self.query(move |conn| {
            in_share(conn, &id, |conn| {
                folded_rows(
                    conn,
                    &id,
                    "SELECT key, kind, seq, data FROM items WHERE share_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                    params![id, after, limit as i64],
                )
            })
        })
    }

    fn page(
        &self,
        id: String,
        after_key: String,
        limit: usize,
    ) -> BoxFuture<'_, StoreResult<Vec<StoredItem>>> {
        self.query(move |conn| {
            in_share(conn, &id, |conn| {
                folded_rows(
                    conn,
                    &id,
                    "SELECT key, kind, seq, data FROM items WHERE share_id = ?1 AND key > ?2 ORDER BY key LIMIT ?3",
                    params![id, after_key, limit as i64],
                )
            })
        })
    }

    fn head(&self, id: String) -> BoxFuture<'_, StoreResult<Head>> {
        self.query(move |conn| {
            conn.prepare_cached("SELECT session_id, seq FROM shares WHERE id = ?1")
                .and_then(|mut s| {
                    s.query_row([&id], |r| {
                        Ok(Head {
                            session_id: r.get(0)?,
                            seq: r.get(1)?,
                        })
                    })
                    .optional()
                })
                .map_err(backend)?
                .ok_or(StoreError::NotFound)
        })
    }

    fn secret_hash(&self, id: String) -> BoxFuture<'_, StoreResult<Vec<u8>>> {
        self.query(move |conn| {
            share_field(conn, "SELECT secret_hash FROM shares WHERE id = ?1", &id)
        })
    }

    fn list(&self, after_id: String, limit: usize) -> BoxFuture<'_, StoreResult<Vec<ShareInfo>>> {
        self.query(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!("{INFO} WHERE id > ?1 ORDER BY id LIMIT ?2"))
                .map_err(backend)?;
            let limit = limit.min(super::ADMIN_PAGE_MAX) as i64;
            stmt.query_map(params![after_id, limit], info_row)
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(backend)
        })
    }

    fn info(&self, id: String) -> BoxFuture<'_, StoreResult<ShareInfo>> {
        self.query(move |conn| {
            conn.prepare_cached(&format!("{INFO} WHERE id = ?1"))
                .and_then(|mut s| s.query_row([&id], info_row).optional())
                .map_err(backend)?
                .ok_or(StoreError::NotFound)
        })
    }

    fn remove(&self, id: String) -> BoxFuture<'_, StoreResult<()>> {
        self.exec(move |conn| match remove_share(conn, &id)? {
            true => Ok(()),
            false => Err(StoreError::NotFound),
        })
    }

    fn expire(&self, idle_secs: i64, limit: usize) -> BoxFuture<'_, StoreResult<Vec<String>>> {
        self.exec(move |conn| {
            let limit = limit.min(super::ADMIN_PAGE_MAX) as i64;
            let ids: Vec<String> = conn
                .prepare_cached(
                    "SELECT id FROM shares WHERE updated_at < CAST(strftime('%s', 'now') AS INTEGER) - ?1 ORDER BY updated_at LIMIT ?2",
                )
                .and_then(|mut s| {
                    s.query_map(params![idle_secs, limit], |r| r.get(0))?
                        .collect::<Result<Vec<_>, _>>()
                })
                .map_err(backend)?;
            for id in &ids {
                remove_share(conn, id)?;
            }
            Ok(ids)
        })
    }

    fn backup(&self, to: String) -> BoxFuture<'_, StoreResult<()>> {
        // a connection of its own (the pooled readers are query_only, which VACUUM INTO
        // refuses); it reads one snapshot, so writes go on while the copy is made
        let path = self.path.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                Connection::open(&path)
                    .and_then(|conn| conn.execute("VACUUM INTO ?1", [&to]))
                    .map(|_| ())
                    .map_err(|e| StoreError::Backend(format!("cannot back up to {to}: {e}")))
            })
            .await
            .unwrap_or_else(|e| Err(StoreError::Backend(format!("backup task failed: {e}"))))
        })
    }

    fn relay(self: Arc<Self>, _on_change: OnChange) {}
}

#[cfg(test)]
mod tests {
    use super::SqliteStore;

    #[test]
    fn the_path_may_choose_the_commit_sync_and_nothing_else() {
        let dir = std::env::temp_dir().join(format!("share-sqlite-open-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("a.db").display().to_string();
        assert!(SqliteStore::open(&db).is_ok());
        assert!(SqliteStore::open(&format!("{db}?synchronous=normal")).is_ok());
        assert!(
            SqliteStore::open(&format!("{db}?synchronous=off"))
                .err()
                .unwrap()
                .contains("synchronous=full")
        );
        assert!(
            SqliteStore::open(&dir.join("missing/x.db").display().to_string())
                .err()
                .unwrap()
                .contains("cannot open")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
