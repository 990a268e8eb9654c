//! `RedisCache` in cluster mode (`MANGA_REDIS_CLUSTER=true`) against a real Redis
//! Cluster: three `redis-server` masters on free 127.0.0.1 ports, slots split between
//! them, as an ElastiCache cluster-mode-enabled group with three shards and no replicas.
//! Also shows why the mode exists (the single-node client gets `MOVED` there) and that
//! the task definition turns it on exactly when the cache stack renders cluster mode.

use crate::emulators::{self, Emulator};
use manga_runtime::backends::aws::redis_cache::RedisCache;
use manga_runtime::backends::{BackendError, CachedAnswer, ResponseCache};
use manga_runtime::domain::SourceRef;
use stacks::render::{render, Format};
use stacks::stacks::service::CONTAINER_NAME;
use stacks::stacks::{Inputs, StackId};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Redis Cluster's hash slot count.
const SLOTS: u16 = 16384;
const PREFIX: &str = "test:answer:";
const TTL: Duration = Duration::from_secs(600);

/// Cluster nodes on `ports`, stopped and their state files removed on drop.
pub(crate) struct Cluster {
    pub(crate) nodes: Vec<Emulator>,
    dir: PathBuf,
}

impl Cluster {
    /// Starts one node per port and forms the cluster: node `i` owns the `i`-th equal
    /// range of slots, all meet through the first, and every node reports
    /// `cluster_state:ok` before this returns.
    pub(crate) async fn start(ports: &[u16]) -> Cluster {
        let dir = std::env::temp_dir().join(format!(
            "manga-runtime-redis-cluster-{}-{}",
            std::process::id(),
            ports[0]
        ));
        std::fs::create_dir_all(&dir).expect("cluster dir");
        let nodes = ports
            .iter()
            .map(|&p| emulators::redis_cluster_node(p, &dir))
            .collect();
        let cluster = Cluster { nodes, dir };

        let n = cluster.nodes.len() as u16;
        let per_node = SLOTS.div_ceil(n);
        for (i, node) in cluster.nodes.iter().enumerate() {
            let first = i as u16 * per_node;
            let last = (first + per_node).min(SLOTS) - 1;
            let () = redis::cmd("CLUSTER")
                .arg("ADDSLOTS")
                .arg((first..=last).collect::<Vec<u16>>())
                .query_async(&mut node_conn(node.port).await)
                .await
                .expect("CLUSTER ADDSLOTS");
        }
        let mut first = node_conn(cluster.nodes[0].port).await;
        for node in &cluster.nodes[1..] {
            let () = redis::cmd("CLUSTER")
                .arg("MEET")
                .arg("127.0.0.1")
                .arg(node.port)
                .query_async(&mut first)
                .await
                .expect("CLUSTER MEET");
        }

        let deadline = Instant::now() + Duration::from_secs(30);
        for node in &cluster.nodes {
            let mut conn = node_conn(node.port).await;
            loop {
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query_async(&mut conn)
                    .await
                    .expect("CLUSTER INFO");
                if info.contains("cluster_state:ok")
                    && info.contains(&format!("cluster_known_nodes:{n}\r"))
                {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "node {} not ok within 30 s:\n{info}\n{}",
                    node.port,
                    node.log_text()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        cluster
    }

    /// Keys held by each node, in port order.
    async fn dbsizes(&self) -> Vec<usize> {
        let mut sizes = Vec::new();
        for node in &self.nodes {
            let n: usize = redis::cmd("DBSIZE")
                .query_async(&mut node_conn(node.port).await)
                .await
                .expect("DBSIZE");
            sizes.push(n);
        }
        sizes
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.nodes.clear(); // kills the servers before their files go
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A plain connection to one node (no redirects followed).
pub(crate) async fn node_conn(port: u16) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to node")
}

pub(crate) fn distinct_free_ports(n: usize) -> Vec<u16> {
    let mut ports: Vec<u16> = Vec::new();
    while ports.len() < n {
        let p = emulators::free_port();
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    ports
}

fn answer(key: &str) -> CachedAnswer {
    CachedAnswer {
        text: format!("The answer to {key}."),
        sources: vec![SourceRef {
            id: "faq:hours".into(),
            title: "Hours".into(),
        }],
    }
}

#[tokio::test]
async fn redis_cache_in_cluster_mode_against_a_redis_cluster() {
    let ports = distinct_free_ports(3);
    // The configuration endpoint stands for the whole cluster; here, the first node.
    let url = format!("redis://127.0.0.1:{}", ports[0]);

    // Made while no node listens (the runtime starts while Redis is down): calls fail
    // as Unavailable, within the client's timeouts.
    let cache = RedisCache::new_cluster(&url, PREFIX, TTL).expect("cluster client");
    let r = tokio::time::timeout(Duration::from_secs(10), cache.ready()).await;
    assert!(matches!(r, Ok(Err(BackendError::Unavailable(_)))), "{r:?}");

    let cluster = Cluster::start(&ports).await;
    // The same client reconnects once the cluster is up.
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Err(e) = cache.ready().await {
        assert!(Instant::now() < deadline, "not ready within 20 s: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let keys: Vec<String> = (0..200).map(|i| format!("v1:faq:question {i}")).collect();
    for k in &keys {
        assert_eq!(cache.get(k).await.expect("get"), None, "{k}");
        cache.put(k, answer(k)).await.expect("put");
    }
    for k in &keys {
        assert_eq!(cache.get(k).await.expect("get"), Some(answer(k)), "{k}");
    }
    // The keys are spread over the shards, each on the node owning its slot.
    let sizes = cluster.dbsizes().await;
    assert_eq!(sizes.iter().sum::<usize>(), keys.len(), "{sizes:?}");
    assert!(
        sizes.iter().filter(|&&n| n > 0).count() >= 2,
        "keys on one node only: {sizes:?}"
    );

    // Stored under the prefix with the TTL, read through a plain cluster connection.
    let mut raw = redis::cluster::ClusterClient::new(vec![url.as_str()])
        .expect("raw cluster client")
        .get_async_connection()
        .await
        .expect("raw cluster connection");
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("{PREFIX}{}", keys[0]))
        .query_async(&mut raw)
        .await
        .expect("TTL");
    assert!((590..=600).contains(&ttl), "ttl {ttl}");
    let () = redis::cmd("SET")
        .arg(format!("{PREFIX}bad"))
        .arg("not json")
        .query_async(&mut raw)
        .await
        .expect("SET");
    let bad = cache.get("bad").await;
    assert!(matches!(bad, Err(BackendError::Invalid(_))), "{bad:?}");

    // The single-node client against the cluster: only the first node's own keys are
    // answered, every other key is MOVED, so the cluster client is what makes it work.
    let single = RedisCache::new(&url, PREFIX, TTL).expect("single-node client");
    let (mut served, mut moved) = (0, 0);
    for k in &keys {
        match single.get(k).await {
            Ok(Some(a)) => {
                assert_eq!(a, answer(k));
                served += 1;
            }
            Err(BackendError::Unavailable(m)) if m.to_ascii_uppercase().contains("MOVED") => {
                moved += 1
            }
            other => panic!("{k}: {other:?}"),
        }
    }
    assert_eq!(served, sizes[0], "served by the first node");
    assert_eq!(moved, keys.len() - sizes[0]);
    assert!(moved > 0, "no key moved: {sizes:?}");

    drop(cluster); // cluster gone: calls fail (the pipeline then skips the cache)
    let r = tokio::time::timeout(Duration::from_secs(10), cache.get(&keys[0])).await;
    assert!(matches!(r, Ok(Err(BackendError::Unavailable(_)))), "{r:?}");
}

/// The rendered cache and service stacks of prod with `shards` shards: the cache's
/// parameter group and the runtime container's `MANGA_REDIS_CLUSTER`.
fn rendered_with_shards(shards: u32) -> (String, String) {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let env = stacks::env::load(&repo.join("environments/prod.yaml")).expect("environment");
    let mut plan = sizing::size(&env.sizing_input()).expect("sized");
    plan.redis.shards = shards;
    let rendered = render(&Inputs::new(&env, &plan), Format::Json).expect("rendered");
    let template = |id: StackId| {
        rendered
            .stacks
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.template.to_value())
            .expect("stack")
    };
    let cache = template(StackId::Cache);
    let group = cache["Resources"]["Redis"]["Properties"]["CacheParameterGroupName"]
        .as_str()
        .expect("parameter group")
        .to_owned();
    let service = template(StackId::Service);
    let flag = service["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"]
        .as_array()
        .and_then(|d| d.iter().find(|c| c["Name"] == CONTAINER_NAME))
        .and_then(|c| c["Environment"].as_array())
        .and_then(|vars| vars.iter().find(|v| v["Name"] == "MANGA_REDIS_CLUSTER"))
        .and_then(|v| v["Value"].as_str())
        .map(str::to_owned)
        .expect("MANGA_REDIS_CLUSTER in the task definition");
    (group, flag)
}

#[test]
fn the_task_definition_sets_cluster_mode_as_the_cache_stack_renders_it() {
    for (shards, cluster) in [(1, false), (3, true)] {
        let (group, flag) = rendered_with_shards(shards);
        assert_eq!(
            group.ends_with(".cluster.on"),
            cluster,
            "{shards} shards: {group}"
        );
        // The flag and MANGA_REDIS_CLUSTER share one parser (`taskdef` checks the name).
        let config = manga_runtime::config::Config::from_args(&["--redis-cluster", &flag])
            .expect("the runtime accepts the value");
        assert_eq!(config.redis_cluster, cluster, "{shards} shards: {flag}");
    }
}
