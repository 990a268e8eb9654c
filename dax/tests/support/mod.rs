//! Shared by the crate's integration tests: moto_server (the repo's `.venv`,
//! installed by scripts/install-test-tools) on a free 127.0.0.1 port, the SDK client
//! for it with static dummy credentials, the test tables, the DAX test server over
//! them, and the operation-script runner for the Rust client (the Python side is
//! tests/conformance/driver.py). Missing tools fail the test with the install hint.

#![allow(dead_code)]

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, DeleteRequest, KeySchemaElement, KeyType,
    KeysAndAttributes, PutRequest, ReturnValue, ScalarAttributeType, WriteRequest,
};
use mangactl_dax::testserver::TestServer;
use mangactl_dax::{DaxClient, DaxConfig, DaxError};
use serde_json::{json, Map, Value as Json};
use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REGION: &str = "us-east-1";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn python() -> PathBuf {
    let p = repo().join(".venv/bin/python");
    assert!(
        p.is_file(),
        "no {}; run scripts/install-test-tools",
        p.display()
    );
    p
}

#[derive(Debug)]
pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn moto() -> Moto {
    let bin = repo().join(".venv/bin/moto_server");
    assert!(
        bin.is_file(),
        "no moto_server at {}; run scripts/install-test-tools",
        bin.display()
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let child = Command::new(bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto_server; run scripts/install-test-tools");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto_server did not listen within 30 s"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    Moto { child, port }
}

pub fn static_credentials() -> SharedCredentialsProvider {
    SharedCredentialsProvider::new(Credentials::new("testing", "testing", None, None, "static"))
}

pub fn ddb(port: u16) -> aws_sdk_dynamodb::Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new(REGION))
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .credentials_provider(static_credentials())
        .http_client(http)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// (Re)creates the test tables: `sessions` and `throttled` with the memory stack's
/// key schema (`session_id` S, `turn` N), `kv` with a hash key only (`pk` S).
pub async fn reset_tables(ddb: &aws_sdk_dynamodb::Client) {
    for (name, range) in [("sessions", true), ("throttled", true), ("kv", false)] {
        let _ = ddb.delete_table().table_name(name).send().await;
        let hash = if range { "session_id" } else { "pk" };
        let mut req = ddb
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(hash)
                    .key_type(KeyType::Hash)
                    .build()
                    .expect("key"),
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(hash)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .expect("def"),
            );
        if range {
            req = req
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name("turn")
                        .key_type(KeyType::Range)
                        .build()
                        .expect("key"),
                )
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name("turn")
                        .attribute_type(ScalarAttributeType::N)
                        .build()
                        .expect("def"),
                );
        }
        req.send().await.expect("create table in moto");
    }
}

pub async fn dax_client(url: &str, ca_pem: Option<Vec<u8>>) -> DaxClient {
    let mut config = DaxConfig::new(url, REGION, static_credentials());
    config.extra_root_certificates_pem = ca_pem;
    DaxClient::connect(config)
        .await
        .expect("connect to the DAX test server")
}

pub fn av_from_json(v: &Json) -> AttributeValue {
    let (t, x) = v
        .as_object()
        .and_then(|o| o.iter().next())
        .expect("attribute value");
    let strings = || {
        x.as_array()
            .expect("list")
            .iter()
            .map(|s| s.as_str().expect("str").to_string())
            .collect()
    };
    match t.as_str() {
        "S" => AttributeValue::S(x.as_str().expect("S").into()),
        "N" => AttributeValue::N(x.as_str().expect("N").into()),
        "B" => AttributeValue::B(Blob::new(hex::decode(x.as_str().expect("B")).expect("hex"))),
        "SS" => AttributeValue::Ss(strings()),
        "NS" => AttributeValue::Ns(strings()),
        "BOOL" => AttributeValue::Bool(x.as_bool().expect("BOOL")),
        "NULL" => AttributeValue::Null(true),
        "L" => AttributeValue::L(x.as_array().expect("L").iter().map(av_from_json).collect()),
        "M" => AttributeValue::M(
            x.as_object()
                .expect("M")
                .iter()
                .map(|(k, v)| (k.clone(), av_from_json(v)))
                .collect(),
        ),
        other => panic!("unknown type {other}"),
    }
}

pub fn av_to_json(v: &AttributeValue) -> Json {
    match v {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::B(b) => json!({"B": hex::encode(b.as_ref())}),
        AttributeValue::Ss(s) => json!({"SS": s}),
        AttributeValue::Ns(s) => json!({"NS": s}),
        AttributeValue::Bs(s) => {
            json!({"BS": s.iter().map(|b| hex::encode(b.as_ref())).collect::<Vec<_>>()})
        }
        AttributeValue::Bool(b) => json!({"BOOL": b}),
        AttributeValue::Null(_) => json!({"NULL": true}),
        AttributeValue::L(l) => json!({"L": l.iter().map(av_to_json).collect::<Vec<_>>()}),
        AttributeValue::M(m) => {
            json!({"M": m.iter().map(|(k, v)| (k.clone(), av_to_json(v))).collect::<Map<_, _>>()})
        }
        _ => json!({"?": "unknown"}),
    }
}

