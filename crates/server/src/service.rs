//! The share service, without HTTP: creating a share (create token, rate), writing items (limits,
//! rate, secret, one transaction, then the live viewers' wake-up) and deleting a share.

use std::sync::Arc;

use crate::config::Limits;
use crate::error::ApiError;
use crate::hub::Hub;
use crate::item::{self, Item};
use crate::limiter::Limiter;
use crate::secret;
use crate::store::Store;

/// What the protocols call; one per server.
pub struct Shares {
    pub store: Arc<dyn Store>,
    pub hub: Arc<Hub>,
    pub limits: Limits,
    limiter: Limiter,
    create_token: Option<String>,
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
            limiter: Limiter::new(limits.rate_per_share),
            limits,
            create_token,
        }
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

    fn charge(&self, id: &str) -> Result<(), ApiError> {
        self.limiter
            .check(id)
            .map_err(|s| ApiError::TooMany { retry_after_s: s })
    }

    /// Both protocols' create: the token, then the share of `session_id` (its id is the
    /// session's last 8 characters); returns (id, secret), the only time the secret is told.
    pub async fn create(
        &self,
        bearer: Option<&str>,
        session_id: &str,
    ) -> Result<(String, String), ApiError> {
        self.check_create_token(bearer)?;
        let id = item::share_id(session_id).map_err(ApiError::BadRequest)?;
        self.charge(&id)?;
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

    /// Upserts items into share `id` (limits, rate, secret, one transaction), then wakes its viewers.
    pub async fn write(
        &self,
        id: &str,
        secret_text: String,
        items: Vec<Item>,
    ) -> Result<(), ApiError> {
        self.charge(id)?;
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
        self.charge(id)?;
        self.store.delete(id.to_owned(), secret_text).await?;
        self.hub.close(id);
        Ok(())
    }
}
