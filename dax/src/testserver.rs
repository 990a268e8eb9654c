//! A local DAX test server (feature `test-server`; tests and benchmarks only): it
//! speaks the DAX protocol on 127.0.0.1, keeps items in a real DynamoDB endpoint
//! (moto_server in the tests) so reads and writes have DynamoDB's semantics, and
//! records the raw bytes of every message it receives, for the conformance tests
//! to compare the official client's bytes with ours.
//!
//! What it does beyond relaying: verifies each connection's SigV4 authorisation
//! (secret `testing`, the tests' static credentials); defines attribute lists (ids
//! from 2 in order of first definition, 1 being the empty list); answers
//! `endpoints` with its nodes (one or more listeners sharing one state, the first
//! the primary); answers every data request on table [`THROTTLED_TABLE`] with a
//! throttling error, except in batches, where that table's keys and writes come
//! back unprocessed (as DynamoDB does when a table's throughput is exceeded and the
//! rest of the batch succeeds:
//! <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html>,
//! <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchWriteItem.html>);
//! and can take a node down (connections refused and dropped) to
//! test failover. Expressions arrive compiled; they are turned back into text with
//! fresh placeholders for DynamoDB.

use crate::cbor::{Decoder, Encoder, Value, TAG_PATH_ORDINAL};
use crate::codec::{self, method, param, Endpoint, Item, KeySchema, ScalarType};
use crate::conn::MAGIC;
use crate::error::ErrorKind;
use crate::expr::func;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, KeyType, KeysAndAttributes, PutRequest, ReturnValue,
    WriteRequest,
};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// Every data request on this table is answered with ThrottlingException.
pub const THROTTLED_TABLE: &str = "throttled";
pub const SECRET: &str = "testing";

/// One message received.
#[derive(Debug, Clone, PartialEq)]
pub struct Captured {
    /// The listener's port (which node received it).
    pub node: u16,
    pub connection: u64,
    /// The method id; 0 for the connection handshake.
    pub method: i64,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Default)]
struct Lists {
    ids: HashMap<Vec<String>, i64>,
    names: HashMap<i64, Vec<String>>,
}

#[derive(Debug)]
struct State {
    ddb: aws_sdk_dynamodb::Client,
    lists: Mutex<Lists>,
    captured: Mutex<Vec<Captured>>,
    nodes: Mutex<Vec<SocketAddr>>,
    next_conn: Mutex<u64>,
    /// Bad signatures seen.
    auth_failures: Mutex<u32>,
    /// Benchmarks: GetItem and Query answers kept by request bytes and served again
    /// until the next write (standing in for DAX's item and query caches).
    cache: Mutex<Option<HashMap<Vec<u8>, Vec<u8>>>>,
}

