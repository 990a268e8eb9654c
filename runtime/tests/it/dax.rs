//! `DaxSessionStore` against the DAX test server of mangactl-dax (which speaks the
//! DAX protocol and keeps items in moto's DynamoDB): turns written and read through
//! DAX (on the primary), the same turns seen by the DynamoDB store (the head item
//! skipped), and DynamoDB directly when DAX goes down, counted as fallbacks and
//! reported per call ([`Served::Fallback`], `memory_fallback` in `done.degraded`).

use crate::aws::{create_table, turn, TABLE};
use crate::emulators::{self, REGION};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use manga_runtime::backends::aws::dax::DaxSessionStore;
use manga_runtime::backends::aws::dynamodb::DynamoSessionStore;
use manga_runtime::backends::{Served, SessionStore};
use manga_runtime::metrics::Metrics;
use mangactl_dax::codec::method;
use mangactl_dax::testserver::TestServer;
use mangactl_dax::DaxConfig;
use sizing::LatencyBudgets;
use std::sync::atomic::Ordering;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dax_session_store_reads_its_writes_and_falls_back() {
    let moto = emulators::moto();
    let sdk = moto.sdk_config();
    let ddb = create_table(&sdk).await;
    let server = TestServer::start(ddb, 2, None)
        .await
        .expect("DAX test server");
    let creds = SharedCredentialsProvider::new(Credentials::new(
        "testing", "testing", None, None, "static",
    ));
    let config = DaxConfig::new(&format!("dax://127.0.0.1:{}", server.port()), REGION, creds);
    let ttl = Duration::from_secs(1800);
    let store = DaxSessionStore::with_config(&sdk, config, TABLE, ttl);
    for _ in 0..200 {
        if store.connected() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(store.connected(), "the store reached the test cluster");
    store.ready().await.expect("ready through DAX");

    assert!(store.load("u/s1", 6).await.expect("load").is_empty());
    for n in 0..4 {
        store.append("u/s1", turn(n)).await.expect("append");
        // Read-your-writes: the turn just written is in the next load.
        let got = store.load("u/s1", 2).await.expect("load");
        assert_eq!(
            got.last(),
            Some(&turn(n)),
            "turn {n} seen right after its write"
        );
    }
    assert_eq!(
        store.load("u/s1", 3).await.expect("load"),
        vec![turn(1), turn(2), turn(3)]
    );
    // A retried save of the same message stores nothing twice.
    assert_eq!(
        store
            .append_served("u/s1", turn(3))
            .await
            .expect("retried append"),
        Served::Primary
    );
    let (all, served) = store.load_served("u/s1", 10).await.expect("load");
    assert_eq!((all.len(), served), (4, Served::Primary));
    let fallbacks = store.fallbacks();
    assert_eq!(fallbacks.load.load(Ordering::Relaxed), 0);
    assert_eq!(fallbacks.append.load(Ordering::Relaxed), 0);

    // Everything went through DAX, session reads on the primary only.
    let got = server.captured();
    let primary = server.addrs[0].port();
    assert!(got.iter().any(|m| m.method == method::PUT_ITEM));
    let reads: Vec<_> = got
        .iter()
        .filter(|m| m.method == method::GET_ITEM)
        .collect();
    assert!(reads.len() >= 8, "loads are GetItems of the head and turns");
    assert!(
        reads.iter().all(|m| m.node == primary),
        "session reads go to the primary"
    );

    // The DynamoDB store reads the same table and skips the head item.
    let direct = DynamoSessionStore::new(&sdk, TABLE, ttl);
    assert_eq!(
        direct.load("u/s1", 3).await.expect("load"),
        vec![turn(1), turn(2), turn(3)]
    );

    // A session written before the DAX store (no head): its first head lists the
    // turns already there.
    direct
        .append("u/old", turn(10))
        .await
        .expect("direct append");
    assert_eq!(store.load("u/old", 5).await.expect("load"), vec![turn(10)]);
    store.append("u/old", turn(11)).await.expect("append");
    assert_eq!(
        store.load("u/old", 5).await.expect("load"),
        vec![turn(10), turn(11)]
    );

    // DAX goes down: calls go to DynamoDB directly, counted.
    server.set_down(0, true);
    server.set_down(1, true);
    assert_eq!(
        store
            .append_served("u/s1", turn(4))
            .await
            .expect("append while DAX is down"),
        Served::Fallback
    );
    assert_eq!(
        store
            .load_served("u/s1", 2)
            .await
            .expect("load while DAX is down"),
        (vec![turn(3), turn(4)], Served::Fallback)
    );
    assert_eq!(fallbacks.append.load(Ordering::Relaxed), 1);
    assert_eq!(fallbacks.load.load(Ordering::Relaxed), 1);
    assert_eq!(direct.load("u/s1", 1).await.expect("load"), vec![turn(4)]);

    // Visible on /metrics.
    let metrics = Metrics::new(LatencyBudgets::default()).with_dax_fallbacks(fallbacks);
    let text = metrics.render();
    assert!(
        text.contains("manga_dax_fallbacks_total{operation=\"load\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("manga_dax_fallbacks_total{operation=\"append\"} 1"),
        "{text}"
    );
}
