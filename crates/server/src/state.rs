//! What every handler shares: the share service, the store for reads, the live hub, the base URL.

use std::sync::Arc;

use crate::hub::Hub;
use crate::service::Shares;
use crate::store::Store;

pub struct AppState {
    pub shares: Shares,
    pub store: Arc<dyn Store>,
    pub hub: Arc<Hub>,
    pub public_url: String,
}

/// The extractor handlers take the state with.
pub type State = axum::extract::State<Arc<AppState>>;

impl AppState {
    pub fn new(shares: Shares, public_url: String) -> AppState {
        AppState {
            store: shares.store.clone(),
            hub: shares.hub.clone(),
            shares,
            public_url,
        }
    }
}
