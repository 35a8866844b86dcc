//! `--redact`: credentials in what clients write are replaced by a marker naming the rule
//! (`[redacted: github-token]`) before anything is stored, with the client library's own rule
//! set, so shares from clients without the library (opencode's own, any other) are covered
//! too. A store wrapper: every protocol's writes pass through `Store::write`.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use opencode_share::redact::Policy;

use crate::item::{Item, StoredItem};
use crate::metrics::Metrics;
use crate::store::{Head, OnChange, ShareInfo, Snapshot, Store, StoreError, StoreResult};

/// Writes of more bytes than this are redacted on the blocking pool, not an async worker.
const INLINE_BYTES: usize = 64 << 10;

/// A store whose writes are redacted first; everything else is the wrapped store's.
pub struct Redacting {
    inner: Arc<dyn Store>,
    policy: Arc<Policy>,
    metrics: Arc<Metrics>,
}

impl Redacting {
    /// The library's built-in rules (high-confidence ones), compiled now so a rule set that
    /// cannot load stops the start instead of refusing writes later.
    pub fn new(inner: Arc<dyn Store>, metrics: Arc<Metrics>) -> Result<Redacting, String> {
        let policy = opencode_share::redact::from_config(Some(true), None, None)?
            .ok_or("--redact: no redaction policy")?;
        Ok(Redacting {
            inner,
            policy,
            metrics,
        })
    }
}

/// `items` with every credential replaced; the count replaced. An item redaction cannot read
/// is refused (400): storing it unredacted could publish what `--redact` promised to keep out.
fn redact_all(policy: &Policy, id: &str, items: Vec<Item>) -> StoreResult<(Vec<Item>, usize)> {
    let mut total = 0;
    let mut out = Vec::with_capacity(items.len());
    for mut item in items {
        // not advertised under --redact: a suffix alone cannot be checked (a credential may
        // begin in the stored text); the client sends the whole content after this refusal
        if item.append.is_some() {
            return Err(StoreError::AppendRefused(format!(
                "item {}: this server redacts and takes whole contents only",
                item.key
            )));
        }
        let done = policy
            .redact(&item.data)
            .map_err(|e| StoreError::Refused(format!("item {}: {e}", item.key)))?;
        if done.count > 0 {
            let rules: Vec<&str> = done.rules.iter().map(|r| &**r).collect();
            tracing::info!(share = id, item = %item.key, count = done.count, ?rules, "redacted credentials on write");
            total += done.count;
            item.data = done.text.into_owned();
        }
        out.push(item);
    }
    Ok((out, total))
}

impl Store for Redacting {
    crate::store::forward_reads!();

    fn create(
        &self,
        id: String,
        session_id: String,
        secret_hash: Vec<u8>,
    ) -> BoxFuture<'_, StoreResult<()>> {
        self.inner.create(id, session_id, secret_hash)
    }

    fn write(
        &self,
        id: String,
        secret: String,
        items: Vec<Item>,
        max_share_bytes: u64,
    ) -> BoxFuture<'_, StoreResult<Vec<StoredItem>>> {
        Box::pin(async move {
            let bytes: usize = items.iter().map(|i| i.data.len()).sum();
            let (items, count) = if bytes <= INLINE_BYTES {
                redact_all(&self.policy, &id, items)?
            } else {
                let (policy, share) = (self.policy.clone(), id.clone());
                tokio::task::spawn_blocking(move || redact_all(&policy, &share, items))
                    .await
                    .map_err(|e| StoreError::Backend(format!("redaction failed: {e}")))??
            };
            let written = self.inner.write(id, secret, items, max_share_bytes).await?;
            self.metrics.redacted(count);
            Ok(written)
        })
    }

    fn delete(&self, id: String, secret: String) -> BoxFuture<'_, StoreResult<()>> {
        self.inner.delete(id, secret)
    }

    fn remove(&self, id: String) -> BoxFuture<'_, StoreResult<()>> {
        self.inner.remove(id)
    }

    fn expire(&self, idle_secs: i64, limit: usize) -> BoxFuture<'_, StoreResult<Vec<String>>> {
        self.inner.expire(idle_secs, limit)
    }
}