fn item_from(v: Option<&Json>) -> Option<HashMap<String, AttributeValue>> {
    v.map(|o| {
        o.as_object()
            .expect("item")
            .iter()
            .map(|(k, v)| (k.clone(), av_from_json(v)))
            .collect()
    })
}

fn item_to(i: &HashMap<String, AttributeValue>) -> Json {
    Json::Object(i.iter().map(|(k, v)| (k.clone(), av_to_json(v))).collect())
}

fn names_from(v: Option<&Json>) -> Option<HashMap<String, String>> {
    v.map(|o| {
        o.as_object()
            .expect("names")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().expect("name").to_string()))
            .collect()
    })
}

/// One operation of a script through the Rust client, reported like driver.py.
pub async fn run_op(c: &DaxClient, op: &Json) -> Json {
    let p = &op["params"];
    let s = |k: &str| p.get(k).and_then(Json::as_str).map(str::to_string);
    let b = |k: &str| p.get(k).and_then(Json::as_bool);
    let result: Result<Map<String, Json>, DaxError> = async {
        let mut out = Map::new();
        match op["op"].as_str().expect("op") {
            "GetItem" => {
                let input = aws_sdk_dynamodb::operation::get_item::GetItemInput::builder()
                    .set_table_name(s("TableName"))
                    .set_key(item_from(p.get("Key")))
                    .set_consistent_read(b("ConsistentRead"))
                    .set_projection_expression(s("ProjectionExpression"))
                    .set_expression_attribute_names(names_from(p.get("ExpressionAttributeNames")))
                    .build()
                    .expect("input");
                let r = c.get_item(input).await?;
                if let Some(i) = r.item() {
                    out.insert("Item".into(), item_to(i));
                }
            }
            "PutItem" | "DeleteItem" => {
                let rv = s("ReturnValues").map(|r| ReturnValue::from(r.as_str()));
                let attributes = if op["op"] == "PutItem" {
                    let input = aws_sdk_dynamodb::operation::put_item::PutItemInput::builder()
                        .set_table_name(s("TableName"))
                        .set_item(item_from(p.get("Item")))
                        .set_condition_expression(s("ConditionExpression"))
                        .set_expression_attribute_names(names_from(
                            p.get("ExpressionAttributeNames"),
                        ))
                        .set_expression_attribute_values(item_from(
                            p.get("ExpressionAttributeValues"),
                        ))
                        .set_return_values(rv)
                        .build()
                        .expect("input");
                    c.put_item(input).await?.attributes
                } else {
                    let input =
                        aws_sdk_dynamodb::operation::delete_item::DeleteItemInput::builder()
                            .set_table_name(s("TableName"))
                            .set_key(item_from(p.get("Key")))
                            .set_condition_expression(s("ConditionExpression"))
                            .set_expression_attribute_names(names_from(
                                p.get("ExpressionAttributeNames"),
                            ))
                            .set_expression_attribute_values(item_from(
                                p.get("ExpressionAttributeValues"),
                            ))
                            .set_return_values(rv)
                            .build()
                            .expect("input");
                    c.delete_item(input).await?.attributes
                };
                if let Some(a) = attributes {
                    out.insert("Attributes".into(), item_to(&a));
                }
            }
            "Query" => {
                let input = aws_sdk_dynamodb::operation::query::QueryInput::builder()
                    .set_table_name(s("TableName"))
                    .set_key_condition_expression(s("KeyConditionExpression"))
                    .set_projection_expression(s("ProjectionExpression"))
                    .set_expression_attribute_names(names_from(p.get("ExpressionAttributeNames")))
                    .set_expression_attribute_values(item_from(p.get("ExpressionAttributeValues")))
                    .set_scan_index_forward(b("ScanIndexForward"))
                    .set_consistent_read(b("ConsistentRead"))
                    .set_limit(p.get("Limit").and_then(Json::as_i64).map(|l| l as i32))
                    .build()
                    .expect("input");
                let r = c.query(input).await?;
                out.insert(
                    "Items".into(),
                    Json::Array(r.items().iter().map(item_to).collect()),
                );
                out.insert("Count".into(), json!(r.count()));
                out.insert("ScannedCount".into(), json!(r.scanned_count()));
                if let Some(k) = r.last_evaluated_key() {
                    out.insert("LastEvaluatedKey".into(), item_to(k));
                }
            }
            "UpdateItem" => {
                let input = aws_sdk_dynamodb::operation::update_item::UpdateItemInput::builder()
                    .set_table_name(s("TableName"))
                    .set_key(item_from(p.get("Key")))
                    .set_update_expression(s("UpdateExpression"))
                    .set_condition_expression(s("ConditionExpression"))
                    .set_expression_attribute_names(names_from(p.get("ExpressionAttributeNames")))
                    .set_expression_attribute_values(item_from(p.get("ExpressionAttributeValues")))
                    .set_return_values(s("ReturnValues").map(|r| ReturnValue::from(r.as_str())))
                    .build()
                    .expect("input");
                if let Some(a) = c.update_item(input).await?.attributes {
                    out.insert("Attributes".into(), item_to(&a));
                }
            }
            "BatchGetItem" => {
                let mut items = HashMap::new();
                for (table, r) in p["RequestItems"].as_object().expect("RequestItems") {
                    let keys = r["Keys"]
                        .as_array()
                        .expect("Keys")
                        .iter()
                        .map(|k| item_from(Some(k)).expect("key"))
                        .collect();
                    let kaa = KeysAndAttributes::builder()
                        .set_keys(Some(keys))
                        .set_consistent_read(r.get("ConsistentRead").and_then(Json::as_bool))
                        .set_projection_expression(
                            r.get("ProjectionExpression")
                                .and_then(Json::as_str)
                                .map(str::to_string),
                        )
                        .set_expression_attribute_names(names_from(
                            r.get("ExpressionAttributeNames"),
                        ))
                        .build()
                        .expect("keys");
                    items.insert(table.clone(), kaa);
                }
                let input =
                    aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemInput::builder()
                        .set_request_items(Some(items))
                        .build()
                        .expect("input");
                let r = c.batch_get_item(input).await?;
                let responses: Map<String, Json> = r
                    .responses()
                    .map(|m| {
                        m.iter()
                            .map(|(t, items)| {
                                (t.clone(), Json::Array(items.iter().map(item_to).collect()))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.insert("Responses".into(), Json::Object(responses));
                // As the official client reports them: the keys, and the table's
                // options only where set to something.
                let unprocessed: Map<String, Json> = r
                    .unprocessed_keys()
                    .map(|m| {
                        m.iter()
                            .map(|(t, kaa)| {
                                let mut o = Map::new();
                                o.insert(
                                    "Keys".into(),
                                    Json::Array(kaa.keys().iter().map(item_to).collect()),
                                );
                                if kaa.consistent_read() == Some(true) {
                                    o.insert("ConsistentRead".into(), json!(true));
                                }
                                if let Some(p) = kaa.projection_expression() {
                                    o.insert("ProjectionExpression".into(), json!(p));
                                }
                                if let Some(n) = kaa.expression_attribute_names() {
                                    o.insert("ExpressionAttributeNames".into(), json!(n));
                                }
                                (t.clone(), Json::Object(o))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.insert("UnprocessedKeys".into(), Json::Object(unprocessed));
            }
            "BatchWriteItem" => {
                let mut items = HashMap::new();
                for (table, writes) in p["RequestItems"].as_object().expect("RequestItems") {
                    let list = writes
                        .as_array()
                        .expect("writes")
                        .iter()
                        .map(|w| {
                            if let Some(put) = w.get("PutRequest") {
                                WriteRequest::builder()
                                    .put_request(
                                        PutRequest::builder()
                                            .set_item(item_from(put.get("Item")))
                                            .build()
                                            .expect("put"),
                                    )
                                    .build()
                            } else {
                                WriteRequest::builder()
                                    .delete_request(
                                        DeleteRequest::builder()
                                            .set_key(item_from(w["DeleteRequest"].get("Key")))
                                            .build()
                                            .expect("delete"),
                                    )
                                    .build()
                            }
                        })
                        .collect();
                    items.insert(table.clone(), list);
                }
                let input =
                    aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemInput::builder()
                        .set_request_items(Some(items))
                        .build()
                        .expect("input");
                let r = c.batch_write_item(input).await?;
                let unprocessed: Map<String, Json> = r
                    .unprocessed_items()
                    .map(|m| {
                        m.iter()
                            .map(|(t, writes)| {
                                let list = writes
                                    .iter()
                                    .map(|w| match (w.put_request(), w.delete_request()) {
                                        (Some(p), _) => {
                                            json!({"PutRequest": {"Item": item_to(p.item())}})
                                        }
                                        (_, Some(d)) => {
                                            json!({"DeleteRequest": {"Key": item_to(d.key())}})
                                        }
                                        _ => json!({}),
                                    })
                                    .collect();
                                (t.clone(), Json::Array(list))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.insert("UnprocessedItems".into(), Json::Object(unprocessed));
            }
            other => panic!("unknown op {other}"),
        }
        Ok(out)
    }
    .await;
    match result {
        Ok(m) => json!({"ok": m}),
        Err(e) => json!({"error": e.code()}),
    }
}

/// The script's operations through the official Python client.
pub fn run_python(
    url: &str,
    script: &std::path::Path,
    ca_file: Option<&std::path::Path>,
) -> Vec<Json> {
    let mut cmd = Command::new(python());
    cmd.arg(repo().join("dax/tests/conformance/driver.py"))
        .arg(url)
        .arg(script);
    if let Some(ca) = ca_file {
        cmd.env("SSL_CERT_FILE", ca);
    }
    let out = cmd.output().expect("run the Python driver");
    assert!(
        out.status.success(),
        "driver.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("driver output is JSON"))
        .collect()
}

pub async fn server(ddb: aws_sdk_dynamodb::Client, nodes: usize) -> TestServer {
    TestServer::start(ddb, nodes, None)
        .await
        .expect("start the DAX test server")
}
