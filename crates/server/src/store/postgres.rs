//! PostgreSQL store (placeholder until the next step).
use std::sync::Arc;
use futures_util::future::BoxFuture;
use super::{Snapshot, Store, StoreError, StoreResult};
use crate::hub::Hub;
use crate::item::{Item, StoredItem};

pub struct PgStore;

impl PgStore {
    pub async fn open(_url: &str) -> Result<Self, String> { Err("PostgreSQL support is not built yet".into()) }
}

impl Store for PgStore {
    fn create(&self, _: String, _: String, _: Vec<u8>) -> BoxFuture<'_, StoreResult<()>> { Box::pin(async { Err(StoreError::Backend("no".into())) }) }
    fn write(&self, _: String, _: String, _: Vec<Item>, _: u64) -> BoxFuture<'_, StoreResult<Vec<StoredItem>>> { Box::pin(async { Err(StoreError::Backend("no".into())) }) }
    fn delete(&self, _: String, _: String) -> BoxFuture<'_, StoreResult<()>> { Box::pin(async { Err(StoreError::Backend("no".into())) }) }
    fn read(&self, _: String) -> BoxFuture<'_, StoreResult<Snapshot>> { Box::pin(async { Err(StoreError::Backend("no".into())) }) }
    fn changes(&self, _: String, _: i64) -> BoxFuture<'_, StoreResult<Vec<StoredItem>>> { Box::pin(async { Err(StoreError::Backend("no".into())) }) }
    fn relay(self: Arc<Self>, _: Arc<Hub>) {}
}