/// A running test server of one or more nodes.
#[derive(Debug)]
pub struct TestServer {
    state: Arc<State>,
    pub addrs: Vec<SocketAddr>,
    down: Vec<Arc<AtomicBool>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// TLS for `daxs://`: the server's certificate chain and key, PEM.
#[derive(Debug, Clone)]
pub struct TlsIdentity {
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestServer {
    /// Starts `nodes` listeners over DynamoDB at `ddb`.
    pub async fn start(
        ddb: aws_sdk_dynamodb::Client,
        nodes: usize,
        tls: Option<TlsIdentity>,
    ) -> std::io::Result<TestServer> {
        let state = Arc::new(State {
            ddb,
            lists: Mutex::new(Lists::default()),
            captured: Mutex::new(Vec::new()),
            nodes: Mutex::new(Vec::new()),
            next_conn: Mutex::new(0),
            auth_failures: Mutex::new(0),
            cache: Mutex::new(None),
        });
        let acceptor = match tls {
            None => None,
            Some(id) => Some(acceptor(&id)?),
        };
        let mut listeners = Vec::new();
        for _ in 0..nodes.max(1) {
            listeners.push(TcpListener::bind("127.0.0.1:0").await?);
        }
        let addrs: Vec<SocketAddr> = listeners
            .iter()
            .map(|l| l.local_addr())
            .collect::<Result<_, _>>()?;
        *lock(&state.nodes) = addrs.clone();
        let mut tasks = Vec::new();
        let mut down = Vec::new();
        for l in listeners {
            let flag = Arc::new(AtomicBool::new(false));
            down.push(flag.clone());
            tasks.push(tokio::spawn(accept_loop(
                l,
                state.clone(),
                flag,
                acceptor.clone(),
            )));
        }
        Ok(TestServer {
            state,
            addrs,
            down,
            tasks,
        })
    }

    pub fn port(&self) -> u16 {
        self.addrs[0].port()
    }

    pub fn captured(&self) -> Vec<Captured> {
        lock(&self.state.captured).clone()
    }

    pub fn clear(&self) {
        lock(&self.state.captured).clear();
        *lock(&self.state.lists) = Lists::default();
    }

    pub fn auth_failures(&self) -> u32 {
        *lock(&self.state.auth_failures)
    }

    /// Turns the response cache on (benchmarks) or off.
    pub fn set_response_cache(&self, on: bool) {
        *lock(&self.state.cache) = on.then(HashMap::new);
    }

    /// Lists only these nodes (by index) in `endpoints` answers from now on.
    pub fn set_listed(&self, nodes: &[usize]) {
        *lock(&self.state.nodes) = nodes.iter().map(|i| self.addrs[*i]).collect();
    }

    /// Takes node `i` down (new connections closed, open ones dropped) or back up.
    pub fn set_down(&self, i: usize, down: bool) {
        self.down[i].store(down, Ordering::SeqCst);
    }
}

fn acceptor(id: &TlsIdentity) -> std::io::Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let io = |e: String| std::io::Error::other(e);
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(id.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| io(e.to_string()))?;
    let key =
        PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes()).map_err(|e| io(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| io(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| io(e.to_string()))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

async fn accept_loop(
    l: TcpListener,
    state: Arc<State>,
    down: Arc<AtomicBool>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
    loop {
        let Ok((sock, _)) = l.accept().await else {
            continue;
        };
        if down.load(Ordering::SeqCst) {
            drop(sock);
            continue;
        }
        let _ = sock.set_nodelay(true);
        let state = state.clone();
        let down = down.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let id = {
                let mut n = lock(&state.next_conn);
                *n += 1;
                *n
            };
            match tls {
                None => serve(sock, state, port, id, down).await,
                Some(a) => {
                    if let Ok(s) = a.accept(sock).await {
                        serve(s, state, port, id, down).await
                    }
                }
            }
        });
    }
}

/// Reads whole items from a connection.
struct Reader<S> {
    s: S,
    buf: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Reader<S> {
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        match self.s.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// Parses a message of `f`'s shape from the front of the buffer; returns its
    /// bytes and values.
    async fn message<F>(&mut self, mut f: F) -> Option<(Vec<u8>, Vec<Value>)>
    where
        F: FnMut(&mut Decoder<'_>) -> Result<Vec<Value>, crate::cbor::CborError>,
    {
        loop {
            if !self.buf.is_empty() {
                let mut d = Decoder::new(&self.buf);
                match f(&mut d) {
                    Ok(vals) => {
                        let used = d.pos;
                        let bytes: Vec<u8> = self.buf.drain(..used).collect();
                        return Some((bytes, vals));
                    }
                    Err(crate::cbor::CborError::Incomplete) => {}
                    Err(_) => return None,
                }
            }
            if !self.fill().await {
                return None;
            }
        }
    }
}

/// The number of argument items after the method id (the optional-parameter map
/// included) of each method the server knows.
fn arity(m: i64) -> Option<usize> {
    Some(match m {
        method::AUTHORIZE_CONNECTION => 5,
        method::ENDPOINTS => 0,
        method::DEFINE_KEY_SCHEMA
        | method::DEFINE_ATTRIBUTE_LIST_ID
        | method::DEFINE_ATTRIBUTE_LIST => 1,
        method::GET_ITEM | method::DELETE_ITEM | method::QUERY | method::UPDATE_ITEM => 3,
        method::PUT_ITEM => 4,
        method::BATCH_GET_ITEM | method::BATCH_WRITE_ITEM => 2,
        _ => return None,
    })
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    s: S,
    state: Arc<State>,
    port: u16,
    conn: u64,
    down: Arc<AtomicBool>,
) {
    let mut r = Reader { s, buf: Vec::new() };
    let hello = r
        .message(|d| {
            let magic = d.raw(MAGIC.len())?;
            if magic != MAGIC {
                return Err(crate::cbor::CborError::Malformed("bad magic".into()));
            }
            Ok(vec![d.value()?, d.value()?, d.value()?, d.value()?])
        })
        .await;
    let Some((bytes, _)) = hello else { return };
    record(&state, port, conn, 0, bytes);
    let mut authorised = false;
    let mut schemas: HashMap<String, KeySchema> = HashMap::new();
    loop {
        let msg = r
            .message(|d| {
                let service = d.value()?;
                let m = d.value()?;
                let m = m.as_int().unwrap_or(0) as i64;
                let n = arity(m).ok_or(crate::cbor::CborError::Malformed(format!(
                    "unknown method {m}"
                )))?;
                let mut vals = vec![service, Value::Int(m as i128)];
                for _ in 0..n {
                    vals.push(d.value()?);
                }
                Ok(vals)
            })
            .await;
        let Some((bytes, vals)) = msg else { return };
        if down.load(Ordering::SeqCst) {
            return;
        }
        let m = vals[1].as_int().unwrap_or(0) as i64;
        let cacheable = matches!(m, method::GET_ITEM | method::QUERY);
        if matches!(
            m,
            method::PUT_ITEM | method::DELETE_ITEM | method::UPDATE_ITEM | method::BATCH_WRITE_ITEM
        ) {
            if let Some(c) = lock(&state.cache).as_mut() {
                c.clear();
            }
        }
        let cached = if cacheable && authorised {
            lock(&state.cache)
                .as_ref()
                .and_then(|c| c.get(&bytes).cloned())
        } else {
            None
        };
        if let Some(body) = cached {
            let mut out = Encoder::new();
            out.array(0).raw(&body);
            if r.s.write_all(&out.buf).await.is_err() {
                return;
            }
            continue;
        }
        let key = cacheable.then(|| bytes.clone());
        record(&state, port, conn, m, bytes);
        let args = &vals[2..];
        if m == method::AUTHORIZE_CONNECTION {
            let sts = args[2]
                .as_bytes()
                .map(|b| String::from_utf8_lossy(b).to_string())
                .unwrap_or_default();
            let sig = args[1].as_text().unwrap_or_default();
            authorised = args[0].as_text().is_some() && crate::auth::verify(SECRET, &sts, sig);
            if !authorised {
                *lock(&state.auth_failures) += 1;
            }
            continue;
        }
        let mut out = Encoder::new();
        if !authorised {
            error(&mut out, &[4, 23, 31, 33], "authentication required");
        } else {
            match handle(&state, &mut schemas, m, args).await {
                Ok(body) => {
                    out.array(0).raw(&body);
                    if let (Some(k), Some(c)) = (key, lock(&state.cache).as_mut()) {
                        c.insert(k, body);
                    }
                }
                Err((codes, message)) => error(&mut out, &codes, &message),
            }
        }
        if r.s.write_all(&out.buf).await.is_err() {
            return;
        }
    }
}

fn error(out: &mut Encoder, codes: &[i64], message: &str) {
    out.array(codes.len());
    for c in codes {
        out.int(*c);
    }
    out.text(message);
    out.array(3).text("test-request-id").null().int(400);
}

fn record(state: &State, node: u16, connection: u64, method: i64, bytes: Vec<u8>) {
    lock(&state.captured).push(Captured {
        node,
        connection,
        method,
        bytes,
    });
}

type Failure = (Vec<i64>, String);

fn fail(kind: ErrorKind, message: impl Into<String>) -> Failure {
    (kind.codes().to_vec(), message.into())
}

fn sdk_failure<E>(e: &aws_sdk_dynamodb::error::SdkError<E>) -> Failure
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + 'static,
{
    let code = e.as_service_error().and_then(|s| s.code()).unwrap_or("");
    let message = e
        .as_service_error()
        .and_then(|s| s.message())
        .unwrap_or("DynamoDB call failed")
        .to_string();
    let kind = match code {
        "ConditionalCheckFailedException" => ErrorKind::ConditionalCheckFailed,
        "ResourceNotFoundException" => ErrorKind::ResourceNotFound,
        "ValidationException" => ErrorKind::Validation,
        "ProvisionedThroughputExceededException" => ErrorKind::ProvisionedThroughputExceeded,
        "ThrottlingException" => ErrorKind::Throttling,
        _ => ErrorKind::InternalServerError,
    };
    fail(kind, message)
}

fn bytes_arg(v: &Value) -> Result<&[u8], Failure> {
    v.as_bytes()
        .ok_or_else(|| fail(ErrorKind::Validation, "expected bytes"))
}

fn text_of(v: &Value) -> Result<String, Failure> {
    Ok(String::from_utf8_lossy(bytes_arg(v)?).to_string())
}

async fn schema_of(
    state: &State,
    schemas: &mut HashMap<String, KeySchema>,
    table: &str,
) -> Result<KeySchema, Failure> {
    if let Some(s) = schemas.get(table) {
        return Ok(s.clone());
    }
    let out = state
        .ddb
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| {
            let f = sdk_failure(&e);
            if f.0 == ErrorKind::InternalServerError.codes() {
                fail(
                    ErrorKind::ResourceNotFound,
                    format!("Requested resource not found: Table: {table} not found"),
                )
            } else {
                f
            }
        })?;
    let t = out
        .table()
        .ok_or_else(|| fail(ErrorKind::InternalServerError, "no table"))?;
    let ty = |name: &str| {
        t.attribute_definitions()
            .iter()
            .find(|d| d.attribute_name() == name)
            .and_then(|d| ScalarType::parse(d.attribute_type().as_str()))
    };
    let mut keys = Vec::new();
    for want in [KeyType::Hash, KeyType::Range] {
        if let Some(k) = t.key_schema().iter().find(|k| *k.key_type() == want) {
            let typ = ty(k.attribute_name())
                .ok_or_else(|| fail(ErrorKind::InternalServerError, "key type"))?;
            keys.push((k.attribute_name().to_string(), typ));
        }
    }
    let s = KeySchema(keys);
    schemas.insert(table.to_string(), s.clone());
    Ok(s)
}

fn list_id(state: &State, names: Vec<String>) -> i64 {
    if names.is_empty() {
        return codec::EMPTY_ATTRIBUTE_LIST_ID;
    }
    let mut l = lock(&state.lists);
    if let Some(id) = l.ids.get(&names) {
        return *id;
    }
    let id = l.ids.len() as i64 + 2;
    l.ids.insert(names.clone(), id);
    l.names.insert(id, names);
    id
}

fn item_values(state: &State, item: &Item, schema: &KeySchema) -> Result<Vec<u8>, Failure> {
    let names = codec::attribute_names(item, schema);
    let id = list_id(state, names.clone());
    codec::encode_values(item, &names, id).map_err(|e| fail(ErrorKind::Validation, e.to_string()))
}

/// The optional-parameter map as (key, value) pairs (later keys override earlier).
fn kwargs(v: &Value) -> Result<HashMap<i64, Value>, Failure> {
    match v {
        Value::Null => Ok(HashMap::new()),
        Value::Map(m) => Ok(m
            .iter()
            .filter_map(|(k, v)| k.as_int().map(|k| (k as i64, v.clone())))
            .collect()),
        _ => Err(fail(ErrorKind::Validation, "parameters are not a map")),
    }
}

/// An expression decompiled to text, with its placeholders.
#[derive(Debug, Default)]
struct Decompiled {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Decompiled {
    fn expression(&mut self, compiled: &[u8], tag: &str) -> Result<String, Failure> {
        let bad = || fail(ErrorKind::Validation, "malformed expression");
        let v = Decoder::new(compiled).value().map_err(|_| bad())?;
        let Value::Array(parts) = v else {
            return Err(bad());
        };
        let vals = match parts.get(2) {
            Some(Value::Array(a)) => a.clone(),
            _ => Vec::new(),
        };
        let spec = parts.get(1).ok_or_else(bad)?;
        self.node(spec, &vals, tag)
    }

