//! Storage behind one trait: SQLite (embedded, the default) and PostgreSQL (several server
//! processes on one database). Every write is one transaction that checks the secret, takes the
//! share's next sequence numbers and upserts each item, so the last committed write of an item
//! wins and its sequence number is the highest.

pub mod migrations;
pub mod pending;
pub mod postgres;
pub mod sqlite;
mod tls;

use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::item::{Item, StoredItem};

/// What a store tells the live side about writes it did not make itself (another process's, on
/// PostgreSQL): handed to `Store::relay` as a callback, so the store knows nothing of the hub.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change<'a> {
    /// Share `id` has new committed writes.
    Written(&'a str),
    /// Share `id` was deleted.
    Deleted(&'a str),
    /// The relay (re)connected: any share may have missed writes.
    Resumed,
}

/// The callback a store relays changes through.
pub type OnChange = Arc<dyn Fn(Change<'_>) + Send + Sync>;

#[derive(Debug, Clone)]
pub enum StoreError {
    NotFound,
    Forbidden,
    Exists,
    ShareTooLarge {
        limit: u64,
    },
    /// An append does not apply to what the share holds (docs/append-protocol.md): nothing of
    /// the write was applied; the reason names the key.
    AppendRefused(String),
    /// The disk is full: nothing was written; retry once space is freed.
    Full,
    /// The write cannot be stored as it is (`--redact` could not read an item): 400.
    Refused(String),
    Backend(String),
}

/// A share as readers get it: its session id and every item, sorted by item key.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub session_id: String,
    pub items: Vec<StoredItem>,
}

impl Snapshot {
    /// The highest sequence number in the snapshot (0 for an empty share).
    pub fn seq(&self) -> i64 {
        self.items.iter().map(|i| i.seq).max().unwrap_or(0)
    }
}

/// A share's row without its items.
#[derive(Debug, Clone)]
pub struct Head {
    pub session_id: String,
    pub seq: i64,
}

/// A share as an administrator lists it: its row and item count, never its items or secret.
#[derive(Debug, Clone, PartialEq)]
pub struct ShareInfo {
    pub id: String,
    pub session_id: String,
    /// Its last write's sequence number.
    pub seq: i64,
    /// Its items' bytes together.
    pub bytes: i64,
    pub items: i64,
    /// When it was created and last written, Unix seconds (a share older than the schema's
    /// version 2 counts from the upgrade).
    pub created_at: i64,
    pub updated_at: i64,
}

/// Most shares one `list` or `expire` call handles (each is one short query).
pub const ADMIN_PAGE_MAX: usize = 1000;

pub type StoreResult<T> = Result<T, StoreError>;

/// What the server needs from a database.
pub trait Store: Send + Sync + 'static {
    /// Creates share `id`; `Exists` if the id is taken.
    fn create(
        &self,
        id: String,
        session_id: String,
        secret_hash: Vec<u8>,
    ) -> BoxFuture<'_, StoreResult<()>>;
    /// Upserts `items` in one transaction if `secret` is the share's; returns them as stored.
    /// Append items are applied to the stored text of their key (`append::resolve`) in the same
    /// transaction, or the whole write is refused with `AppendRefused`.
    fn write(
        &self,
        id: String,
        secret: String,
        items: Vec<Item>,
        max_share_bytes: u64,
    ) -> BoxFuture<'_, StoreResult<Vec<StoredItem>>>;
    /// Deletes the share and every item of it if `secret` is the share's.
    fn delete(&self, id: String, secret: String) -> BoxFuture<'_, StoreResult<()>>;
    /// The whole share, or `NotFound`.
    fn read(&self, id: String) -> BoxFuture<'_, StoreResult<Snapshot>>;
    /// At most `limit` items of share `id` written with a sequence number above `after`, in
    /// sequence order (a reader pages through them, so no reader holds a whole share).
    fn changes(
        &self,
        id: String,
        after: i64,
        limit: usize,
    ) -> BoxFuture<'_, StoreResult<Vec<StoredItem>>>;
    /// At most `limit` items of share `id` with a key after `after_key` ("" = from the first), in
    /// key order: a whole share read page by page, each page its own short read.
    fn page(
        &self,
        id: String,
        after_key: String,
        limit: usize,
    ) -> BoxFuture<'_, StoreResult<Vec<StoredItem>>>;
    /// The share's session id and sequence head (its last write's number), or `NotFound`.
    fn head(&self, id: String) -> BoxFuture<'_, StoreResult<Head>>;
    /// The SHA-256 of the share's secret, or `NotFound` (to refuse a wrong secret before the
    /// share's rate budget is charged).
    fn secret_hash(&self, id: String) -> BoxFuture<'_, StoreResult<Vec<u8>>>;
    /// At most `limit` shares with an id after `after_id` ("" = from the first), in id order.
    fn list(&self, after_id: String, limit: usize) -> BoxFuture<'_, StoreResult<Vec<ShareInfo>>>;
    /// One share's row, or `NotFound`.
    fn info(&self, id: String) -> BoxFuture<'_, StoreResult<ShareInfo>>;
    /// Deletes share `id` and its items without its secret (an administrator's takedown), telling
    /// other processes as `delete` does; `NotFound` if there is none.
    fn remove(&self, id: String) -> BoxFuture<'_, StoreResult<()>>;
    /// Deletes at most `limit` shares not written for `idle_secs` seconds (the database's clock);
    /// returns their ids.
    fn expire(&self, idle_secs: i64, limit: usize) -> BoxFuture<'_, StoreResult<Vec<String>>>;
    /// Writes a consistent copy of the whole database to the file `to` (SQLite's `VACUUM INTO`,
    /// while the server runs); PostgreSQL answers that `pg_dump` does this.
    fn backup(&self, to: String) -> BoxFuture<'_, StoreResult<()>>;
    /// Starts relaying other processes' writes to `on_change` (PostgreSQL's LISTEN); SQLite has none.
    fn relay(self: Arc<Self>, on_change: OnChange);
}

