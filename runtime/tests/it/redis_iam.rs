//! `RedisCache` with ElastiCache IAM authentication (`MANGA_REDIS_USER`) against a local
//! redis-server. A local server cannot verify SigV4, so the token source is a test
//! [`IamTokens`] that, right before it hands out token `n`, makes `token-n` the ACL
//! user's only password (`ACL SETUSER … resetpass >token-n`): a command succeeds only if
//! its connection authenticated as that user with the token generated for it. The
//! token's SigV4 shape is unit-tested in `src/backends/aws/elasticache_iam.rs`.

use crate::emulators;
use crate::redis_cluster::{distinct_free_ports, node_conn, Cluster};
use async_trait::async_trait;
use manga_runtime::backends::aws::elasticache_iam::{
    IamAuthError, IamCredentialsProvider, IamTokens,
};
use manga_runtime::backends::aws::redis_cache::RedisCache;
use manga_runtime::backends::{BackendError, CachedAnswer, ResponseCache};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const USER: &str = "manga-runtime-iam";
const CACHE: &str = "manga-cache-01";

async fn admin(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("admin connection")
}

/// Tokens the local server accepts: each new token becomes the user's only password.
#[derive(Debug)]
struct AclTokens {
    admin: redis::aio::MultiplexedConnection,
    issued: AtomicUsize,
    /// Hand out tokens without telling the server (a refused token).
    wrong: bool,
}

#[async_trait]
impl IamTokens for AclTokens {
    fn user(&self) -> &str {
        USER
    }

    fn cache(&self) -> &str {
        CACHE
    }

    async fn token(&self) -> Result<String, IamAuthError> {
        let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let token = format!("token-{n}");
        if !self.wrong {
            let () = redis::cmd("ACL")
                .arg(&["SETUSER", USER, "on", "resetpass"])
                .arg(format!(">{token}"))
                .arg(&["~*", "+@all"])
                .query_async(&mut self.admin.clone())
                .await
                .map_err(|e| IamAuthError::Credentials(e.to_string()))?;
        }
        Ok(token)
    }
}

fn answer() -> CachedAnswer {
    CachedAnswer {
        text: "Hi!".into(),
        sources: Vec::new(),
    }
}

/// `CLIENT LIST` lines of connections authenticated as [`USER`].
async fn user_connections(admin: &mut redis::aio::MultiplexedConnection) -> Vec<String> {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(admin)
        .await
        .expect("CLIENT LIST");
    list.lines()
        .filter(|l| l.contains(&format!(" user={USER} ")))
        .map(str::to_string)
        .collect()
}