    /// An update expression: `[1, [action...], [values...]]`, the actions grouped
    /// into clauses (DynamoDB applies the clauses' actions together).
    fn update(&mut self, compiled: &[u8], tag: &str) -> Result<String, Failure> {
        let bad = || fail(ErrorKind::Validation, "malformed update expression");
        let v = Decoder::new(compiled).value().map_err(|_| bad())?;
        let Value::Array(parts) = v else {
            return Err(bad());
        };
        let (Some(Value::Array(actions)), Some(Value::Array(vals))) = (parts.get(1), parts.get(2))
        else {
            return Err(bad());
        };
        let mut clauses: Vec<(&str, Vec<String>)> = vec![
            ("SET", vec![]),
            ("REMOVE", vec![]),
            ("ADD", vec![]),
            ("DELETE", vec![]),
        ];
        for a in actions {
            let Value::Array(a) = a else {
                return Err(bad());
            };
            let code = a.first().and_then(Value::as_int).ok_or_else(bad)? as i64;
            let path = self.node(a.get(1).ok_or_else(bad)?, vals, tag)?;
            let operand = match a.get(2) {
                Some(o) => Some(self.node(o, vals, tag)?),
                None => None,
            };
            let (i, text) = match (code, operand) {
                (func::SET_ACTION, Some(o)) => (0, format!("{path} = {o}")),
                (func::REMOVE_ACTION, None) => (1, path),
                (func::ADD_ACTION, Some(o)) => (2, format!("{path} {o}")),
                (func::DELETE_ACTION, Some(o)) => (3, format!("{path} {o}")),
                _ => return Err(bad()),
            };
            clauses[i].1.push(text);
        }
        Ok(clauses
            .iter()
            .filter(|(_, a)| !a.is_empty())
            .map(|(k, a)| format!("{k} {}", a.join(", ")))
            .collect::<Vec<_>>()
            .join(" "))
    }

