//! The HTTP server: shared state, the route table, binding, and running it in or beside a process.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;

use axum::Router;
use axum::http::{HeaderMap, header};
use axum::routing::{get, post};
use tokio::sync::oneshot;

use crate::config::{Config, Limits};
use crate::error::ApiError;
use crate::hub::Hub;
use crate::item::Item;
use crate::limiter::Limiter;
use crate::store::{self, Store};
use crate::{api_next, api_v1, secret, viewer};

/// What every handler shares.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub hub: Arc<Hub>,
    pub limits: Limits,
    pub limiter: Limiter,
    pub public_url: String,
    pub create_token: Option<String>,
}

pub type State = axum::extract::State<Arc<AppState>>;

impl AppState {
    /// `--create-token`: a create needs `authorization: Bearer <token>`.
    pub fn check_create_token(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(expected) = &self.create_token else {
            return Ok(());
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if secret::token_matches(given, expected) {
            Ok(())
        } else {
            Err(ApiError::Unauthorized)
        }
    }

    /// Creates share `id` of `session_id` and returns its secret (the only time it is told).
    pub async fn create(&self, id: &str, session_id: &str) -> Result<String, ApiError> {
        self.limiter
            .check(id)
            .map_err(|s| ApiError::TooMany { retry_after_s: s })?;
        let secret_text = secret::generate();
        self.store
            .create(
                id.to_owned(),
                session_id.to_owned(),
                secret::hash(&secret_text),
            )
            .await?;
        Ok(secret_text)
    }

    /// Upserts items into share `id` (limits, rate, secret, one transaction), then wakes its viewers.
    pub async fn write(
        &self,
        id: &str,
        secret_text: String,
        items: Vec<Item>,
    ) -> Result<(), ApiError> {
        self.limiter
            .check(id)
            .map_err(|s| ApiError::TooMany { retry_after_s: s })?;
        if let Some(big) = items
            .iter()
            .find(|i| i.data.len() > self.limits.max_item_bytes)
        {
            return Err(ApiError::TooLarge(format!(
                "item {} is {} bytes, more than the limit of {}",
                big.key,
                big.data.len(),
                self.limits.max_item_bytes
            )));
        }
        self.store
            .write(
                id.to_owned(),
                secret_text,
                items,
                self.limits.max_share_bytes,
            )
            .await?;
        self.hub.poke(id);
        Ok(())
    }

    /// Deletes share `id` and closes its live viewers.
    pub async fn delete(&self, id: &str, secret_text: String) -> Result<(), ApiError> {
        self.limiter
            .check(id)
            .map_err(|s| ApiError::TooMany { retry_after_s: s })?;
        self.store.delete(id.to_owned(), secret_text).await?;
        self.hub.close(id);
        Ok(())
    }
}

fn routes(state: Arc<AppState>) -> Router {
    let body_limit = state.limits.max_body_bytes;
    Router::new()
        .route("/", get(|| async { "opencode-share-server\n" }))
        .route("/share_create", post(api_v1::create))
        .route("/share_sync", post(api_v1::sync))
        .route("/share_delete", post(api_v1::delete))
        .route("/share_data", get(api_v1::data))
        .route("/share_poll", get(api_v1::poll))
        .route("/api/share", post(api_next::create))
        .route("/api/shares", post(api_next::create))
        .route("/api/share/{id}/sync", post(api_next::sync))
        .route("/api/shares/{id}/sync", post(api_next::sync))
        .route("/api/share/{id}/data", get(api_next::data))
        .route("/api/shares/{id}/data", get(api_next::data))
        .route("/api/share/{id}", axum::routing::delete(api_next::delete))
        .route("/api/shares/{id}", axum::routing::delete(api_next::delete))
        .route("/share/{id}", get(viewer::page))
        .route("/s/{id}", get(viewer::page))
        .route("/share/{id}/events", get(viewer::events))
        .route("/assets/viewer.js", get(viewer::script))
        .route("/assets/viewer.css", get(viewer::style))
        .fallback(|| async { ApiError::NotFound })
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// Opens the store, binds, calls `ready` with the base URL, and serves until `stop` resolves.
pub async fn serve(
    config: Config,
    stop: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(&str),
) -> Result<(), String> {
    let store = store::open(&config.database).await?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let hub = Hub::new(&store);
    store.clone().relay(hub.clone());
    let url = format!("http://{addr}");
    let state = Arc::new(AppState {
        store,
        hub,
        limiter: Limiter::new(config.limits.rate_per_share),
        limits: config.limits,
        public_url: config.public_url.unwrap_or_else(|| url.clone()),
        create_token: config.create_token,
    });
    ready(&url);
    // graceful: stop accepting, let requests finish; live streams never finish, so after a grace
    // period the server returns anyway (and the runtime's drop closes them)
    let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        stop.await;
        let _ = stopping_tx.send(true);
    });
    let mut graceful = stopping.clone();
    let mut grace = stopping;
    let server = axum::serve(listener, routes(state)).with_graceful_shutdown(async move {
        let _ = graceful.wait_for(|s| *s).await;
    });
    tokio::select! {
        result = server => result.map_err(|e| e.to_string()),
        _ = async move {
            let _ = grace.wait_for(|s| *s).await;
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        } => Ok(()),
    }
}

/// A server running on its own thread and runtime (for the demo and tests); stops when dropped.
pub struct Running {
    pub addr: SocketAddr,
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Running {
    /// Stops accepting, lets open requests finish, and joins the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts the server on a thread of its own; returns once it listens.
pub fn spawn(config: Config) -> Result<Running, String> {
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<String, String>>();
    let thread = thread::Builder::new()
        .name("share-server".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .max_blocking_threads(16)
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
            };
            let ready = ready_tx.clone();
            let result = runtime.block_on(serve(
                config,
                async {
                    let _ = stop_rx.await;
                },
                move |url| {
                    let _ = ready.send(Ok(url.to_owned()));
                },
            ));
            if let Err(e) = result {
                let _ = ready_tx.send(Err(e));
            }
        })
        .map_err(|e| e.to_string())?;
    let url = ready_rx
        .recv()
        .map_err(|_| "the server thread ended before listening".to_string())??;
    let addr = url
        .trim_start_matches("http://")
        .parse()
        .map_err(|e| format!("{url}: {e}"))?;
    Ok(Running {
        addr,
        url,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}
