//! The cluster behaviour of the client against a three-node DAX test server over
//! moto: discovery, routing (writes to the primary, reads spread over the nodes),
//! failover away from nodes that went down, membership refresh; and TLS
//! (`daxs://`) with a test certificate authority given to both the official client
//! and ours, which must then send the same data-plane bytes as over TCP.

mod support;

use mangactl_dax::codec::method;
use mangactl_dax::testserver::{TestServer, TlsIdentity};
use mangactl_dax::DaxConfig;
use std::collections::BTreeSet;
use std::time::Duration;
use support::*;

fn put(i: usize) -> serde_json::Value {
    serde_json::json!({"op": "PutItem", "params": {"TableName": "sessions",
        "Item": {"session_id": {"S": "s"}, "turn": {"N": i.to_string()}, "user": {"S": "hi"}}}})
}

fn get(i: usize) -> serde_json::Value {
    serde_json::json!({"op": "GetItem", "params": {"TableName": "sessions",
        "Key": {"session_id": {"S": "s"}, "turn": {"N": i.to_string()}}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_fails_over_and_follows_membership() {
    let moto = moto();
    let ddb = ddb(moto.port);
    reset_tables(&ddb).await;
    let server = server(ddb, 3).await;
    let mut config = DaxConfig::new(
        &format!("dax://127.0.0.1:{}", server.port()),
        REGION,
        static_credentials(),
    );
    config.refresh_interval = Duration::from_millis(100);
    let client = mangactl_dax::DaxClient::connect(config)
        .await
        .expect("connect");
    let nodes = client.nodes();
    assert_eq!(nodes.len(), 3);
    assert_eq!(nodes.iter().filter(|(_, leader)| *leader).count(), 1);
    let leader = server.addrs[0].port();

    for i in 0..5 {
        assert!(run_op(&client, &put(i)).await.get("ok").is_some());
    }
    for _ in 0..30 {
        assert_eq!(
            run_op(&client, &get(1)).await["ok"]["Item"]["user"]["S"],
            "hi"
        );
    }
    let got = server.captured();
    let put_nodes: BTreeSet<u16> = got
        .iter()
        .filter(|m| m.method == method::PUT_ITEM)
        .map(|m| m.node)
        .collect();
    let get_nodes: BTreeSet<u16> = got
        .iter()
        .filter(|m| m.method == method::GET_ITEM)
        .map(|m| m.node)
        .collect();
    assert_eq!(
        put_nodes,
        BTreeSet::from([leader]),
        "writes go to the primary"
    );
    assert!(
        get_nodes.len() >= 2,
        "reads spread over the nodes: {get_nodes:?}"
    );

    // Both replicas go down: every read still succeeds (retried on another node),
    // and the failed nodes are avoided afterwards.
    server.set_down(1, true);
    server.set_down(2, true);
    server.clear();
    for _ in 0..10 {
        assert_eq!(
            run_op(&client, &get(2)).await["ok"]["Item"]["user"]["S"],
            "hi"
        );
    }
    let after: Vec<u16> = server
        .captured()
        .iter()
        .filter(|m| m.method == method::GET_ITEM)
        .map(|m| m.node)
        .collect();
    assert!(
        after.iter().all(|n| *n == leader),
        "only the primary answered: {after:?}"
    );

    // The cluster drops the replicas from its membership; the client follows.
    server.set_listed(&[0]);
    let mut waited = 0;
    while client.nodes().len() != 1 {
        assert!(
            waited < 100,
            "membership not refreshed: {:?}",
            client.nodes()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    assert_eq!(client.nodes()[0].0.port(), leader);
}

fn test_ca() -> (String, TlsIdentity) {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "mangactl-dax test CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().expect("server key");
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("server params");
    let cert = params.signed_by(&key, &issuer).expect("server certificate");
    (
        ca_cert.pem(),
        TlsIdentity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daxs_with_a_test_ca_for_both_clients() {
    let moto = moto();
    let ddb = ddb(moto.port);
    reset_tables(&ddb).await;
    let (ca_pem, identity) = test_ca();
    let dir = std::env::temp_dir().join(format!("mangactl-dax-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &ca_pem).expect("write CA");
    let script: Vec<serde_json::Value> = vec![put(1), get(1), get(2)];
    let script_file = dir.join("script.json");
    std::fs::write(&script_file, serde_json::to_string(&script).expect("json"))
        .expect("write script");

    let server = TestServer::start(ddb.clone(), 1, Some(identity))
        .await
        .expect("TLS server");
    let url = format!("daxs://127.0.0.1:{}", server.port());

    let (u, s, c) = (url.clone(), script_file.clone(), ca_file.clone());
    let python = tokio::task::spawn_blocking(move || run_python(&u, &s, Some(&c)))
        .await
        .expect("python run");
    let py = server.captured();
    server.clear();
    reset_tables(&ddb).await;

    // Without the CA the connection is refused (the certificate is not trusted).
    let untrusted =
        mangactl_dax::DaxClient::connect(DaxConfig::new(&url, REGION, static_credentials())).await;
    assert!(untrusted.is_err_and(|e| e.to_string().contains("TLS")));
    server.clear();

    let client = dax_client(&url, Some(ca_pem.into_bytes())).await;
    let mut rust = Vec::new();
    for op in &script {
        rust.push(run_op(&client, op).await);
    }
    let rs = server.captured();
    let _ = std::fs::remove_dir_all(&dir);

    assert_eq!(python, rust);
    assert_eq!(rust[1]["ok"]["Item"]["user"]["S"], "hi");
    let data = |c: &[mangactl_dax::testserver::Captured]| {
        c.iter()
            .filter(|m| ![0, method::AUTHORIZE_CONNECTION, method::ENDPOINTS].contains(&m.method))
            .map(|m| hex::encode(&m.bytes))
            .collect::<Vec<_>>()
    };
    assert_eq!(data(&py), data(&rs));
    assert!(!data(&py).is_empty());
    assert_eq!(server.auth_failures(), 0);
}

/// Batches route like single items (writes to the primary, reads to any node), and
/// an unprocessed put comes back whole, key included (as the official Go client
/// returns it; the Python client drops the key, so this is not in the shared
/// script). A batch of nothing but throttled writes fails with throughput exceeded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_route_and_return_unprocessed_writes_whole() {
    let moto = moto();
    let ddb = ddb(moto.port);
    reset_tables(&ddb).await;
    let server = server(ddb, 3).await;
    let client = dax_client(&format!("dax://127.0.0.1:{}", server.port()), None).await;
    let leader = server.addrs[0].port();
    let write = serde_json::json!({"op": "BatchWriteItem", "params": {"RequestItems": {
        "sessions": [{"PutRequest": {"Item": {"session_id": {"S": "b"}, "turn": {"N": "1"}, "user": {"S": "hi"}}}}],
        "throttled": [{"PutRequest": {"Item": {"session_id": {"S": "t"}, "turn": {"N": "2"}, "user": {"S": "later"}}}}]}}});
    let out = run_op(&client, &write).await;
    assert_eq!(
        out["ok"]["UnprocessedItems"],
        serde_json::json!({"throttled": [{"PutRequest": {"Item": {
            "session_id": {"S": "t"}, "turn": {"N": "2"}, "user": {"S": "later"}}}}]}),
        "{out}"
    );
    let read = serde_json::json!({"op": "BatchGetItem", "params": {"RequestItems": {
        "sessions": {"Keys": [{"session_id": {"S": "b"}, "turn": {"N": "1"}}]}}}});
    for _ in 0..20 {
        let out = run_op(&client, &read).await;
        assert_eq!(
            out["ok"]["Responses"]["sessions"][0]["user"]["S"], "hi",
            "{out}"
        );
    }
    let got = server.captured();
    let nodes = |m: i64| -> BTreeSet<u16> {
        got.iter()
            .filter(|c| c.method == m)
            .map(|c| c.node)
            .collect()
    };
    assert_eq!(nodes(method::BATCH_WRITE_ITEM), BTreeSet::from([leader]));
    assert!(nodes(method::BATCH_GET_ITEM).len() >= 2, "reads spread");

    let only_throttled = serde_json::json!({"op": "BatchWriteItem", "params": {"RequestItems": {
        "throttled": [{"DeleteRequest": {"Key": {"session_id": {"S": "t"}, "turn": {"N": "2"}}}}]}}});
    assert_eq!(
        run_op(&client, &only_throttled).await["error"],
        "ProvisionedThroughputExceededException"
    );
}
