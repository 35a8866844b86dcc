//! The PostgreSQL store, for several server processes on one database. Each write is one
//! transaction that locks the share's row (`FOR UPDATE`), so writes of one share are serial and
//! their sequence numbers follow commit order; it ends with `pg_notify`, delivered at commit, which
//! every process LISTENs to and hands to its hub (`w:<id>` written, `d:<id>` deleted).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use tokio_postgres::error::SqlState;
use tokio_postgres::{AsyncMessage, IsolationLevel};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::pending::{self, Bases, Pending};
use super::{Change, Head, OnChange, ShareInfo, Snapshot, Store, StoreError, StoreResult};
use crate::append::Resolved;
use crate::item::{Item, StoredItem};
use crate::secret;

const CHANNEL: &str = "opencode_share";

pub struct PgStore {
    pool: Pool,
    config: tokio_postgres::Config,
    /// The URL's sslmode, for the pool's and the LISTEN connection's handshakes.
    tls: MakeRustlsConnect,
}

fn backend(e: impl std::fmt::Display + AsDbError) -> StoreError {
    if e.sql_state() == Some(&SqlState::DISK_FULL) {
        StoreError::Full
    } else {
        StoreError::Backend(e.to_string())
    }
}

/// The SQLSTATE of an error, where it has one (a full disk is `Full`, answered 507).
trait AsDbError {
    fn sql_state(&self) -> Option<&SqlState> {
        None
    }
}

impl AsDbError for tokio_postgres::Error {
    fn sql_state(&self) -> Option<&SqlState> {
        self.code()
    }
}

impl AsDbError for deadpool_postgres::PoolError {}

impl PgStore {
    pub async fn open(url: &str) -> Result<Self, String> {
        let (config, tls) = super::tls::config(url)?;
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(16)
            .build()
            .map_err(|e| e.to_string())?;
        let mut client = pool
            .get()
            .await
            .map_err(|e| format!("cannot connect to PostgreSQL: {}", with_causes(&e)))?;
        let tx = client.transaction().await.map_err(|e| e.to_string())?;
        super::migrations::postgres(&tx).await?;
        tx.commit().await.map_err(|e| e.to_string())?;
        Ok(PgStore { pool, config, tls })
    }

    async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        self.pool.get().await.map_err(backend)
    }

    /// The rows `sql` selects in one snapshot, if share `id` exists (`NotFound` otherwise).
    async fn items_of(
        &self,
        id: &str,
        sql: &str,
        args: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> StoreResult<Vec<StoredItem>> {
        let mut client = self.client().await?;
        let tx = snapshot_transaction(&mut client).await?;
        tx.query_opt("SELECT 1 FROM shares WHERE id = $1", &[&id])
            .await
            .map_err(backend)?
            .ok_or(StoreError::NotFound)?;
        let rows = tx.query(sql, args).await.map_err(backend)?;
        let items = folded(&tx, id, rows).await?;
        tx.commit().await.map_err(backend)?;
        Ok(items)
    }

    /// One column of share `id`'s row, or `NotFound`.
    async fn share_field<T>(&self, sql: &str, id: &str) -> StoreResult<T>
    where
        T: for<'a> tokio_postgres::types::FromSql<'a>,
    {
        let client = self.client().await?;
        let row = client.query_opt(sql, &[&id]).await.map_err(backend)?;
        Ok(row.ok_or(StoreError::NotFound)?.get(0))
    }
}

/// `e` and the errors under it (a TLS failure's reason is a few levels down).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The columns of a `ShareInfo`, in `info_row`'s order.
const INFO: &str = "SELECT id, session_id, seq, bytes, (SELECT COUNT(*) FROM items WHERE share_id = shares.id), created_at, updated_at FROM shares";

fn info_row(r: &tokio_postgres::Row) -> ShareInfo {
    ShareInfo {
        id: r.get(0),
        session_id: r.get(1),
        seq: r.get(2),
        bytes: r.get(3),
        items: r.get(4),
        created_at: r.get(5),
        updated_at: r.get(6),
    }
}

