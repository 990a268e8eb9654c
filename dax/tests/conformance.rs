//! Conformance with the official DAX client (Python `amazon-dax-client`, pinned in
//! scripts/install-test-tools): the same operation script
//! (tests/conformance/script.json) runs through the official client
//! (tests/conformance/driver.py) and through this crate against the DAX test
//! server over moto's DynamoDB, tables recreated between the runs. Asserted:
//!
//! - the same results, operation by operation (items, counts, keys, error codes:
//!   conditional check failed, throttling, unknown table, malformed expression);
//! - the same bytes for every data-plane message, in the same order (key schema and
//!   attribute-list definitions, GetItem, PutItem, DeleteItem, Query, UpdateItem,
//!   BatchGetItem, BatchWriteItem, retries included) — no field of these may differ;
//! - the handshake and the connection authorisation equal in form, differing only
//!   where they must: the session id (random per connection), the user agent (each
//!   client names itself), the signature and the string to sign (they carry the
//!   signing time); the server verifies both clients' signatures.

mod support;

use mangactl_dax::cbor::{Decoder, Value};
use mangactl_dax::codec::method;
use mangactl_dax::testserver::Captured;
use std::collections::BTreeSet;
use support::*;

const DATA_METHODS: [i64; 10] = [
    method::DEFINE_KEY_SCHEMA,
    method::DEFINE_ATTRIBUTE_LIST_ID,
    method::DEFINE_ATTRIBUTE_LIST,
    method::GET_ITEM,
    method::PUT_ITEM,
    method::DELETE_ITEM,
    method::QUERY,
    method::UPDATE_ITEM,
    method::BATCH_GET_ITEM,
    method::BATCH_WRITE_ITEM,
];

fn name(m: i64) -> &'static str {
    match m {
        method::DEFINE_KEY_SCHEMA => "defineKeySchema",
        method::DEFINE_ATTRIBUTE_LIST_ID => "defineAttributeListId",
        method::DEFINE_ATTRIBUTE_LIST => "defineAttributeList",
        method::GET_ITEM => "GetItem",
        method::PUT_ITEM => "PutItem",
        method::DELETE_ITEM => "DeleteItem",
        method::QUERY => "Query",
        method::UPDATE_ITEM => "UpdateItem",
        method::BATCH_GET_ITEM => "BatchGetItem",
        method::BATCH_WRITE_ITEM => "BatchWriteItem",
        method::AUTHORIZE_CONNECTION => "authorizeConnection",
        method::ENDPOINTS => "endpoints",
        0 => "handshake",
        _ => "?",
    }
}

fn data(c: &[Captured]) -> Vec<&Captured> {
    c.iter()
        .filter(|m| DATA_METHODS.contains(&m.method))
        .collect()
}

/// The handshake's items with the fields that must differ blanked.
fn handshake_shape(bytes: &[u8]) -> Vec<Value> {
    let mut d = Decoder::new(bytes);
    assert_eq!(d.raw(8).expect("magic"), b"gJ7yne5G");
    let mut items: Vec<Value> = (0..4).map(|_| d.value().expect("handshake item")).collect();
    assert!(d.at_end(), "nothing after the handshake");
    assert!(
        matches!(items[1], Value::Bytes(ref b) if !b.is_empty() && b.len() <= 16),
        "session id: {:?}",
        items[1]
    );
    items[1] = Value::Bytes(Vec::new());
    match &mut items[2] {
        Value::Map(m) if m.len() == 1 && m[0].0 == Value::Text("UserAgent".into()) => {
            m[0].1 = Value::Text(String::new())
        }
        other => panic!("handshake properties: {other:?}"),
    }
    items
}