/// Inside `impl Store for` a wrapper with an `inner: Arc<dyn Store>` field: the methods that
/// only read (and `backup`, `relay`) as the inner store's, for wrappers that change writes.
macro_rules! forward_reads {
    () => {
        fn read(&self, id: String) -> BoxFuture<'_, StoreResult<Snapshot>> {
            self.inner.read(id)
        }

        fn changes(
            &self,
            id: String,
            after: i64,
            limit: usize,
        ) -> BoxFuture<'_, StoreResult<Vec<StoredItem>>> {
            self.inner.changes(id, after, limit)
        }

        fn page(
            &self,
            id: String,
            after_key: String,
            limit: usize,
        ) -> BoxFuture<'_, StoreResult<Vec<StoredItem>>> {
            self.inner.page(id, after_key, limit)
        }

        fn head(&self, id: String) -> BoxFuture<'_, StoreResult<Head>> {
            self.inner.head(id)
        }

        fn secret_hash(&self, id: String) -> BoxFuture<'_, StoreResult<Vec<u8>>> {
            self.inner.secret_hash(id)
        }

        fn list(
            &self,
            after_id: String,
            limit: usize,
        ) -> BoxFuture<'_, StoreResult<Vec<ShareInfo>>> {
            self.inner.list(after_id, limit)
        }

        fn info(&self, id: String) -> BoxFuture<'_, StoreResult<ShareInfo>> {
            self.inner.info(id)
        }

        fn backup(&self, to: String) -> BoxFuture<'_, StoreResult<()>> {
            self.inner.backup(to)
        }

        fn relay(self: Arc<Self>, on_change: OnChange) {
            self.inner.clone().relay(on_change)
        }
    };
}
pub(crate) use forward_reads;

/// Opens the store a `--database` URL names.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, String> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        Ok(Arc::new(sqlite::SqliteStore::open(path)?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgStore::open(url).await?))
    } else {
        Err("--database must be sqlite://PATH or postgres://...".into())
    }
}
