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
//!
//! With `MANGA_REDIS_USER` every connection of either topology authenticates with
//! ElastiCache IAM ([`super::elasticache_iam`]): a freshly presigned token at each
//! (re)connect and a new `AUTH` on live connections every 10 hours. The cache sends
//! single commands only, never `MULTI`/`EXEC`, which IAM authentication does not support.

use super::elasticache_iam::IamCredentialsProvider;
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
    #[error(
        "Redis refused IAM authentication of user {user} for cache {cache} ({source}): check \
         that the user exists with authentication mode iam, user id == user name, is in the \
         replication group's user group, and that the task role may elasticache:Connect to both"
    )]
    IamAuth {
        user: String,
        cache: String,
        source: redis::RedisError,
    },
    #[error("Redis value under {key} is not a cached answer: {message}")]
    BadValue { key: String, message: String },
}

impl From<RedisCacheError> for BackendError {
    fn from(e: RedisCacheError) -> Self {
        match e {
            RedisCacheError::Redis(_) | RedisCacheError::IamAuth { .. } => {
                BackendError::Unavailable(e.to_string())
            }
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
    /// IAM authentication (`MANGA_REDIS_USER`), kept for error messages.
    iam: Option<IamCredentialsProvider>,
}

impl std::fmt::Debug for RedisCache {
    // The connections' Debug would print the URL, which may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("cluster", &matches!(self.conn, Connection::Cluster(_)))
            .field("prefix", &self.prefix)
            .field("ttl_secs", &self.ttl_secs)
            .field(
                "iam_user",
                &self.iam.as_ref().map(IamCredentialsProvider::user),
            )
            .finish_non_exhaustive()
    }
}

impl RedisCache {
    /// A single-shard group (or a local redis-server) at `url`, its primary endpoint.
    /// Must be called inside the tokio runtime (the manager spawns its reconnect task).
    pub fn new(url: &str, prefix: &str, ttl: Duration) -> Result<Self, RedisCacheError> {
        Self::open(url, prefix, ttl, false, None)
    }

    /// A cluster-mode-enabled group whose configuration endpoint is `url`
    /// ([`RedisCache::open`] with `cluster`).
    pub fn new_cluster(url: &str, prefix: &str, ttl: Duration) -> Result<Self, RedisCacheError> {
        Self::open(url, prefix, ttl, true, None)
    }

    /// The cache at `url`: the primary endpoint of a single-shard group, or with
    /// `cluster` the configuration endpoint of a cluster-mode-enabled one; with `iam`,
    /// every connection authenticates with an ElastiCache IAM token from it (the URL
    /// then carries no password: the provider's user and token replace it).
    ///
    /// Cluster mode, ElastiCache: "For Valkey or Redis OSS (cluster mode enabled)
    /// clusters, use the cluster's Configuration Endpoint for all operations that
    /// support cluster mode enabled commands. You must use a client that supports either
    /// Valkey Cluster, or Redis OSS Cluster" (Finding connection endpoints in
    /// ElastiCache, docs.aws.amazon.com/AmazonElastiCache/latest/dg/Endpoints.html). The
    /// cluster client learns the shards from that endpoint with `CLUSTER SLOTS`, and
    /// again after a `MOVED` reply or a lost node.
    ///
    /// Must be called inside the tokio runtime: the connections' drivers are spawned
    /// now and connect in the background, so this succeeds while the cache is down and
    /// commands fail (as `Unavailable`) until it is reachable.
    pub fn open(
        url: &str,
        prefix: &str,
        ttl: Duration,
        cluster: bool,
        iam: Option<IamCredentialsProvider>,
    ) -> Result<Self, RedisCacheError> {
        let conn = if cluster {
            // A `rediss://` URL makes the client use TLS for every node it discovers.
            let mut builder = ClusterClient::builder([url])
                .retries(RETRIES)
                .overall_response_timeout(Some(CLUSTER_OVERALL_TIMEOUT));
            if let Some(p) = &iam {
                // Each node connection subscribes on its own: its own fresh token.
                builder = builder.set_credentials_provider(p.clone());
            }
            let client = builder.build()?;
            // The per-connection timeouts are taken from this config (not the builder)
            // when the connection is made.
            let config = ClusterConfig::new()
                .set_connection_timeout(CONNECT_TIMEOUT)
                .set_response_timeout(RESPONSE_TIMEOUT);
            Connection::Cluster(client.get_pending_async_connection_with_config(config))
        } else {
            let client = redis::Client::open(url)?;
            let mut config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(RESPONSE_TIMEOUT))
                .set_number_of_retries(RETRIES as usize);
            if let Some(p) = &iam {
                // Asked again by every reconnect of the manager.
                config = config.set_credentials_provider(p.clone());
            }
            Connection::Single(ConnectionManager::new_lazy_with_config(client, config)?)
        };
        let mut cache = Self::with(conn, prefix, ttl);
        cache.iam = iam;
        Ok(cache)
    }

    /// A command's error, named as an IAM refusal when it is one.
    fn error(&self, e: redis::RedisError) -> RedisCacheError {
        match &self.iam {
            Some(p) if e.kind() == redis::ErrorKind::AuthenticationFailed => {
                RedisCacheError::IamAuth {
                    user: p.user().to_string(),
                    cache: p.cache().to_string(),
                    source: e,
                }
            }
            _ => RedisCacheError::Redis(e),
        }
    }

    fn with(conn: Connection, prefix: &str, ttl: Duration) -> Self {
        RedisCache {
            conn,
            prefix: prefix.to_string(),
            // `SET … EX 0` is an error in Redis.
            ttl_secs: ttl.as_secs().max(1),
            iam: None,
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
            .map_err(|e| self.error(e))?;
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
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// `PING`; the cluster client sends it to every primary, so a cluster is ready only
    /// when each shard answers (a lost shard would fail its share of the keys).
    async fn ready(&self) -> Result<(), BackendError> {
        let _: String = self
            .conn
            .query(&redis::cmd("PING"))
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }
}