    fn node(&mut self, v: &Value, vals: &[Value], tag: &str) -> Result<String, Failure> {
        let bad = || {
            fail(
                ErrorKind::Validation,
                format!("malformed expression node {v:?}"),
            )
        };
        let Value::Array(a) = v else {
            return Err(bad());
        };
        let code = a.first().and_then(Value::as_int).ok_or_else(bad)? as i64;
        let args = &a[1..];
        let sub = |i: usize, me: &mut Self| me.node(args.get(i).ok_or_else(bad)?, vals, tag);
        Ok(match code {
            func::DOCUMENT_PATH => {
                let mut s = String::new();
                for (i, p) in args.iter().enumerate() {
                    match p {
                        Value::Text(name) => {
                            let ph = format!("#{tag}{}", self.names.len());
                            self.names.insert(ph.clone(), name.clone());
                            if i > 0 {
                                s.push('.');
                            }
                            s.push_str(&ph);
                        }
                        Value::Tag(TAG_PATH_ORDINAL, n) => {
                            s.push_str(&format!("[{}]", n.as_int().unwrap_or(0)));
                        }
                        _ => return Err(bad()),
                    }
                }
                s
            }
            func::VARIABLE => {
                let i = args.first().and_then(Value::as_int).ok_or_else(bad)? as usize;
                let av = codec::decode_attribute_value(vals.get(i).ok_or_else(bad)?)
                    .map_err(|e| fail(ErrorKind::Validation, e.to_string()))?;
                let ph = format!(":{tag}{}", self.values.len());
                self.values.insert(ph.clone(), av);
                ph
            }
            func::EQ | func::NE | func::LT | func::LE | func::GT | func::GE => {
                let op = ["=", "<>", "<", ">=", ">", "<="][code as usize];
                format!("{} {op} {}", sub(0, self)?, sub(1, self)?)
            }
            func::AND => format!("{} AND {}", sub(0, self)?, sub(1, self)?),
            func::OR => format!("({} OR {})", sub(0, self)?, sub(1, self)?),
            func::NOT => format!("NOT ({})", sub(0, self)?),
            func::BETWEEN => format!(
                "{} BETWEEN {} AND {}",
                sub(0, self)?,
                sub(1, self)?,
                sub(2, self)?
            ),
            func::IN => {
                let left = sub(0, self)?;
                let Some(Value::Array(list)) = args.get(1) else {
                    return Err(bad());
                };
                let mut items = Vec::new();
                for l in list {
                    items.push(self.node(l, vals, tag)?);
                }
                format!("{left} IN ({})", items.join(", "))
            }
            func::IF_NOT_EXISTS => format!("if_not_exists({}, {})", sub(0, self)?, sub(1, self)?),
            func::LIST_APPEND => format!("list_append({}, {})", sub(0, self)?, sub(1, self)?),
            func::PLUS => format!("{} + {}", sub(0, self)?, sub(1, self)?),
            func::MINUS => format!("{} - {}", sub(0, self)?, sub(1, self)?),
            f @ func::ATTRIBUTE_EXISTS..=func::SIZE => {
                let name = [
                    "attribute_exists",
                    "attribute_not_exists",
                    "attribute_type",
                    "begins_with",
                    "contains",
                    "size",
                ][(f - func::ATTRIBUTE_EXISTS) as usize];
                let mut items = Vec::new();
                for i in 0..args.len() {
                    items.push(sub(i, self)?);
                }
                format!("{name}({})", items.join(", "))
            }
            _ => return Err(bad()),
        })
    }
}

fn encode_key_bytes(item: &Item, schema: &KeySchema) -> Result<Vec<u8>, Failure> {
    codec::encode_key(item, schema).map_err(|e| fail(ErrorKind::Validation, e.to_string()))
}

async fn handle(
    state: &State,
    schemas: &mut HashMap<String, KeySchema>,
    m: i64,
    args: &[Value],
) -> Result<Vec<u8>, Failure> {
    let mut out = Encoder::new();
    let validation = |e: crate::error::DaxError| fail(ErrorKind::Validation, e.to_string());
    match m {
        method::ENDPOINTS => {
            let eps: Vec<Endpoint> = lock(&state.nodes)
                .iter()
                .enumerate()
                .map(|(i, a)| Endpoint {
                    node: i as i64,
                    hostname: "localhost".into(),
                    address: a.ip(),
                    port: a.port(),
                    role: if i == 0 { codec::ROLE_LEADER } else { 2 },
                    az: "us-east-1a".into(),
                })
                .collect();
            codec::encode_endpoints_response(&mut out, &eps);
        }
        method::DEFINE_KEY_SCHEMA => {
            let table = text_of(&args[0])?;
            let s = schema_of(state, schemas, &table).await?;
            out.map(s.0.len());
            for (n, t) in &s.0 {
                out.text(n).text(t.as_str());
            }
        }
        method::DEFINE_ATTRIBUTE_LIST_ID => {
            let names = codec::decode_string_list(&args[0]).map_err(validation)?;
            out.int(list_id(state, names));
        }
        method::DEFINE_ATTRIBUTE_LIST => {
            let id = args[0].as_int().unwrap_or(0) as i64;
            let names = if id == codec::EMPTY_ATTRIBUTE_LIST_ID {
                Vec::new()
            } else {
                lock(&state.lists).names.get(&id).cloned().ok_or_else(|| {
                    fail(
                        ErrorKind::Validation,
                        format!("unknown attribute list {id}"),
                    )
                })?
            };
            out.array(names.len());
            for n in &names {
                out.text(n);
            }
        }
        method::BATCH_GET_ITEM => batch_get(state, schemas, &args[0], &mut out).await?,
        method::BATCH_WRITE_ITEM => batch_write(state, schemas, &args[0], &mut out).await?,
        _ => {
            let table = text_of(&args[0])?;
            let schema = schema_of(state, schemas, &table).await?;
            if table == THROTTLED_TABLE {
                return Err(fail(ErrorKind::Throttling, "Throughput exceeds the current capacity for one or more global secondary indexes. DynamoDB is automatically scaling your index so please be patient."));
            }
            let kw = kwargs(args.last().unwrap_or(&Value::Null))?;
            let mut d = Decompiled::default();
            match m {
                method::GET_ITEM => {
                    let key =
                        codec::decode_key(bytes_arg(&args[1])?, &schema).map_err(validation)?;
                    let consistent =
                        matches!(kw.get(&param::CONSISTENT_READ), Some(Value::Bool(true)));
                    let projection = projection_of(&kw)?;
                    let r = state
                        .ddb
                        .get_item()
                        .table_name(&table)
                        .set_key(Some(key))
                        .consistent_read(consistent)
                        .send()
                        .await
                        .map_err(|e| sdk_failure(&e))?;
                    match (r.item(), &projection) {
                        (None, _) => {
                            out.null();
                        }
                        (Some(item), Some(paths)) => {
                            out.map(1).int(codec::response::ITEM);
                            projected(&mut out, item, paths).map_err(validation)?;
                        }
                        (Some(item), None) => {
                            let v = item_values(state, item, &schema)?;
                            out.map(1).int(codec::response::ITEM).bytes(&v);
                        }
                    }
                }
                method::PUT_ITEM | method::DELETE_ITEM => {
                    let mut item =
                        codec::decode_key(bytes_arg(&args[1])?, &schema).map_err(validation)?;
                    let key = item.clone();
                    if m == method::PUT_ITEM {
                        let sv = codec::decode_values(bytes_arg(&args[2])?).map_err(validation)?;
                        let names = if sv.list_id == codec::EMPTY_ATTRIBUTE_LIST_ID {
                            Vec::new()
                        } else {
                            lock(&state.lists)
                                .names
                                .get(&sv.list_id)
                                .cloned()
                                .ok_or_else(|| {
                                    fail(ErrorKind::Validation, "unknown attribute list")
                                })?
                        };
                        item.extend(sv.named(&names).map_err(validation)?);
                    }
                    let condition = match kw.get(&param::CONDITION_EXPRESSION) {
                        Some(Value::Bytes(b)) => Some(d.expression(b, "c")?),
                        _ => None,
                    };
                    let rv = match kw.get(&param::RETURN_VALUES).and_then(Value::as_int) {
                        Some(2) => Some(ReturnValue::AllOld),
                        _ => None,
                    };
                    let names = (!d.names.is_empty()).then_some(d.names.clone());
                    let values = (!d.values.is_empty()).then_some(d.values.clone());
                    let old = if m == method::PUT_ITEM {
                        state
                            .ddb
                            .put_item()
                            .table_name(&table)
                            .set_item(Some(item))
                            .set_condition_expression(condition)
                            .set_expression_attribute_names(names)
                            .set_expression_attribute_values(values)
                            .set_return_values(rv)
                            .send()
                            .await
                            .map_err(|e| sdk_failure(&e))?
                            .attributes
                    } else {
                        state
                            .ddb
                            .delete_item()
                            .table_name(&table)
                            .set_key(Some(item))
                            .set_condition_expression(condition)
                            .set_expression_attribute_names(names)
                            .set_expression_attribute_values(values)
                            .set_return_values(rv)
                            .send()
                            .await
                            .map_err(|e| sdk_failure(&e))?
                            .attributes
                    };
                    match old.filter(|o| !o.is_empty()) {
                        None => {
                            out.null();
                        }
                        Some(mut o) => {
                            for k in key.keys() {
                                o.remove(k);
                            }
                            let v = item_values(state, &o, &schema)?;
                            out.map(1).int(codec::response::ATTRIBUTES).bytes(&v);
                        }
                    }
                }
                method::UPDATE_ITEM => {
                    let key =
                        codec::decode_key(bytes_arg(&args[1])?, &schema).map_err(validation)?;
                    let condition = match kw.get(&param::CONDITION_EXPRESSION) {
                        Some(Value::Bytes(b)) => Some(d.expression(b, "c")?),
                        _ => None,
                    };
                    let update = match kw.get(&param::UPDATE_EXPRESSION) {
                        Some(Value::Bytes(b)) => Some(d.update(b, "u")?),
                        _ => None,
                    };
                    let rv = kw
                        .get(&param::RETURN_VALUES)
                        .and_then(Value::as_int)
                        .and_then(|c| match c {
                            2 => Some(ReturnValue::AllOld),
                            3 => Some(ReturnValue::UpdatedOld),
                            4 => Some(ReturnValue::AllNew),
                            5 => Some(ReturnValue::UpdatedNew),
                            _ => None,
                        });
                    let partial =
                        matches!(rv, Some(ReturnValue::UpdatedOld | ReturnValue::UpdatedNew));
                    let attributes = state
                        .ddb
                        .update_item()
                        .table_name(&table)
                        .set_key(Some(key.clone()))
                        .set_update_expression(update)
                        .set_condition_expression(condition)
                        .set_expression_attribute_names(
                            (!d.names.is_empty()).then(|| d.names.clone()),
                        )
                        .set_expression_attribute_values(
                            (!d.values.is_empty()).then(|| d.values.clone()),
                        )
                        .set_return_values(rv)
                        .send()
                        .await
                        .map_err(|e| sdk_failure(&e))?
                        .attributes;
                    match attributes.filter(|a| !a.is_empty()) {
                        None => {
                            out.null();
                        }
                        Some(mut a) => {
                            for k in key.keys() {
                                a.remove(k);
                            }
                            let v = if partial {
                                // Updated attributes by ordinal in their own list.
                                let names = codec::attribute_names(&a, &schema);
                                let id = list_id(state, names.clone());
                                let values: Vec<(usize, &AttributeValue)> =
                                    names.iter().enumerate().map(|(i, n)| (i, &a[n])).collect();
                                codec::encode_partial(&values, id).map_err(validation)?
                            } else {
                                item_values(state, &a, &schema)?
                            };
                            out.map(1).int(codec::response::ATTRIBUTES).bytes(&v);
                        }
                    }
                }
                method::QUERY => {
                    let kc = match &args[1] {
                        Value::Bytes(b) => d.expression(b, "k")?,
                        _ => {
                            return Err(fail(
                                ErrorKind::Validation,
                                "KeyConditionExpression is required",
                            ))
                        }
                    };
                    let filter = match kw.get(&param::FILTER_EXPRESSION) {
                        Some(Value::Bytes(b)) => Some(d.expression(b, "f")?),
                        _ => None,
                    };
                    let projection = projection_of(&kw)?;
                    let int = |p: i64| kw.get(&p).and_then(Value::as_int);
                    let start = match kw.get(&param::EXCLUSIVE_START_KEY) {
                        Some(Value::Bytes(b)) => {
                            Some(codec::decode_key(b, &schema).map_err(validation)?)
                        }
                        _ => None,
                    };
                    let r = state
                        .ddb
                        .query()
                        .table_name(&table)
                        .key_condition_expression(kc)
                        .set_filter_expression(filter)
                        .set_expression_attribute_names(
                            (!d.names.is_empty()).then(|| d.names.clone()),
                        )
                        .set_expression_attribute_values(
                            (!d.values.is_empty()).then(|| d.values.clone()),
                        )
                        .set_limit(int(param::LIMIT).map(|l| l as i32))
                        .set_consistent_read(int(param::CONSISTENT_READ).map(|c| c != 0))
                        .set_scan_index_forward(int(param::SCAN_INDEX_FORWARD).map(|c| c != 0))
                        .set_exclusive_start_key(start)
                        .send()
                        .await
                        .map_err(|e| sdk_failure(&e))?;
                    let entries = 3 + usize::from(r.last_evaluated_key().is_some());
                    out.map(entries);
                    out.int(codec::response::ITEMS).array(r.items().len());
                    for item in r.items() {
                        if let Some(paths) = &projection {
                            projected(&mut out, item, paths).map_err(validation)?;
                            continue;
                        }
                        let k = encode_key_bytes(item, &schema)?;
                        let mut rest = item.clone();
                        for n in schema.names() {
                            rest.remove(n);
                        }
                        let v = item_values(state, &rest, &schema)?;
                        out.array(2).bytes(&k).bytes(&v);
                    }
                    out.int(codec::response::COUNT).int(r.count() as i64);
                    out.int(codec::response::SCANNED_COUNT)
                        .int(r.scanned_count() as i64);
                    if let Some(lek) = r.last_evaluated_key() {
                        out.int(codec::response::LAST_EVALUATED_KEY)
                            .bytes(&encode_key_bytes(lek, &schema)?);
                    }
                }
                _ => return Err(fail(ErrorKind::Validation, "unsupported method")),
            }
        }
    }
    Ok(out.into_bytes())
}

fn table_entries(v: &Value) -> Result<&[(Value, Value)], Failure> {
    match v {
        Value::Map(m) => Ok(m),
        _ => Err(fail(ErrorKind::Validation, "RequestItems is not a map")),
    }
}

fn names_of(state: &State, id: i64) -> Result<Vec<String>, Failure> {
    if id == codec::EMPTY_ATTRIBUTE_LIST_ID {
        return Ok(Vec::new());
    }
    lock(&state.lists)
        .names
        .get(&id)
        .cloned()
        .ok_or_else(|| fail(ErrorKind::Validation, "unknown attribute list"))
}

/// A table of a BatchGetItem: its name, key schema and projection.
type Asked = (String, KeySchema, Option<Vec<Vec<codec::PathElement>>>);

/// BatchGetItem: `{table: [consistent, projection, [key...]]}` through DynamoDB's
/// BatchGetItem; answered `[responses, unprocessed]` then the (empty) consumed
/// capacities, each table's items in key-byte order (a stable order for the
/// comparison of the two clients' runs).
async fn batch_get(
    state: &State,
    schemas: &mut HashMap<String, KeySchema>,
    request: &Value,
    out: &mut Encoder,
) -> Result<(), Failure> {
    let validation = |e: crate::error::DaxError| fail(ErrorKind::Validation, e.to_string());
    let mut asked: Vec<Asked> = Vec::new();
    let mut unprocessed: Vec<(String, Vec<Vec<u8>>)> = Vec::new();
    let mut ddb_items = HashMap::new();
    for (name, spec) in table_entries(request)? {
        let table = name
            .as_text()
            .ok_or_else(|| fail(ErrorKind::Validation, "table name"))?
            .to_string();
        let schema = schema_of(state, schemas, &table).await?;
        let Value::Array(spec) = spec else {
            return Err(fail(ErrorKind::Validation, "table request"));
        };
        let consistent = matches!(spec.first(), Some(Value::Bool(true)));
        let projection = match spec.get(1) {
            Some(Value::Bytes(b)) => Some(projection_paths_of(b)?),
            _ => None,
        };
        let Some(Value::Array(keys)) = spec.get(2) else {
            return Err(fail(ErrorKind::Validation, "keys"));
        };
        let key_bytes: Vec<Vec<u8>> = keys
            .iter()
            .map(|k| bytes_arg(k).map(<[u8]>::to_vec))
            .collect::<Result<_, _>>()?;
        if table == THROTTLED_TABLE {
            unprocessed.push((table.clone(), key_bytes));
        } else {
            let decoded = key_bytes
                .iter()
                .map(|k| codec::decode_key(k, &schema).map_err(validation))
                .collect::<Result<Vec<_>, _>>()?;
            ddb_items.insert(
                table.clone(),
                KeysAndAttributes::builder()
                    .set_keys(Some(decoded))
                    .consistent_read(consistent)
                    .build()
                    .map_err(|e| fail(ErrorKind::Validation, e.to_string()))?,
            );
        }
        asked.push((table, schema, projection));
    }
    if ddb_items.is_empty() && !unprocessed.is_empty() {
        return Err(fail(
            ErrorKind::ProvisionedThroughputExceeded,
            "The level of configured provisioned throughput for one or more global secondary indexes of the table was exceeded.",
        ));
    }
    let mut responses: HashMap<String, Vec<Item>> = HashMap::new();
    if !ddb_items.is_empty() {
        let r = state
            .ddb
            .batch_get_item()
            .set_request_items(Some(ddb_items))
            .send()
            .await
            .map_err(|e| sdk_failure(&e))?;
        responses = r.responses.unwrap_or_default();
        for (table, kaa) in r.unprocessed_keys.unwrap_or_default() {
            let schema = schema_of(state, schemas, &table).await?;
            let keys = kaa
                .keys()
                .iter()
                .map(|k| encode_key_bytes(k, &schema))
                .collect::<Result<_, _>>()?;
            unprocessed.push((table, keys));
        }
    }
    let found: Vec<&Asked> = asked
        .iter()
        .filter(|(t, _, _)| responses.contains_key(t))
        .collect();
    out.array(2).map(found.len());
    for (table, schema, projection) in found {
        if let Some(paths) = projection {
            // Projected: one `{ordinal: value}` map per item, in key-byte order.
            let mut keyed = Vec::new();
            for item in &responses[table] {
                keyed.push((encode_key_bytes(item, schema)?, item));
            }
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
            out.text(table).array(keyed.len());
            for (_, item) in keyed {
                projected(out, item, paths).map_err(validation)?;
            }
            continue;
        }
        let mut items: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for item in &responses[table] {
            let k = encode_key_bytes(item, schema)?;
            let mut rest = item.clone();
            for n in schema.names() {
                rest.remove(n);
            }
            items.push((k, item_values(state, &rest, schema)?));
        }
        items.sort();
        out.text(table).array(items.len() * 2);
        for (k, v) in &items {
            out.bytes(k).bytes(v);
        }
    }
    out.map(unprocessed.len());
    for (table, keys) in &unprocessed {
        out.text(table).array(keys.len());
        for k in keys {
            out.bytes(k);
        }
    }
    out.array(0);
    Ok(())
}

/// Writes as received: key bytes, and value bytes for a put (none for a delete).
type RawWrites = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// BatchWriteItem: `{table: [key, values | null, ...]}` through DynamoDB's
/// BatchWriteItem; answered with the unprocessed writes (as received), then the
/// (empty) consumed capacities and item collection metrics.
async fn batch_write(
    state: &State,
    schemas: &mut HashMap<String, KeySchema>,
    request: &Value,
    out: &mut Encoder,
) -> Result<(), Failure> {
    let validation = |e: crate::error::DaxError| fail(ErrorKind::Validation, e.to_string());
    let mut unprocessed: Vec<(String, RawWrites)> = Vec::new();
    let mut ddb_items = HashMap::new();
    for (name, writes) in table_entries(request)? {
        let table = name
            .as_text()
            .ok_or_else(|| fail(ErrorKind::Validation, "table name"))?
            .to_string();
        let schema = schema_of(state, schemas, &table).await?;
        let Value::Array(writes) = writes else {
            return Err(fail(ErrorKind::Validation, "writes"));
        };
        if writes.len() % 2 != 0 {
            return Err(fail(ErrorKind::Validation, "writes are not pairs"));
        }
        let mut raw = Vec::new();
        for kv in writes.chunks(2) {
            let values = match &kv[1] {
                Value::Null => None,
                v => Some(bytes_arg(v)?.to_vec()),
            };
            raw.push((bytes_arg(&kv[0])?.to_vec(), values));
        }
        if table == THROTTLED_TABLE {
            unprocessed.push((table, raw));
            continue;
        }
        let mut requests = Vec::new();
        for (k, values) in &raw {
            let mut item = codec::decode_key(k, &schema).map_err(validation)?;
            let bad =
                |e: aws_sdk_dynamodb::error::BuildError| fail(ErrorKind::Validation, e.to_string());
            requests.push(match values {
                None => WriteRequest::builder()
                    .delete_request(
                        DeleteRequest::builder()
                            .set_key(Some(item))
                            .build()
                            .map_err(bad)?,
                    )
                    .build(),
                Some(v) => {
                    let sv = codec::decode_values(v).map_err(validation)?;
                    let names = names_of(state, sv.list_id)?;
                    item.extend(sv.named(&names).map_err(validation)?);
                    WriteRequest::builder()
                        .put_request(
                            PutRequest::builder()
                                .set_item(Some(item))
                                .build()
                                .map_err(bad)?,
                        )
                        .build()
                }
            });
        }
        ddb_items.insert(table, requests);
    }
    if ddb_items.is_empty() && !unprocessed.is_empty() {
        return Err(fail(
            ErrorKind::ProvisionedThroughputExceeded,
            "The level of configured provisioned throughput for the table was exceeded.",
        ));
    }
    if !ddb_items.is_empty() {
        let r = state
            .ddb
            .batch_write_item()
            .set_request_items(Some(ddb_items))
            .send()
            .await
            .map_err(|e| sdk_failure(&e))?;
        for (table, writes) in r.unprocessed_items.unwrap_or_default() {
            let schema = schema_of(state, schemas, &table).await?;
            let mut raw = Vec::new();
            for w in writes {
                if let Some(p) = w.put_request() {
                    let mut rest = p.item().clone();
                    for n in schema.names() {
                        rest.remove(n);
                    }
                    raw.push((
                        encode_key_bytes(p.item(), &schema)?,
                        Some(item_values(state, &rest, &schema)?),
                    ));
                } else if let Some(d) = w.delete_request() {
                    raw.push((encode_key_bytes(d.key(), &schema)?, None));
                }
            }
            unprocessed.push((table, raw));
        }
    }
    out.map(unprocessed.len());
    for (table, writes) in &unprocessed {
        out.text(table).array(writes.len() * 2);
        for (k, v) in writes {
            out.bytes(k);
            match v {
                Some(v) => out.bytes(v),
                None => out.null(),
            };
        }
    }
    out.array(0).map(0);
    Ok(())
}

/// A request's compiled projection (`[1, [path...]]`) as paths. The server reads
/// whole items from DynamoDB and projects them itself, as DAX serves projections
/// from the whole items it caches.
fn projection_of(
    kw: &HashMap<i64, Value>,
) -> Result<Option<Vec<Vec<codec::PathElement>>>, Failure> {
    match kw.get(&param::PROJECTION_EXPRESSION) {
        Some(Value::Bytes(b)) => projection_paths_of(b).map(Some),
        _ => Ok(None),
    }
}

/// A compiled projection's paths.
fn projection_paths_of(b: &[u8]) -> Result<Vec<Vec<codec::PathElement>>, Failure> {
    let bad = || fail(ErrorKind::Validation, "malformed projection");
    let v = Decoder::new(b).value().map_err(|_| bad())?;
    let Some(Value::Array(paths)) = (match &v {
        Value::Array(a) => a.get(1),
        _ => None,
    }) else {
        return Err(bad());
    };
    let mut out = Vec::new();
    for p in paths {
        let Value::Array(parts) = p else {
            return Err(bad());
        };
        if parts.first().and_then(Value::as_int) != Some(func::DOCUMENT_PATH as i128) {
            return Err(bad());
        }
        let mut path = Vec::new();
        for e in &parts[1..] {
            path.push(match e {
                Value::Text(t) => codec::PathElement::Key(t.clone()),
                Value::Tag(TAG_PATH_ORDINAL, n) => codec::PathElement::Index(
                    n.as_int()
                        .and_then(|i| usize::try_from(i).ok())
                        .ok_or_else(bad)?,
                ),
                _ => return Err(bad()),
            });
        }
        out.push(path);
    }
    Ok(out)
}

/// A projected item: `{ordinal: value}` for each path the item has.
fn projected(
    out: &mut Encoder,
    item: &Item,
    paths: &[Vec<codec::PathElement>],
) -> Result<(), crate::error::DaxError> {
    let found: Vec<(usize, &AttributeValue)> = paths
        .iter()
        .enumerate()
        .filter_map(|(i, p)| codec::value_at(item, p).map(|v| (i, v)))
        .collect();
    out.map(found.len());
    for (i, v) in found {
        out.int(i as i64);
        codec::encode_attribute_value(out, v)?;
    }
    Ok(())
}