/// Deletes share `id` and its items in `tx` and tells every process at commit; whether there was one.
async fn remove_share(tx: &deadpool_postgres::Transaction<'_>, id: &str) -> StoreResult<bool> {
    tx.execute("DELETE FROM items WHERE share_id = $1", &[&id])
        .await
        .map_err(backend)?;
    let gone = tx
        .execute("DELETE FROM shares WHERE id = $1", &[&id])
        .await
        .map_err(backend)?;
    if gone > 0 {
        tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &format!("d:{id}")])
            .await
            .map_err(backend)?;
    }
    Ok(gone > 0)
}

/// Locks the share's row and checks the secret; returns its byte total and sequence.
async fn authorize(
    tx: &deadpool_postgres::Transaction<'_>,
    id: &str,
    secret_text: &str,
) -> StoreResult<(i64, i64)> {
    let row = tx
        .query_opt(
            "SELECT secret_hash, bytes, seq FROM shares WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await
        .map_err(backend)?
        .ok_or(StoreError::NotFound)?;
    let hash: Vec<u8> = row.get(0);
    if !secret::matches(secret_text, &hash) {
        return Err(StoreError::Forbidden);
    }
    Ok((row.get(1), row.get(2)))
}

/// The write's append items made whole against the texts they extend (base and pending
/// appends, read under the share's row lock that `authorize` took, so no other write of the
/// share comes between), and the pending appends of each key read.
async fn resolve_appends(
    tx: &deadpool_postgres::Transaction<'_>,
    id: &str,
    items: Vec<Item>,
) -> StoreResult<(Vec<Resolved>, HashMap<String, Pending>)> {
    let needed = crate::append::bases_needed(&items);
    let mut bases = Bases::default();
    if !needed.is_empty() {
        // each base with its pending appends' grows, in one round trip
        let rows = tx
            .query(
                "SELECT key, data, ARRAY(SELECT grows FROM item_appends a
                   WHERE a.share_id = items.share_id AND a.key = items.key ORDER BY seq)
                 FROM items WHERE share_id = $1 AND key = ANY($2)",
                &[&id, &needed],
            )
            .await
            .map_err(backend)?;
        for row in rows {
            let rows: Vec<String> = row.get(2);
            bases.add(row.get(0), row.get(1), &rows)?;
        }
    }
    bases.resolve(items)
}

/// The stored grows of share `id`'s pending appends, by key, each key's in sequence order.
async fn pending_rows(
    tx: &deadpool_postgres::Transaction<'_>,
    id: &str,
) -> StoreResult<HashMap<String, Vec<String>>> {
    let rows = tx
        .query(
            "SELECT key, grows FROM item_appends WHERE share_id = $1 ORDER BY key, seq",
            &[&id],
        )
        .await
        .map_err(backend)?;
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for row in rows {
        out.entry(row.get(0)).or_default().push(row.get(1));
    }
    Ok(out)
}

/// `items` of share `id` with their pending appends folded in (read in the same transaction).
async fn folded(
    tx: &deadpool_postgres::Transaction<'_>,
    id: &str,
    items: Vec<tokio_postgres::Row>,
) -> StoreResult<Vec<StoredItem>> {
    let mut items = stored(items);
    pending::fold_into(&mut items, &pending_rows(tx, id).await?)?;
    Ok(items)
}

/// A read-only transaction that sees one committed state throughout.
async fn snapshot_transaction(
    client: &mut deadpool_postgres::Object,
) -> StoreResult<deadpool_postgres::Transaction<'_>> {
    client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(backend)
}

/// A write's rows of one kind (whole, or appended) as the columns `unnest` takes.
#[derive(Default)]
struct Rows {
    items: Vec<StoredItem>,
    /// The stored grows of each appended row.
    grows: Vec<String>,
}

