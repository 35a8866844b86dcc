//! What every handler shares: the share service, the store for reads, the live hub, the base URL.

use std::net::IpAddr;
use std::sync::Arc;

use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::service::Shares;
use crate::store::Store;
use crate::streams::Streams;

pub struct AppState {
    pub shares: Shares,
    pub store: Arc<dyn Store>,
    pub hub: Arc<Hub>,
    pub public_url: String,
    /// Open live streams, counted against their limits.
    pub streams: Arc<Streams>,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// What `/metrics` reports.
    pub metrics: Arc<Metrics>,
    /// `--admin-token`: the admin API is mounted when set.
    pub admin_token: Option<String>,
    /// `--allow-indexing`: no `noindex` on pages and answers.
    pub allow_indexing: bool,
    /// `--base-path`: every route is served under it ("" = at the root).
    pub base_path: String,
    /// The protocol extensions create and sync answers advertise (`x-share-extensions`).
    pub extensions: &'static str,
}

/// The extractor handlers take the state with.
pub type State = axum::extract::State<Arc<AppState>>;

impl AppState {
    pub fn new(
        shares: Shares,
        public_url: String,
        trusted_proxies: Vec<IpAddr>,
        metrics: Arc<Metrics>,
    ) -> AppState {
        let limits = &shares.limits;
        AppState {
            streams: Streams::new(limits.max_viewers_per_share, limits.max_viewers),
            trusted_proxies,
            metrics,
            store: shares.store.clone(),
            hub: shares.hub.clone(),
            shares,
            public_url,
            admin_token: None,
            allow_indexing: false,
            base_path: String::new(),
            extensions: crate::append::EXTENSIONS,
        }
    }
}
