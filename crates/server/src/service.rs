//! The share service, without HTTP: creating a share (create token, per-address budget),
//! writing items (secret, then the share's rate, limits, one transaction, then the live viewers'
//! wake-up) and deleting a share. A wrong secret is refused before the share's rate budget is
//! charged, so nobody without the secret can spend the owner's budget; wrong secrets spend a
//! budget of their own per client address instead.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::config::Limits;
use crate::error::ApiError;
use crate::hub::Hub;
use crate::item::{self, Item};
use crate::limiter::Limiter;
use crate::secret;
use crate::store::{Store, StoreError};

/// What the protocols call; one per server.
pub struct Shares {
    pub store: Arc<dyn Store>,
    pub hub: Arc<Hub>,
    pub limits: Limits,
    /// Requests per share id.
    per_share: Limiter,
    /// Creates per client address.
    creates: Limiter,
    /// Wrong secrets per client address.
    wrong_secrets: Limiter,
    create_token: Option<String>,
    /// Secret hashes read from the store, so the check before the rate budget costs no read
    /// for an owner's writes. Lock order: a leaf lock, never held across an await.
    hashes: Mutex<HashMap<String, Vec<u8>>>,
}

/// Hashes kept before the cache is emptied and refilled.
const HASHES_KEPT: usize = 100_000;

fn too_many(retry_after_s: u64) -> ApiError {
    ApiError::TooMany { retry_after_s }
}

impl Shares {
    pub fn new(
        store: Arc<dyn Store>,
        hub: Arc<Hub>,
        limits: Limits,
        create_token: Option<String>,
    ) -> Shares {
        Shares {
            store,
            hub,
            per_share: Limiter::per_second(limits.rate_per_share),
            creates: Limiter::per_minute(limits.creates_per_minute),
            wrong_secrets: Limiter::per_minute(limits.wrong_secrets_per_minute),
            limits,
            create_token,
            hashes: Mutex::default(),
        }
    }

    /// Whether `secret_text` is share `id`'s: the cached hash if it matches, else the store's
    /// (a cached hash may be stale after a delete and re-create).
    async fn secret_is_right(&self, id: &str, secret_text: &str) -> Result<bool, ApiError> {
        let cached = self.hashes().get(id).cloned();
        if cached.is_some_and(|hash| secret::matches(secret_text, &hash)) {
            return Ok(true);
        }
        let hash = match self.store.secret_hash(id.to_owned()).await {
            Ok(hash) => hash,
            Err(e) => {
                self.forget(id);
                return Err(e.into());
            }
        };
        let right = secret::matches(secret_text, &hash);
        let mut hashes = self.hashes();
        if hashes.len() >= HASHES_KEPT {
            hashes.clear();
        }
        hashes.insert(id.to_owned(), hash);
        Ok(right)
    }

    fn hashes(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<u8>>> {
        self.hashes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops a cached hash the store no longer agrees with (deleted, re-created).
    fn forget(&self, id: &str) {
        self.hashes().remove(id);
    }

    /// `--create-token`: a create needs it as its bearer token.
    fn check_create_token(&self, bearer: Option<&str>) -> Result<(), ApiError> {
        let Some(expected) = &self.create_token else {
            return Ok(());
        };
        if secret::token_matches(bearer.unwrap_or(""), expected) {
            Ok(())
        } else {
            Err(ApiError::Unauthorized)
        }
    }

    /// The secret first (404, or 403 and one of the client's wrong-secret budget, 429 once it
    /// is spent), then one of the share's rate budget (429). The store checks the secret again
    /// inside its transaction: this check only decides whose budget a request spends.
    async fn authorize(&self, id: &str, secret_text: &str, client: IpAddr) -> Result<(), ApiError> {
        if !self.secret_is_right(id, secret_text).await? {
            self.wrong_secrets
                .check(&client.to_string())
                .map_err(too_many)?;
            return Err(ApiError::Forbidden);
        }
        self.per_share.check(id).map_err(too_many)
    }

    /// Both protocols' create: the token, the client's create budget, then the share of
    /// `session_id` (its id is the session's last 8 characters); returns (id, secret), the only
    /// time the secret is told.
    pub async fn create(
        &self,
        bearer: Option<&str>,
        session_id: &str,
        client: IpAddr,
    ) -> Result<(String, String), ApiError> {
        self.check_create_token(bearer)?;
        let id = item::share_id(session_id).map_err(ApiError::BadRequest)?;
        self.creates.check(&client.to_string()).map_err(too_many)?;
        let secret_text = secret::generate();
        self.store
            .create(
                id.clone(),
                session_id.to_owned(),
                secret::hash(&secret_text),
            )
            .await?;
        Ok((id, secret_text))
    }

    /// Upserts items into share `id` (secret, rate, limits, one transaction; append items
    /// applied to the stored content there), then wakes its viewers.
    pub async fn write(
        &self,
        id: &str,
        secret_text: String,
        mut items: Vec<Item>,
        client: IpAddr,
    ) -> Result<(), ApiError> {
        self.authorize(id, &secret_text, client).await?;
        for append in items.iter_mut().filter_map(|i| i.append.as_mut()) {
            append.max_item_bytes = self.limits.max_item_bytes; // checked once grown, in the store
        }
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
        let written = self
            .store
            .write(
                id.to_owned(),
                secret_text,
                items,
                self.limits.max_share_bytes,
            )
            .await;
        if let Err(StoreError::NotFound | StoreError::Forbidden) = &written {
            self.forget(id);
        }
        written?;
        self.hub.poke(id);
        Ok(())
    }

    /// Deletes share `id` and closes its live viewers.
    pub async fn delete(
        &self,
        id: &str,
        secret_text: String,
        client: IpAddr,
    ) -> Result<(), ApiError> {
        self.authorize(id, &secret_text, client).await?;
        let deleted = self.store.delete(id.to_owned(), secret_text).await;
        self.forget(id);
        deleted?;
        self.hub.close(id);
        Ok(())
    }
}
