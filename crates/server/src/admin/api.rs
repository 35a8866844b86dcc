//! The admin HTTP API of a running server, mounted only with `--admin-token`: list shares, show
//! one, export one, take one down (its live viewers are closed). Every route needs
//! `authorization: Bearer <admin token>`, compared in constant time; the token is never logged.
//! Wrong tokens spend a budget per client address (`--wrong-secret-limit` a minute, as wrong
//! share secrets do): 429 once it is spent.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Path, Query, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use crate::client::client_ip;
use crate::error::ApiError;
use crate::http::{bearer, ok_json};
use crate::item::valid_id;
use crate::limiter::Limiter;
use crate::state::{AppState, State};
use crate::store::ADMIN_PAGE_MAX;

/// The admin routes, each behind `token`.
pub fn routes(token: String, state: &AppState) -> Router<Arc<AppState>> {
    let token: Arc<str> = token.into();
    let wrong = Arc::new(Limiter::per_minute(
        state.shares.limits.wrong_secrets_per_minute,
    ));
    let trusted: Arc<[IpAddr]> = state.trusted_proxies.clone().into();
    Router::new()
        .route("/admin/shares", get(list))
        .route("/admin/shares/{id}", get(show).delete(delete))
        .route("/admin/shares/{id}/export", get(export))
        .route_layer(middleware::from_fn(move |request: Request, next: Next| {
            let (token, wrong, trusted) = (token.clone(), wrong.clone(), trusted.clone());
            async move {
                let given = bearer(request.headers()).unwrap_or("");
                if crate::secret::token_matches(given, &token) {
                    return next.run(request).await;
                }
                let peer = request
                    .extensions()
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|c| c.0.ip())
                    .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
                let client = client_ip(peer, request.headers(), &trusted);
                match wrong.check(&client.to_string()) {
                    Ok(()) => ApiError::NotAdmin.into_response(),
                    Err(retry_after_s) => ApiError::TooMany { retry_after_s }.into_response(),
                }
            }
        }))
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    after: String,
    limit: Option<usize>,
}

/// `GET /admin/shares?after=ID&limit=N`: a page of shares in id order, and the `next` page's
/// `after` while there may be more.
async fn list(state: State, Query(page): Query<Page>) -> Result<Response, ApiError> {
    let limit = page.limit.unwrap_or(100).clamp(1, ADMIN_PAGE_MAX);
    let shares = state.store.list(page.after, limit).await?;
    let next = (shares.len() == limit).then(|| shares.last().map(|s| s.id.clone()));
    let shares: Vec<_> = shares.iter().map(super::info_json).collect();
    Ok(ok_json(
        json!({ "shares": shares, "next": next.flatten() }).to_string(),
    ))
}

fn checked(id: &str) -> Result<&str, ApiError> {
    valid_id(id)
        .then_some(id)
        .ok_or_else(|| ApiError::BadRequest("a share id is 1 to 64 of [A-Za-z0-9_-]".into()))
}

async fn show(state: State, Path(id): Path<String>) -> Result<Response, ApiError> {
    let info = state.store.info(checked(&id)?.to_owned()).await?;
    Ok(ok_json(super::info_json(&info).to_string()))
}

async fn export(state: State, Path(id): Path<String>) -> Result<Response, ApiError> {
    let whole = super::export(&*state.store, checked(&id)?).await?;
    Ok(ok_json(whole.to_string()))
}

/// `DELETE /admin/shares/{id}`: 204 once the share and its items are gone and its viewers closed.
async fn delete(state: State, Path(id): Path<String>) -> Result<Response, ApiError> {
    super::take_down(&*state.store, &state.hub, checked(&id)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
