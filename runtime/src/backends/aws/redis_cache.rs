//! [`RedisCache`]: the response cache (PO-05) on ElastiCache Redis. Each answer is one
//! string key, `MANGA_REDIS_KEY_PREFIX` + the pipeline's cache key
//! ([`crate::pipeline::cache::key`]), holding the [`CachedAnswer`] as JSON, written with
//! `SET … EX MANGA_CACHE_TTL_SECS` so Redis expires it.
//!
//! `rediss://` URLs use TLS through rustls (ElastiCache in-transit encryption), `redis://`
//! plain TCP (local redis-server). Two topologies, chosen by `MANGA_REDIS_CLUSTER`
//! (which the service stack sets from the cache stack's cluster mode):
//! - single shard ([`RedisCache::new`]): the primary endpoint through a
//!   [`ConnectionManager`], one multiplexed connection shared by all requests;
//! - cluster mode enabled ([`RedisCache::new_cluster`]): the configuration endpoint
//!   through the `redis` crate's async cluster client, which reads the slot map
//!   (`CLUSTER SLOTS`) from it, keeps one multiplexed connection per primary, sends each
//!   key to the primary owning its slot and follows `MOVED`/`ASK` redirects. A
//!   single-node connection to a cluster gets `MOVED` for every key another shard owns.
//!
//! Both reconnect after failures and are opened lazily, so the runtime starts (and
//! `/readyz` reports the cache) while Redis is down.

use crate::backends::{BackendError, CachedAnswer, ResponseCache};
use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{FromRedisValue, RedisResult};
use std::time::Duration;

/// Per connection attempt and per reply, on both topologies: a cache that answers later
/// than this is of no use to a request's latency budget.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Retries of one command (the cluster client also retries after a redirect or a slot
/// map refresh).
const RETRIES: u32 = 2;
/// Cap on one cluster command including its retries and redirects. The client's default
/// is the response timeout itself, which leaves no time for the retry after a `MOVED`
/// during a failover or resharding.
const CLUSTER_OVERALL_TIMEOUT: Duration = Duration::from_secs(2);

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

/// The connection of one topology; both are cheap clones of a shared multiplexed handle.
#[derive(Clone)]
enum Connection {
    /// Cluster mode disabled: the primary endpoint.
    Single(ConnectionManager),
    /// Cluster mode enabled: the configuration endpoint, shards discovered by the client.
    Cluster(ClusterConnection),
}

impl Connection {
    async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> RedisResult<T> {
        match self {
            Connection::Single(manager) => cmd.query_async(&mut manager.clone()).await,
            Connection::Cluster(cluster) => cmd.query_async(&mut cluster.clone()).await,
        }
    }
}

#[derive(Clone)]
pub struct RedisCache {
    conn: Connection,
    prefix: String,
    ttl_secs: u64,
}

impl std::fmt::Debug for RedisCache {
    // The connections' Debug would print the URL, which may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("cluster", &matches!(self.conn, Connection::Cluster(_)))
            .field("prefix", &self.prefix)
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

impl RedisCache {
    /// A single-shard group (or a local redis-server) at `url`, its primary endpoint.
    /// Must be called inside the tokio runtime (the manager spawns its reconnect task).
    pub fn new(url: &str, prefix: &str, ttl: Duration) -> Result<Self, RedisCacheError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(RETRIES as usize);
        let manager = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self::with(Connection::Single(manager), prefix, ttl))
    }

    /// A cluster-mode-enabled group whose configuration endpoint is `url`. ElastiCache:
    /// "For Valkey or Redis OSS (cluster mode enabled) clusters, use the cluster's
    /// Configuration Endpoint for all operations that support cluster mode enabled
    /// commands. You must use a client that supports either Valkey Cluster, or Redis OSS
    /// Cluster" (Finding connection endpoints in ElastiCache,
    /// docs.aws.amazon.com/AmazonElastiCache/latest/dg/Endpoints.html). The cluster
    /// client learns the shards from that endpoint with `CLUSTER SLOTS`, and again after
    /// a `MOVED` reply or a lost node.
    ///
    /// Must be called inside the tokio runtime: the connection's driver is spawned now
    /// and connects in the background, so this succeeds while the cluster is down and
    /// commands fail (as `Unavailable`) until it is reachable.
    pub fn new_cluster(url: &str, prefix: &str, ttl: Duration) -> Result<Self, RedisCacheError> {
        // A `rediss://` URL makes the client use TLS for every node it discovers.
        let client = ClusterClient::builder([url])
            .retries(RETRIES)
            .overall_response_timeout(Some(CLUSTER_OVERALL_TIMEOUT))
            .build()?;
        // The per-connection timeouts are taken from this config (not the builder) when
        // the connection is made.
        let config = ClusterConfig::new()
            .set_connection_timeout(CONNECT_TIMEOUT)
            .set_response_timeout(RESPONSE_TIMEOUT);
        let cluster = client.get_pending_async_connection_with_config(config);
        Ok(Self::with(Connection::Cluster(cluster), prefix, ttl))
    }

    fn with(conn: Connection, prefix: &str, ttl: Duration) -> Self {
        RedisCache {
            conn,
            prefix: prefix.to_string(),
            // `SET … EX 0` is an error in Redis.
            ttl_secs: ttl.as_secs().max(1),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

#[async_trait]
impl ResponseCache for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<CachedAnswer>, BackendError> {
        let key = self.key(key);
        let value: Option<Vec<u8>> = self
            .conn
            .query(redis::cmd("GET").arg(&key))
            .await
            .map_err(RedisCacheError::from)?;
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
        let () = self
            .conn
            .query(
                redis::cmd("SET")
                    .arg(self.key(key))
                    .arg(value)
                    .arg("EX")
                    .arg(self.ttl_secs),
            )
            .await
            .map_err(RedisCacheError::from)?;
        Ok(())
    }

    /// `PING`; the cluster client sends it to every primary, so a cluster is ready only
    /// when each shard answers (a lost shard would fail its share of the keys).
    async fn ready(&self) -> Result<(), BackendError> {
        let _: String = self
            .conn
            .query(&redis::cmd("PING"))
            .await
            .map_err(RedisCacheError::from)?;
        Ok(())
    }
}