/// The authorisation's items with the fields that must differ blanked.
fn auth_shape(bytes: &[u8]) -> Vec<Value> {
    let mut d = Decoder::new(bytes);
    let mut items: Vec<Value> = (0..7).map(|_| d.value().expect("auth item")).collect();
    let sts =
        String::from_utf8(items[4].as_bytes().expect("string to sign").to_vec()).expect("utf8");
    let lines: Vec<&str> = sts.split('\n').collect();
    assert_eq!(lines.len(), 4, "{sts}");
    assert_eq!(lines[0], "AWS4-HMAC-SHA256");
    assert!(lines[2].ends_with("/us-east-1/dax/aws4_request"), "{sts}");
    assert_eq!(
        items[3].as_text().map(str::len),
        Some(64),
        "hex SHA-256 signature"
    );
    items[3] = Value::Null;
    items[4] = Value::Null;
    items[6] = Value::Null;
    items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_and_rust_clients_agree_byte_for_byte() {
    let moto = moto();
    let ddb = ddb(moto.port);
    reset_tables(&ddb).await;
    let server = server(ddb.clone(), 1).await;
    let url = format!("dax://127.0.0.1:{}", server.port());
    let script_path = repo().join("dax/tests/conformance/script.json");
    let script: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&script_path).expect("script"))
            .expect("script JSON");

    let (u, p) = (url.clone(), script_path.clone());
    let python = tokio::task::spawn_blocking(move || run_python(&u, &p, None))
        .await
        .expect("python run");
    let py_captured = server.captured();

    server.clear();
    reset_tables(&ddb).await;
    let client = dax_client(&url, None).await;
    let mut rust = Vec::new();
    for op in &script {
        rust.push(run_op(&client, op).await);
    }
    let rs_captured = server.captured();
    drop(client);

    // Results, operation by operation.
    assert_eq!(
        python.len(),
        script.len(),
        "python ran every operation: {python:?}"
    );
    for ((op, py), rs) in script.iter().zip(&python).zip(&rust) {
        assert_eq!(py, rs, "results differ for `{}`", op["name"]);
        // Each operation ends as the script says: the error it names, else success.
        match op["expect_error"].as_str() {
            Some(code) => assert_eq!(py["error"], code, "`{}`: {py}", op["name"]),
            None => assert!(py["ok"].is_object(), "`{}` failed: {py}", op["name"]),
        }
    }
    // The script reaches each error kind through both clients.
    let errors: BTreeSet<&str> = python.iter().filter_map(|r| r["error"].as_str()).collect();
    assert_eq!(
        errors,
        BTreeSet::from([
            "ConditionalCheckFailedException",
            "ResourceNotFoundException",
            "ThrottlingException",
            "ValidationException",
        ])
    );

    // Data-plane bytes, message by message.
    let (py_data, rs_data) = (data(&py_captured), data(&rs_captured));
    let seq = |d: &[&Captured]| d.iter().map(|m| name(m.method)).collect::<Vec<_>>();
    assert_eq!(
        seq(&py_data),
        seq(&rs_data),
        "the same messages in the same order"
    );
    for (i, (a, b)) in py_data.iter().zip(&rs_data).enumerate() {
        assert_eq!(
            hex::encode(&a.bytes),
            hex::encode(&b.bytes),
            "message {i} ({}) differs",
            name(a.method)
        );
    }
    eprintln!("message sequence: {:?}", seq(&py_data));
    let proven: BTreeSet<&str> = py_data.iter().map(|m| name(m.method)).collect();
    eprintln!(
        "byte-conformant messages: {proven:?} ({} compared)",
        py_data.len()
    );
    for m in [
        "GetItem",
        "PutItem",
        "DeleteItem",
        "Query",
        "UpdateItem",
        "BatchGetItem",
        "BatchWriteItem",
        "defineKeySchema",
        "defineAttributeListId",
        "defineAttributeList",
    ] {
        assert!(proven.contains(m), "{m} was compared");
    }

    // Handshakes and authorisations: equal in form, verified by the server.
    assert_eq!(server.auth_failures(), 0, "both clients' signatures verify");
    let first = |c: &[Captured], m: i64| {
        c.iter()
            .find(|x| x.method == m)
            .map(|x| x.bytes.clone())
            .unwrap_or_else(|| panic!("no {} captured", name(m)))
    };
    assert_eq!(
        handshake_shape(&first(&py_captured, 0)),
        handshake_shape(&first(&rs_captured, 0))
    );
    assert_eq!(
        auth_shape(&first(&py_captured, method::AUTHORIZE_CONNECTION)),
        auth_shape(&first(&rs_captured, method::AUTHORIZE_CONNECTION))
    );
    // The endpoints call has no variable field at all.
    assert_eq!(
        first(&py_captured, method::ENDPOINTS),
        first(&rs_captured, method::ENDPOINTS)
    );
}