/// Retries `get` until it succeeds (the manager reconnects after a failure).
async fn get_until_ok(cache: &RedisCache) -> Option<CachedAnswer> {
    for _ in 0..50 {
        if let Ok(v) = cache.get("k").await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the cache did not recover after the connection was killed");
}

#[tokio::test]
async fn iam_tokens_authenticate_every_connection_and_a_refused_one_is_named() {
    let server = emulators::redis();
    let url = format!("redis://127.0.0.1:{}", server.port);
    let mut admin_conn = admin(&url).await;
    // The default user keeps working for the admin connection; the IAM user exists with
    // a password nobody knows until the first token.
    let () = redis::cmd("ACL")
        .arg(&["SETUSER", USER, "on", ">not-yet", "~*", "+@all"])
        .query_async(&mut admin_conn)
        .await
        .expect("ACL SETUSER");
    let tokens = Arc::new(AclTokens {
        admin: admin_conn.clone(),
        issued: AtomicUsize::new(0),
        wrong: false,
    });
    let cache = RedisCache::open(
        &url,
        "iam:",
        Duration::from_secs(60),
        false,
        Some(IamCredentialsProvider::new(tokens.clone())),
    )
    .expect("cache");

    // (a) AUTH <user> <token>: commands go through as the IAM user.
    cache.put("k", answer()).await.expect("put as the IAM user");
    assert_eq!(
        cache.get("k").await.expect("get").map(|a| a.text),
        Some("Hi!".into())
    );
    cache.ready().await.expect("PING");
    let conns = user_connections(&mut admin_conn).await;
    assert_eq!(
        conns.len(),
        1,
        "one multiplexed connection as {USER}: {conns:?}"
    );
    let issued = tokens.issued.load(Ordering::SeqCst);
    assert!(issued >= 1, "a token was made for the connection");

    // (b) ElastiCache closes connections (12 h, failover); here CLIENT KILL. The
    // reconnect must present a token made for it: the old ones are no longer valid.
    let killed: i64 = redis::cmd("CLIENT")
        .arg(&["KILL", "USER", USER])
        .query_async(&mut admin_conn)
        .await
        .expect("CLIENT KILL");
    assert_eq!(killed, 1);
    assert_eq!(
        get_until_ok(&cache).await.map(|a| a.text),
        Some("Hi!".into())
    );
    let reissued = tokens.issued.load(Ordering::SeqCst);
    assert!(
        reissued > issued,
        "the reconnect signed a new token ({issued} before, {reissued} after)"
    );
    let conns = user_connections(&mut admin_conn).await;
    assert_eq!(conns.len(), 1, "reconnected as {USER}: {conns:?}");
    // The first token was replaced: a client presenting it now is refused.
    let stale = redis::Client::open(format!("redis://{USER}:token-1@127.0.0.1:{}", server.port))
        .expect("url")
        .get_multiplexed_async_connection()
        .await;
    assert!(stale.is_err(), "token-1 no longer authenticates");

    // (c) A token the server refuses: a clear error naming the user and the cache.
    let wrong = RedisCache::open(
        &url,
        "iam:",
        Duration::from_secs(60),
        false,
        Some(IamCredentialsProvider::new(Arc::new(AclTokens {
            admin: admin_conn.clone(),
            issued: AtomicUsize::new(0),
            wrong: true,
        }))),
    )
    .expect("cache");
    let err = wrong.get("k").await.expect_err("refused");
    let BackendError::Unavailable(message) = &err else {
        panic!("unexpected error {err:?}");
    };
    assert!(
        message.contains(&format!(
            "Redis refused IAM authentication of user {USER} for cache {CACHE}"
        )),
        "{message}"
    );
    assert!(message.contains("elasticache:Connect"), "{message}");
    // The server logged the refused AUTH for that user.
    let log: Vec<redis::Value> = redis::cmd("ACL")
        .arg(&["LOG", "1"])
        .query_async(&mut admin_conn)
        .await
        .expect("ACL LOG");
    let log = format!("{log:?}");
    assert!(log.contains("auth") && log.contains(USER), "{log}");
    // The good cache is unaffected.
    cache.ready().await.expect("PING");
}

/// Tokens every node of a cluster accepts (added to the user's passwords on each node,
/// since the client authenticates to the nodes concurrently).
#[derive(Debug)]
struct ClusterAclTokens {
    admins: Vec<redis::aio::MultiplexedConnection>,
    issued: AtomicUsize,
}

#[async_trait]
impl IamTokens for ClusterAclTokens {
    fn user(&self) -> &str {
        USER
    }

    fn cache(&self) -> &str {
        CACHE
    }

    async fn token(&self) -> Result<String, IamAuthError> {
        let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let token = format!("token-{n}");
        for admin in &self.admins {
            let () = redis::cmd("ACL")
                .arg(&["SETUSER", USER, "on"])
                .arg(format!(">{token}"))
                .arg(&["~*", "+@all"])
                .query_async(&mut admin.clone())
                .await
                .map_err(|e| IamAuthError::Credentials(e.to_string()))?;
        }
        Ok(token)
    }
}

#[tokio::test]
async fn every_cluster_node_connection_authenticates_with_its_own_token() {
    let ports = distinct_free_ports(3);
    let cluster = Cluster::start(&ports).await;
    let mut admins = Vec::new();
    for node in &cluster.nodes {
        let mut admin = node_conn(node.port).await;
        let () = redis::cmd("ACL")
            .arg(&["SETUSER", USER, "on", ">not-yet", "~*", "+@all"])
            .query_async(&mut admin)
            .await
            .expect("ACL SETUSER");
        admins.push(admin);
    }
    let tokens = Arc::new(ClusterAclTokens {
        admins: admins.clone(),
        issued: AtomicUsize::new(0),
    });
    let url = format!("redis://127.0.0.1:{}", ports[0]);
    let cache = RedisCache::open(
        &url,
        "iam:",
        Duration::from_secs(60),
        true,
        Some(IamCredentialsProvider::new(tokens.clone())),
    )
    .expect("cluster cache");
    for i in 0..50 {
        let key = format!("k{i}");
        cache.put(&key, answer()).await.expect("put");
        assert!(cache.get(&key).await.expect("get").is_some());
    }
    cache.ready().await.expect("PING every primary");
    for (node, admin) in cluster.nodes.iter().zip(admins.iter_mut()) {
        let conns = user_connections(admin).await;
        assert!(
            !conns.is_empty(),
            "node {} has a connection authenticated as {USER}",
            node.port
        );
    }
    let issued = tokens.issued.load(Ordering::SeqCst);
    assert!(
        issued >= cluster.nodes.len(),
        "a token per node connection at least ({issued})"
    );
}

/// `MANGA_BACKEND=aws` with `MANGA_REDIS_USER`: the app builds the IAM-authenticated
/// cache from the configuration (every other backend injected, so only the cache is
/// the AWS one). With a token source the server accepts, greetings are cached as the
/// IAM user; with the default SigV4 signer (dummy credentials, which a local
/// redis-server cannot verify) the server sees `AUTH` for that user and refuses it, and
/// the cache degrades instead of failing the answer.
#[tokio::test]
async fn the_aws_family_wires_manga_redis_user_into_the_cache() {
    use manga_runtime::backends::bm25::Bm25Retriever;
    use manga_runtime::backends::extractive::ExtractiveResponder;
    use manga_runtime::backends::memory_store::LruSessionStore;
    let server = emulators::redis();
    let url = format!("redis://127.0.0.1:{}", server.port);
    let mut admin_conn = admin(&url).await;
    let args = [
        "--backend",
        "aws",
        "--dynamodb-table",
        "unused",
        "--redis-url",
        &url,
        "--redis-user",
        USER,
        "--redis-replication-group",
        "Manga-Cache-01",
        "--opensearch-endpoint",
        "http://127.0.0.1:9",
        "--sagemaker-endpoint",
        "unused",
        "--llm",
        "extractive",
    ];
    let app = |tokens: Option<Arc<dyn IamTokens>>| {
        let data = crate::support::data();
        let mut b = crate::support::builder(&args)
            .aws_config(manga_runtime::backends::aws::static_config(
                "http://127.0.0.1:9",
                emulators::REGION,
            ))
            .sessions(Arc::new(LruSessionStore::new(
                100,
                Duration::from_secs(60),
                12,
            )))
            .retriever(Arc::new(
                Bm25Retriever::build(&data.catalog, &data.faq).expect("index"),
            ))
            .llm(Arc::new(ExtractiveResponder::new(Duration::ZERO)));
        if let Some(t) = tokens {
            b = b.redis_tokens(t);
        }
        b
    };

    let tokens = Arc::new(AclTokens {
        admin: admin_conn.clone(),
        issued: AtomicUsize::new(0),
        wrong: false,
    });
    let s = crate::support::TestServer::start(app(Some(tokens.clone()))).await;
    let mut c = s.connect().await;
    assert_eq!(c.ask("w", "hello").await.last()["cache_hit"], false);
    let again = c.ask("w", "hello").await;
    assert_eq!(again.last()["cache_hit"], true, "{:?}", again.last());
    assert!(tokens.issued.load(Ordering::SeqCst) >= 1);
    assert!(!user_connections(&mut admin_conn).await.is_empty());

    // The default signer: AUTH as the user with a SigV4 token the server refuses.
    let s = crate::support::TestServer::start(app(None)).await;
    let mut c = s.connect().await;
    let a = c.ask("x", "hello").await;
    assert_eq!(
        a.last()["type"],
        "done",
        "the answer does not need the cache"
    );
    assert!(
        a.last()["degraded"]
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x == "cache_skipped")),
        "{:?}",
        a.last()
    );
    let log: Vec<redis::Value> = redis::cmd("ACL")
        .arg(&["LOG", "1"])
        .query_async(&mut admin_conn)
        .await
        .expect("ACL LOG");
    let log = format!("{log:?}");
    assert!(log.contains("auth") && log.contains(USER), "{log}");
}
