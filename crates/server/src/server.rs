//! Starting the server: open the store, wire the hub to it, bind, and serve the app's routes,
//! in the caller's runtime (`serve`) or on a thread of its own (`spawn`).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;

use tokio::sync::oneshot;

use crate::config::{self, Config};
use crate::hub::Hub;
use crate::metrics::{Metered, Metrics};
use crate::service::Shares;
use crate::state::AppState;
use crate::store;
use crate::{admin, app, listen};

/// Opens the store, wires the hub to it, and builds the shared state; `url` is where it is served.
async fn open(config: Config, url: &str) -> Result<Arc<AppState>, String> {
    let base_path = crate::web::check_base_path(&config.base_path)?;
    let metrics = Metrics::new();
    let mut store: Arc<dyn store::Store> = Arc::new(Metered {
        inner: store::open(&config.database).await?,
        metrics: metrics.clone(),
    });
    if config.redact {
        // outside the metered store: its commit timings stay the database's
        store = Arc::new(crate::redact::Redacting::new(store, metrics.clone())?);
    }
    let hub = Hub::new(&store);
    let relay_to = hub.clone();
    store
        .clone()
        .relay(Arc::new(move |change| relay_to.apply(change)));
    let shares = Shares::new(store, hub, config.limits, config.create_token);
    let public_url = config
        .public_url
        .unwrap_or_else(|| format!("{url}{base_path}"));
    let mut state = AppState::new(shares, public_url, config.trusted_proxies, metrics);
    state.admin_token = config.admin_token;
    state.allow_indexing = config.allow_indexing;
    state.base_path = base_path;
    if config.redact {
        // an append's suffix alone cannot be redacted (a credential may span it and the stored
        // text): with --redact, clients send whole contents
        state.extensions = crate::append::EXTENSIONS_WITHOUT_APPEND;
    }
    let state = Arc::new(state);
    if let Some(idle) = config.expire_after {
        admin::retention::spawn(state.clone(), idle, config.expire_sweep);
    }
    Ok(state)
}

/// The server's routes over the store `config` names, without a socket (for in-process calls,
/// e.g. tower's `ServiceExt::oneshot`); share URLs start with `public_url` unless the config says.
pub async fn router(config: Config, public_url: &str) -> Result<axum::Router, String> {
    Ok(app::router(open(config, public_url).await?))
}

/// Opens the store, binds, calls `ready` with the base URL, and serves until `stop` resolves.
pub async fn serve(
    config: Config,
    stop: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(&str),
) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    if let Some(refusal) = config::unreachable_links(addr, config.public_url.as_deref()) {
        return Err(refusal);
    }
    let url = format!("http://{addr}");
    let limits = config.limits.clone();
    let database = config.database.split(':').next().unwrap_or("").to_owned();
    let state = open(config, &url).await?;
    // the database's scheme only: its URL may carry a password
    tracing::info!(%url, %database, version = env!("CARGO_PKG_VERSION"), "listening");
    ready(&url);
    // graceful: stop accepting, let requests finish; live streams never finish, so after a grace
    // period the server returns anyway (and the runtime's drop closes them)
    let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        stop.await;
        tracing::info!("stopping: no new connections, open requests may finish");
        let _ = stopping_tx.send(true);
    });
    let mut grace = stopping.clone();
    let server = listen::accept_loop(listener, app::router(state), limits, stopping);
    tokio::select! {
        _ = server => {}
        _ = async move {
            let _ = grace.wait_for(|s| *s).await;
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        } => {}
    }
    tracing::info!("stopped");
    Ok(())
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
