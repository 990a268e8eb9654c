//! Embedded [`ResponseCache`] on moka (TinyLFU admission, size bound, TTL), standing in
//! for ElastiCache Redis (PO-05). Keys are built by [`crate::pipeline::cache::key`].

use super::{BackendError, CachedAnswer, ResponseCache};
use async_trait::async_trait;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct MokaCache {
    inner: moka::sync::Cache<String, CachedAnswer>,
}

impl MokaCache {
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        MokaCache {
            inner: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
        }
    }
}

#[async_trait]
impl ResponseCache for MokaCache {
    async fn get(&self, key: &str) -> Result<Option<CachedAnswer>, BackendError> {
        Ok(self.inner.get(key))
    }

    async fn put(&self, key: &str, answer: CachedAnswer) -> Result<(), BackendError> {
        self.inner.insert(key.to_string(), answer);
        Ok(())
    }
}