impl Rows {
    fn push(&mut self, item: StoredItem, grows: String) {
        self.items.push(item);
        self.grows.push(grows);
    }

    fn keys(&self) -> Vec<&str> {
        self.items.iter().map(|i| i.key.as_str()).collect()
    }

    fn seqs(&self) -> Vec<i64> {
        self.items.iter().map(|i| i.seq).collect()
    }

    fn sizes(&self) -> Vec<i64> {
        self.items.iter().map(|i| i.data.len() as i64).collect()
    }
}

fn stored(rows: Vec<tokio_postgres::Row>) -> Vec<StoredItem> {
    rows.into_iter()
        .map(|r| StoredItem {
            key: r.get(0),
            kind: r.get(1),
            seq: r.get(2),
            data: r.get(3),
        })
        .collect()
}

impl Store for PgStore {
    fn create(
        &self,
        id: String,
        session_id: String,
        secret_hash: Vec<u8>,
    ) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(async move {
            let client = self.client().await?;
            match client
                .execute(
                    "INSERT INTO shares (id, session_id, secret_hash, created_at, updated_at) VALUES ($1, $2, $3, EXTRACT(EPOCH FROM now())::BIGINT, EXTRACT(EPOCH FROM now())::BIGINT)",
                    &[&id, &session_id, &secret_hash],
                )
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Err(StoreError::Exists),
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
        Box::pin(async move {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(backend)?;
            let (bytes, seq) = authorize(&tx, &id, &secret_text).await?;
            let (resolved, pending) = resolve_appends(&tx, &id, items).await?;
            // one row per key (the newest of the batch wins), in the batch's order
            let mut last_of: HashMap<&str, usize> = HashMap::new();
            for (n, r) in resolved.iter().enumerate() {
                last_of.insert(&r.item.key, n);
            }
            let kept: Vec<&Resolved> = resolved
                .iter()
                .enumerate()
                .filter(|(n, r)| last_of[r.item.key.as_str()] == *n)
                .map(|(_, r)| r)
                .collect();
            let keys: Vec<&str> = kept.iter().map(|r| r.item.key.as_str()).collect();
            let old: i64 = tx
                .query_one("SELECT COALESCE(SUM(size), 0)::BIGINT FROM items WHERE share_id = $1 AND key = ANY($2)", &[&id, &keys])
                .await
                .map_err(backend)?
                .get(0);
            let new: i64 = kept.iter().map(|r| r.item.data.len() as i64).sum();
            let total = bytes - old + new;
            if total as u64 > max_share_bytes {
                return Err(StoreError::ShareTooLarge {
                    limit: max_share_bytes,
                });
            }
            // an append that extends the stored text is kept beside it (its grows, the row's
            // sequence number and size); anything else is written whole
            let mut whole = Rows::default();
            let mut appended = Rows::default();
            for (n, r) in kept.iter().enumerate() {
                let item = StoredItem {
                    key: r.item.key.clone(),
                    kind: r.item.kind.to_owned(),
                    seq: seq + 1 + n as i64,
                    data: r.item.data.clone(),
                };
                let grows = r
                    .grows
                    .as_deref()
                    .map(pending::encode)
                    .filter(|g| pending.get(&item.key).is_some_and(|p| p.keeps(g.len())));
                match grows {
                    Some(g) => appended.push(item, g),
                    None => whole.push(item, String::new()),
                }
            }
            if !whole.items.is_empty() {
                let kinds: Vec<&str> = whole.items.iter().map(|i| i.kind.as_str()).collect();
                let datas: Vec<&str> = whole.items.iter().map(|i| i.data.as_str()).collect();
                // a whole write replaces the key's pending appends
                tx.execute(
                    "WITH replaced AS (DELETE FROM item_appends WHERE share_id = $1 AND key = ANY($2))
                     INSERT INTO items (share_id, key, kind, seq, size, data)
                     SELECT $1, * FROM unnest($2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::BIGINT[], $6::TEXT[])
                     ON CONFLICT (share_id, key) DO UPDATE SET
                       kind = excluded.kind, seq = excluded.seq, size = excluded.size, data = excluded.data",
                    &[&id, &whole.keys(), &kinds, &whole.seqs(), &whole.sizes(), &datas],
                )
                .await
                .map_err(backend)?;
            }
            if !appended.items.is_empty() {
                // the grows beside the row, and the row's other columns only: its text,
                // TOASTed past 2 KB, is not rewritten
                tx.execute(
                    "WITH kept AS (INSERT INTO item_appends (share_id, key, seq, grows)
                       SELECT $1, * FROM unnest($2::TEXT[], $3::BIGINT[], $4::TEXT[]))
                     UPDATE items SET seq = u.seq, size = u.size
                     FROM unnest($2::TEXT[], $3::BIGINT[], $5::BIGINT[]) AS u (key, seq, size)
                     WHERE items.share_id = $1 AND items.key = u.key",
                    &[
                        &id,
                        &appended.keys(),
                        &appended.seqs(),
                        &appended.grows,
                        &appended.sizes(),
                    ],
                )
                .await
                .map_err(backend)?;
            }
            let mut out: Vec<StoredItem> = whole.items.into_iter().chain(appended.items).collect();
            out.sort_by_key(|i| i.seq);
            let head = seq + out.len() as i64;
            tx.execute(
                "UPDATE shares SET bytes = $2, seq = $3, updated_at = EXTRACT(EPOCH FROM now())::BIGINT WHERE id = $1",
                &[&id, &total, &head],
            )
            .await
            .map_err(backend)?;
            tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &format!("w:{id}")])
                .await
                .map_err(backend)?;
            tx.commit().await.map_err(backend)?;
            Ok(out)
        })
    }

    fn delete(&self, id: String, secret_text: String) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(async move {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(backend)?;
            authorize(&tx, &id, &secret_text).await?;
            remove_share(&tx, &id).await?;
            tx.commit().await.map_err(backend)
        })
    }

    fn read(&self, id: String) -> BoxFuture<'_, StoreResult<Snapshot>> {
        Box::pin(async move {
            let mut client = self.client().await?;
            let tx = snapshot_transaction(&mut client).await?;
            let session_id: String = tx
                .query_opt("SELECT session_id FROM shares WHERE id = $1", &[&id])
                .await
                .map_err(backend)?
                .ok_or(StoreError::NotFound)?
                .get(0);
            let rows = tx
                .query("SELECT key, kind, seq, data FROM items WHERE share_id = $1 ORDER BY key COLLATE \"C\"", &[&id])
                .await
                .map_err(backend)?;
            let items = folded(&tx, &id, rows).await?;
            tx.commit().await.map_err(backend)?;
            Ok(Snapshot { session_id, items })
        })
    }

    fn changes(
        &self,
        id: String,
        after: i64,
        limit: usize,
    ) -> BoxFuture<'_, StoreResult<Vec<StoredItem>>> {
        Box::pin(async move {
            let sql = "SELECT key, kind, seq, data FROM items WHERE share_id = $1 AND seq > $2 ORDER BY seq LIMIT $3";
            self.items_of(&id, sql, &[&id, &after, &(limit as i64)])
                .await
        })
    }

    fn page(
        &self,
        id: String,
        after_key: String,
        limit: usize,
    ) -> BoxFuture<'_, StoreResult<Vec<StoredItem>>> {
        Box::pin(async move {
            let sql = "SELECT key, kind, seq, data FROM items WHERE share_id = $1 AND key COLLATE \"C\" > $2 ORDER BY key COLLATE \"C\" LIMIT $3";
            self.items_of(&id, sql, &[&id, &after_key, &(limit as i64)])
                .await
        })
    }

    fn head(&self, id: String) -> BoxFuture<'_, StoreResult<Head>> {
        Box::pin(async move {
            let client = self.client().await?;
            let row = client
                .query_opt("SELECT session_id, seq FROM shares WHERE id = $1", &[&id])
                .await
                .map_err(backend)?
                .ok_or(StoreError::NotFound)?;
            Ok(Head {
                session_id: row.get(0),
                seq: row.get(1),
            })
        })
    }

    fn secret_hash(&self, id: String) -> BoxFuture<'_, StoreResult<Vec<u8>>> {
        Box::pin(async move {
            self.share_field("SELECT secret_hash FROM shares WHERE id = $1", &id)
                .await
        })
    }

    fn list(&self, after_id: String, limit: usize) -> BoxFuture<'_, StoreResult<Vec<ShareInfo>>> {
        Box::pin(async move {
            let client = self.client().await?;
            let limit = limit.min(super::ADMIN_PAGE_MAX) as i64;
            let sql =
                format!("{INFO} WHERE id COLLATE \"C\" > $1 ORDER BY id COLLATE \"C\" LIMIT $2");
            let rows = client
                .query(&sql, &[&after_id, &limit])
                .await
                .map_err(backend)?;
            Ok(rows.iter().map(info_row).collect())
        })
    }

    fn info(&self, id: String) -> BoxFuture<'_, StoreResult<ShareInfo>> {
        Box::pin(async move {
            let client = self.client().await?;
            let row = client
                .query_opt(&format!("{INFO} WHERE id = $1"), &[&id])
                .await
                .map_err(backend)?
                .ok_or(StoreError::NotFound)?;
            Ok(info_row(&row))
        })
    }

    fn remove(&self, id: String) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(async move {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(backend)?;
            if !remove_share(&tx, &id).await? {
                return Err(StoreError::NotFound);
            }
            tx.commit().await.map_err(backend)
        })
    }

    fn expire(&self, idle_secs: i64, limit: usize) -> BoxFuture<'_, StoreResult<Vec<String>>> {
        Box::pin(async move {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(backend)?;
            let limit = limit.min(super::ADMIN_PAGE_MAX) as i64;
            // SKIP LOCKED: a share being written now is not idle, and another process's sweep
            // takes the rows this one skips
            let rows = tx
                .query(
                    "SELECT id FROM shares WHERE updated_at < EXTRACT(EPOCH FROM now())::BIGINT - $1
                     ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED",
                    &[&idle_secs, &limit],
                )
                .await
                .map_err(backend)?;
            let ids: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            for id in &ids {
                remove_share(&tx, id).await?;
            }
            tx.commit().await.map_err(backend)?;
            Ok(ids)
        })
    }

    fn backup(&self, _to: String) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(async {
            Err(StoreError::Backend(
                "a PostgreSQL database is backed up with pg_dump (docs/server.md)".into(),
            ))
        })
    }

    fn relay(self: Arc<Self>, on_change: OnChange) {
        tokio::spawn(async move {
            loop {
                listen(&self.config, &self.tls, &*on_change).await;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
}

/// One LISTEN connection's life: hand every notification on until the connection ends.
async fn listen(
    config: &tokio_postgres::Config,
    tls: &MakeRustlsConnect,
    on_change: &(dyn Fn(Change<'_>) + Send + Sync),
) {
    let (client, mut connection) = match config.connect(tls.clone()).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "LISTEN connection failed");
            return;
        }
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let AsyncMessage::Notification(n) = message {
                if tx.send(n.payload().to_owned()).is_err() {
                    return;
                }
            }
        }
    });
    if client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .is_ok()
    {
        // writes made while this process was not listening: let every open viewer catch up
        on_change(Change::Resumed);
        while let Some(payload) = rx.recv().await {
            match payload.split_once(':') {
                Some(("w", id)) => on_change(Change::Written(id)),
                Some(("d", id)) => on_change(Change::Deleted(id)),
                _ => {}
            }
        }
    }
    driver.abort();
}
