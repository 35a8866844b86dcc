//! Prometheus metrics (`GET /metrics`): requests by route and status with their latency, the
//! store's transaction latency per operation, open live streams, and the shares, items and bytes
//! written. Labels are route templates (`/api/share/{id}/sync`), never ids, secrets or tokens.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::item::{Item, StoredItem};
use crate::store::{Head, OnChange, ShareInfo, Snapshot, Store, StoreResult};

/// One request's route template, method and status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

/// One route template and method.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

/// One store operation (`create`, `write`, `delete`) and whether it committed.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    op: String,
    ok: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// 0.5 ms to about 16 s, doubling.
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Every metric the server keeps; cheap to update from any thread (atomics inside).
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Histograms<RouteLabels>,
    store_latency: Histograms<StoreLabels>,
    open_streams: Gauge,
    shares_created: Counter,
    shares_deleted: Counter,
    items_written: Counter,
    item_bytes_written: Counter,
    credentials_redacted: Counter,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let metrics = Metrics {
            registry: Registry::with_prefix("opencode_share"),
            requests: Family::default(),
            latency: Family::new_with_constructor(seconds),
            store_latency: Family::new_with_constructor(seconds),
            open_streams: Gauge::default(),
            shares_created: Counter::default(),
            shares_deleted: Counter::default(),
            items_written: Counter::default(),
            item_bytes_written: Counter::default(),
            credentials_redacted: Counter::default(),
        };
        let mut registry = Registry::with_prefix("opencode_share");
        let (m, r) = (&metrics, &mut registry);
        r.register(
            "http_requests",
            "HTTP requests answered, by route template and status",
            m.requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "Time to the response head, by route template",
            m.latency.clone(),
        );
        r.register(
            "store_commit_duration_seconds",
            "Store transactions (create, write, delete), start to commit",
            m.store_latency.clone(),
        );
        r.register(
            "open_streams",
            "Live streams open (viewer SSE and legacy WebSocket)",
            m.open_streams.clone(),
        );
        r.register(
            "shares_created",
            "Shares created since the process started",
            m.shares_created.clone(),
        );
        r.register(
            "shares_deleted",
            "Shares deleted since the process started",
            m.shares_deleted.clone(),
        );
        r.register(
            "items_written",
            "Items committed since the process started",
            m.items_written.clone(),
        );
        r.register(
            "item_bytes_written",
            "Bytes of item JSON committed since the process started",
            m.item_bytes_written.clone(),
        );
        r.register(
            "credentials_redacted",
            "Credentials replaced by a marker on write (--redact) since the process started",
            m.credentials_redacted.clone(),
        );
        Arc::new(Metrics {
            registry,
            ..metrics
        })
    }

    /// Counts one answered request. A method outside HTTP's usual ones counts as `other`: the
    /// client names it, and each label value is a series kept for the process's life.
    pub fn request(&self, method: &str, route: &str, status: u16, took: Duration) {
        const KNOWN: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
        let method = if KNOWN.contains(&method) {
            method
        } else {
            "other"
        };
        let (method, route) = (method.to_owned(), route.to_owned());
        self.latency
            .get_or_create(&RouteLabels {
                method: method.clone(),
                route: route.clone(),
            })
            .observe(took.as_secs_f64());
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status,
            })
            .inc();
    }

    /// The text exposition, with `open_streams` set to what is open now.
    pub fn render(&self, open_streams: usize) -> String {
        self.open_streams
            .set(i64::try_from(open_streams).unwrap_or(i64::MAX));
        let mut out = String::new();
        // writing to a String cannot fail
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// `--redact` replaced `count` credentials.
    pub fn redacted(&self, count: usize) {
        self.credentials_redacted.inc_by(count as u64);
    }

    fn store_op<T>(&self, op: &str, started: Instant, result: &StoreResult<T>) {
        self.store_latency
            .get_or_create(&StoreLabels {
                op: op.to_owned(),
                ok: result.is_ok().to_string(),
            })
            .observe(started.elapsed().as_secs_f64());
    }
}

/// A store that times its writing operations and counts what they commit, then does what the
/// store it wraps does.
pub struct Metered {
    pub inner: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
}

impl Store for Metered {
    crate::store::forward_reads!();

    fn create(
        &self,
        id: String,
        session_id: String,
        secret_hash: Vec<u8>,
    ) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(async move {
            let started = Instant::now();
            let result = self.inner.create(id, session_id, secret_hash).await;
            self.metrics.store_op("create", started, &result);
            if result.is_ok() {
                self.metrics.shares_created.inc();
            }
            result
        })
    }

    fn write(
        &self,
        id: String,
        secret: String,
        items: Vec<Item>,
        max_share_bytes: u64,
    ) -> BoxFuture<'_, StoreResult<Vec<StoredItem>>> {
        Box::pin(async move {
            let (count, bytes) = (
                items.len(),
                items.iter().map(|i| i.data.len()).sum::<usize>(),
            );
            let started = Instant::now();
            let result = self.inner.write(id, secret, items, max_share_bytes).await;
            self.metrics.store_op("write", started, &result);
            if result.is_ok() {
                self.metrics.items_written.inc_by(count as u64);
                self.metrics.item_bytes_written.inc_by(bytes as u64);
            }
            result
        })
    }

    fn delete(&self, id: String, secret: String) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(async move {
            let started = Instant::now();
            let result = self.inner.delete(id, secret).await;
            self.metrics.store_op("delete", started, &result);
            if result.is_ok() {
                self.metrics.shares_deleted.inc();
            }
            result
        })
    }

    fn remove(&self, id: String) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(async move {
            let result = self.inner.remove(id).await;
            if result.is_ok() {
                self.metrics.shares_deleted.inc();
            }
            result
        })
    }

    fn expire(&self, idle_secs: i64, limit: usize) -> BoxFuture<'_, StoreResult<Vec<String>>> {
        Box::pin(async move {
            let result = self.inner.expire(idle_secs, limit).await;
            if let Ok(gone) = &result {
                self.metrics.shares_deleted.inc_by(gone.len() as u64);
            }
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clients_own_methods_share_one_series() {
        let metrics = Metrics::new();
        for method in ["GET", "FOO", "BAR"] {
            metrics.request(method, "unmatched", 404, Duration::from_millis(1));
        }
        let text = metrics.render(3);
        assert!(
            text.contains(
                r#"http_requests_total{method="other",route="unmatched",status="404"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"method="GET""#) && !text.contains("FOO"));
        assert!(text.contains("opencode_share_open_streams 3"));
    }
}
