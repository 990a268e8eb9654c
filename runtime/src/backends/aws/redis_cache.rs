//! [`RedisCache`]: the response cache (PO-05) on ElastiCache Redis. Each answer is one
//! string key, `MANGA_REDIS_KEY_PREFIX` + the pipeline's cache key
//! ([`crate::pipeline::cache::key`]), holding the [`CachedAnswer`] as JSON, written with
//! `SET … EX MANGA_CACHE_TTL_SECS` so Redis expires it.
//!
//! `rediss://` URLs use TLS through rustls (ElastiCache in-transit encryption), `redis://`
//! plain TCP (local redis-server). The connection is a [`ConnectionManager`]: one
//! multiplexed connection shared by all requests, reconnecting after failures, opened
//! lazily so the runtime starts (and `/readyz` reports the cache) while Redis is down.

use crate::backends::{BackendError, CachedAnswer, ResponseCache};
use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::AsyncCommands;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum RedisCacheError {
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("Redis value under {key} is not a cached answer: {message}")]
    BadValue { key: String, message: String },
}

impl From<RedisCacheError> for BackendError {
    fn from(e: RedisCacheError) -> Self {
        match e {
            RedisCacheError::Redis(_) => BackendError::Unavailable(e.to_string()),
            RedisCacheError::BadValue { .. } => BackendError::Invalid(e.to_string()),
        }
    }
}

#[derive(Clone)]
pub struct RedisCache {
    manager: ConnectionManager,
    prefix: String,
    ttl_secs: u64,
}

impl std::fmt::Debug for RedisCache {
    // The manager's Debug would print the URL, which may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("prefix", &self.prefix)
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

impl RedisCache {
    /// Must be called inside the tokio runtime (the manager spawns its reconnect task).
    pub fn new(url: &str, prefix: &str, ttl: Duration) -> Result<Self, RedisCacheError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(2);
        let manager = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(RedisCache {
            manager,
            prefix: prefix.to_string(),
            // `SET … EX 0` is an error in Redis.
            ttl_secs: ttl.as_secs().max(1),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

#[async_trait]
impl ResponseCache for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<CachedAnswer>, BackendError> {
        let key = self.key(key);
        let mut conn = self.manager.clone();
        let value: Option<Vec<u8>> = conn.get(&key).await.map_err(RedisCacheError::from)?;
        match value {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                RedisCacheError::BadValue {
                    key,
                    message: e.to_string(),
                }
                .into()
            }),
        }
    }

    async fn put(&self, key: &str, answer: CachedAnswer) -> Result<(), BackendError> {
        let value =
            serde_json::to_vec(&answer).map_err(|e| BackendError::Invalid(e.to_string()))?;
        let mut conn = self.manager.clone();
        let () = conn
            .set_ex(self.key(key), value, self.ttl_secs)
            .await
            .map_err(RedisCacheError::from)?;
        Ok(())
    }

    async fn ready(&self) -> Result<(), BackendError> {
        let mut conn = self.manager.clone();
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(RedisCacheError::from)?;
        Ok(())
    }
}
