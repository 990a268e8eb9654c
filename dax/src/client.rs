//! The cluster client: discovery of the nodes from the cluster endpoint (the
//! `endpoints` call, refreshed in the background so membership changes are
//! followed), a connection pool and the per-node caches the protocol needs (key
//! schemas for 60 s, attribute lists), routing as the official clients route
//! (reads to any healthy node at random, writes to the primary: Python
//! `Cluster.read_client`/`write_client`, `Router.next_any`/`next_leader`), timeouts,
//! retries (two, as the official clients: throttling after an equal-jitter backoff
//! from 70 ms, capped at 20 s; transport failures at once on another node), and
//! failover: a node whose connection fails is avoided for a while.
//!
//! The operations take and return the AWS SDK's DynamoDB input and output types, so
//! callers switch from `aws_sdk_dynamodb::Client` with little code.
//! Neighbours: [`crate::conn`] (one connection), [`crate::codec`] (the messages).

use crate::codec::{
    self, method, BatchGetTable, BatchWrite, BatchWriteTable, Expressions, Item, KeySchema,
    PathElement, QueryOptions, RawItem, RawResponse, RawWrite,
};
use crate::conn::Connection;
use crate::error::{DaxError, ErrorKind};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sdk_dynamodb::operation::batch_get_item::{BatchGetItemInput, BatchGetItemOutput};
use aws_sdk_dynamodb::operation::batch_write_item::{BatchWriteItemInput, BatchWriteItemOutput};
use aws_sdk_dynamodb::operation::delete_item::{DeleteItemInput, DeleteItemOutput};
use aws_sdk_dynamodb::operation::get_item::{GetItemInput, GetItemOutput};
use aws_sdk_dynamodb::operation::put_item::{PutItemInput, PutItemOutput};
use aws_sdk_dynamodb::operation::query::{QueryInput, QueryOutput};
use aws_sdk_dynamodb::operation::update_item::{UpdateItemInput, UpdateItemOutput};
use aws_sdk_dynamodb::types::{
    DeleteRequest, KeysAndAttributes, PutRequest, ReturnValue, WriteRequest,
};
use std::collections::HashMap;
use std::future::Future;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

pub const USER_AGENT: &str = concat!("DaxRustClient-mangactl-dax/", env!("CARGO_PKG_VERSION"));
/// Key schemas are re-fetched after a minute (the official clients' key cache TTL).
const KEY_SCHEMA_TTL: Duration = Duration::from_secs(60);
const THROTTLE_BASE: Duration = Duration::from_millis(70);
const BACKOFF_CAP: Duration = Duration::from_secs(20);
/// How long a node whose connection failed is left out of routing.
const UNHEALTHY_FOR: Duration = Duration::from_secs(5);
/// Connections kept idle per node.
const MAX_IDLE_PER_NODE: usize = 32;

/// How to reach a cluster.
#[derive(Debug, Clone)]
pub struct DaxConfig {
    /// `dax://host:port` or `daxs://host:port` (port defaults to 8111 / 9111), the
    /// cluster's discovery endpoint.
    pub endpoint: String,
    pub region: String,
    pub credentials: SharedCredentialsProvider,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// How often the node list is refreshed.
    pub refresh_interval: Duration,
    /// PEM certificates trusted beside the public roots (a private CA; tests).
    pub extra_root_certificates_pem: Option<Vec<u8>>,
    pub user_agent: String,
}

impl DaxConfig {
    pub fn new(endpoint: &str, region: &str, credentials: SharedCredentialsProvider) -> Self {
        DaxConfig {
            endpoint: endpoint.to_string(),
            region: region.to_string(),
            credentials,
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(1),
            max_retries: 2,
            refresh_interval: Duration::from_secs(4),
            extra_root_certificates_pem: None,
            user_agent: USER_AGENT.to_string(),
        }
    }
}

/// A parsed `dax://` / `daxs://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

pub fn parse_url(url: &str) -> Result<ClusterUrl, DaxError> {
    let bad = || DaxError::Config(format!("not a dax:// or daxs:// URL: {url}"));
    let (tls, rest) = if let Some(r) = url.strip_prefix("daxs://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("dax://") {
        (false, r)
    } else {
        return Err(bad());
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().map_err(|_| bad())?),
        None => (rest, if tls { 9111 } else { 8111 }),
    };
    if host.is_empty() {
        return Err(bad());
    }
    Ok(ClusterUrl {
        tls,
        host: host.to_string(),
        port,
    })
}

#[derive(Debug, Default)]
struct NodeCaches {
    key_schemas: HashMap<String, (KeySchema, Instant)>,
    list_ids: HashMap<Vec<String>, i64>,
    lists: HashMap<i64, Vec<String>>,
}

#[derive(Debug)]
struct Node {
    addr: SocketAddr,
    hostname: String,
    leader: bool,
    idle: Mutex<Vec<Connection>>,
    caches: Mutex<NodeCaches>,
    unhealthy_until: Mutex<Option<Instant>>,
}

impl Node {
    fn healthy(&self) -> bool {
        lock(&self.unhealthy_until).is_none_or(|t| Instant::now() >= t)
    }
    fn mark_unhealthy(&self) {
        *lock(&self.unhealthy_until) = Some(Instant::now() + UNHEALTHY_FOR);
        lock(&self.idle).clear();
    }
}

/// A poisoned lock only means another task panicked while holding it; the data
/// (caches, idle connections) is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct Inner {
    config: DaxConfig,
    url: ClusterUrl,
    tls: Option<tokio_rustls::TlsConnector>,
    nodes: Mutex<Vec<Arc<Node>>>,
    creds: tokio::sync::Mutex<Option<(Credentials, Instant)>>,
    refresher: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaxClient")
            .field("endpoint", &self.config.endpoint)
            .field("nodes", &lock(&self.nodes).len())
            .finish()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(h) = lock(&self.refresher).take() {
            h.abort();
        }
    }
}

/// A DAX cluster client; cheap to clone.
#[derive(Debug, Clone)]
pub struct DaxClient {
    inner: Arc<Inner>,
    /// Reads go to the primary too ([`DaxClient::with_primary_reads`]).
    primary_reads: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Read,
    Write,
}

fn tls_connector(extra: Option<&[u8]>) -> Result<tokio_rustls::TlsConnector, DaxError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = extra {
        use rustls::pki_types::pem::PemObject;
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| DaxError::Config(format!("CA certificate: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| DaxError::Config(format!("CA certificate: {e}")))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| DaxError::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

impl DaxClient {
    /// Connects to the cluster endpoint, learns the nodes and starts following
    /// membership changes.
    pub async fn connect(config: DaxConfig) -> Result<DaxClient, DaxError> {
        let url = parse_url(&config.endpoint)?;
        let tls = if url.tls {
            Some(tls_connector(
                config.extra_root_certificates_pem.as_deref(),
            )?)
        } else {
            None
        };
        let inner = Arc::new(Inner {
            config,
            url,
            tls,
            nodes: Mutex::new(Vec::new()),
            creds: tokio::sync::Mutex::new(None),
            refresher: Mutex::new(None),
        });
        inner.refresh().await?;
        let weak = Arc::downgrade(&inner);
        let every = inner.config.refresh_interval;
        let handle = tokio::spawn(refresh_loop(weak, every));
        *lock(&inner.refresher) = Some(handle);
        Ok(DaxClient {
            inner,
            primary_reads: false,
        })
    }

    /// The same client with reads routed to the primary node, as writes are. DAX
    /// writes through the primary's item cache and replicates to the other nodes
    /// eventually ("usually takes less than one second", DynamoDB Developer Guide,
    /// DAX and DynamoDB consistency models:
    /// <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/DAX.consistency.html>),
    /// so an eventually consistent read on the primary sees every write made through
    /// DAX before it (read-your-writes), while still served from the item cache.
    /// (The official clients spread reads over all nodes; this is an addition.)
    pub fn with_primary_reads(&self) -> DaxClient {
        DaxClient {
            inner: self.inner.clone(),
            primary_reads: true,
        }
    }

    fn read_route(&self) -> Route {
        if self.primary_reads {
            Route::Write
        } else {
            Route::Read
        }
    }

    /// The nodes currently known, as `(address, is primary)`.
    pub fn nodes(&self) -> Vec<(SocketAddr, bool)> {
        lock(&self.inner.nodes)
            .iter()
            .map(|n| (n.addr, n.leader))
            .collect()
    }

    pub async fn get_item(&self, input: GetItemInput) -> Result<GetItemOutput, DaxError> {
        let table = required(input.table_name(), "TableName")?.to_string();
        let key = input.key().cloned().unwrap_or_default();
        let x = Expressions {
            projection: input.projection_expression(),
            names: input.expression_attribute_names(),
            ..Default::default()
        };
        if !input.attributes_to_get().is_empty() {
            return Err(DaxError::Validation(
                "AttributesToGet (legacy) is not supported; use ProjectionExpression".into(),
            ));
        }
        let paths = x
            .projection
            .map(|p| codec::projection_paths(p, x.names))
            .transpose()?;
        let consistent = input.consistent_read();
        let raw = self
            .inner
            .execute(
                self.read_route(),
                &table,
                |schema, _| codec::encode_get_item(&table, &key, schema, consistent, &x),
                Some(&key),
                Shape {
                    projection: paths.as_deref(),
                    ..Shape::default()
                },
            )
            .await?;
        Ok(GetItemOutput::builder().set_item(raw.item).build())
    }

    pub async fn put_item(&self, input: PutItemInput) -> Result<PutItemOutput, DaxError> {
        let table = required(input.table_name(), "TableName")?;
        let item = input.item().cloned().unwrap_or_default();
        let x = Expressions {
            condition: input.condition_expression(),
            names: input.expression_attribute_names(),
            values: input.expression_attribute_values(),
            ..Default::default()
        };
        let shape = Shape {
            put: true,
            ..Shape::default()
        };
        let rv = input.return_values();
        let attributes = self
            .write_item(method::PUT_ITEM, table, &item, &x, rv, shape)
            .await?;
        Ok(PutItemOutput::builder().set_attributes(attributes).build())
    }

    pub async fn delete_item(&self, input: DeleteItemInput) -> Result<DeleteItemOutput, DaxError> {
        let table = required(input.table_name(), "TableName")?;
        let key = input.key().cloned().unwrap_or_default();
        let x = Expressions {
            condition: input.condition_expression(),
            names: input.expression_attribute_names(),
            values: input.expression_attribute_values(),
            ..Default::default()
        };
        let rv = input.return_values();
        let attributes = self
            .write_item(method::DELETE_ITEM, table, &key, &x, rv, Shape::default())
            .await?;
        Ok(DeleteItemOutput::builder()
            .set_attributes(attributes)
            .build())
    }

    pub async fn query(&self, input: QueryInput) -> Result<QueryOutput, DaxError> {
        let table = required(input.table_name(), "TableName")?.to_string();
        let x = Expressions {
            key_condition: input.key_condition_expression(),
            filter: input.filter_expression(),
            projection: input.projection_expression(),
            names: input.expression_attribute_names(),
            values: input.expression_attribute_values(),
            ..Default::default()
        };
        if !input.attributes_to_get().is_empty() || input.select().is_some() {
            return Err(DaxError::Validation(
                "AttributesToGet and Select are not supported by this client yet".into(),
            ));
        }
        let paths = x
            .projection
            .map(|p| codec::projection_paths(p, x.names))
            .transpose()?;
        let o = QueryOptions {
            index_name: input.index_name().map(str::to_string),
            limit: input.limit(),
            consistent_read: input.consistent_read(),
            scan_index_forward: input.scan_index_forward(),
            exclusive_start_key: input.exclusive_start_key().cloned(),
        };
        let raw = self
            .inner
            .execute(
                self.read_route(),
                &table,
                |schema, _| codec::encode_query(&table, schema, &o, &x),
                None,
                Shape {
                    projection: paths.as_deref(),
                    ..Shape::default()
                },
            )
            .await?;
        let r = raw;
        Ok(QueryOutput::builder()
            .set_items(r.items)
            .count(r.count.unwrap_or(0) as i32)
            .scanned_count(r.scanned_count.unwrap_or(0) as i32)
            .set_last_evaluated_key(r.last_evaluated_key)
            .build())
    }

    /// UpdateItem with an `UpdateExpression` (SET, REMOVE, ADD, DELETE), an optional
    /// `ConditionExpression` and `ReturnValues`; written to the primary.
    pub async fn update_item(&self, input: UpdateItemInput) -> Result<UpdateItemOutput, DaxError> {
        let table = required(input.table_name(), "TableName")?;
        if input.attribute_updates.is_some() || input.expected.is_some() {
            return Err(DaxError::Validation(
                "AttributeUpdates and Expected (legacy parameters) are not supported; use UpdateExpression and ConditionExpression".into(),
            ));
        }
        let key = input.key().cloned().unwrap_or_default();
        let x = Expressions {
            condition: input.condition_expression(),
            update: input.update_expression(),
            names: input.expression_attribute_names(),
            values: input.expression_attribute_values(),
            ..Default::default()
        };
        // UPDATED_OLD / UPDATED_NEW come back by attribute ordinal, without the key.
        let shape = Shape {
            partial: matches!(
                input.return_values(),
                Some(ReturnValue::UpdatedOld | ReturnValue::UpdatedNew)
            ),
            ..Shape::default()
        };
        let rv = input.return_values();
        let attributes = self
            .write_item(method::UPDATE_ITEM, table, &key, &x, rv, shape)
            .await?;
        Ok(UpdateItemOutput::builder()
            .set_attributes(attributes)
            .build())
    }

    /// PutItem, DeleteItem and UpdateItem: one request of `method` on `table`,
    /// written on the primary, for `item` (PutItem's whole item, whose values go
    /// under their attribute list's id as `shape.put` says, or the key); the
    /// attributes `ReturnValues` asked for come back.
    async fn write_item(
        &self,
        method: i64,
        table: &str,
        item: &Item,
        x: &Expressions<'_>,
        return_values: Option<&ReturnValue>,
        shape: Shape<'_>,
    ) -> Result<Option<Item>, DaxError> {
        let rv = return_values.map(ReturnValue::as_str);
        let raw = self
            .inner
            .execute(
                Route::Write,
                table,
                |schema, values| {
                    let values = shape.put.then(|| values.unwrap_or_default());
                    codec::encode_write(method, table, item, schema, values, rv, x)
                },
                Some(item),
                shape,
            )
            .await?;
        Ok(raw.attributes)
    }

    /// BatchGetItem: several keys over one or more tables, read like GetItem (any
    /// node, or the primary with [`DaxClient::with_primary_reads`]). Keys DAX did
    /// not read come back in `unprocessed_keys`, with the table's request options,
    /// for the caller to retry. Tables are sent in name order.
    pub async fn batch_get_item(
        &self,
        input: BatchGetItemInput,
    ) -> Result<BatchGetItemOutput, DaxError> {
        let items = input.request_items.unwrap_or_default();
        let mut tables: Vec<(String, KeysAndAttributes)> = items.into_iter().collect();
        tables.sort_by(|a, b| a.0.cmp(&b.0));
        let mut paths = HashMap::new();
        for (name, t) in &tables {
            if !t.attributes_to_get().is_empty() {
                return Err(DaxError::Validation(format!(
                    "AttributesToGet (legacy, table {name}) is not supported; use ProjectionExpression"
                )));
            }
            if let Some(p) = t.projection_expression() {
                let p = codec::projection_paths(p, t.expression_attribute_names())?;
                paths.insert(name.clone(), p);
            }
        }
        let (tables, paths) = (&tables, &paths);
        let (responses, unprocessed) = self
            .inner
            .retrying(self.read_route(), |node| async move {
                self.inner.attempt_batch_get(&node, tables, paths).await
            })
            .await?;
        let mut out_unprocessed = HashMap::new();
        for (name, keys) in unprocessed {
            let asked = tables.iter().find(|(n, _)| *n == name).map(|(_, t)| t);
            let kaa = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .set_consistent_read(asked.and_then(|t| t.consistent_read()))
                .set_expression_attribute_names(
                    asked.and_then(|t| t.expression_attribute_names().cloned()),
                )
                .set_projection_expression(
                    asked.and_then(|t| t.projection_expression().map(str::to_string)),
                )
                .build()
                .map_err(|e| DaxError::Protocol(e.to_string()))?;
            out_unprocessed.insert(name, kaa);
        }
        Ok(BatchGetItemOutput::builder()
            .set_responses(Some(responses.into_iter().collect()))
            .set_unprocessed_keys(Some(out_unprocessed))
            .build())
    }

    /// BatchWriteItem: up to 25 puts and deletes over one or more tables, written to
    /// the primary. Writes DAX did not make come back in `unprocessed_items` (puts
    /// with their whole item, key included) for the caller to retry. Tables are sent
    /// in name order, each table's writes in the order given.
    pub async fn batch_write_item(
        &self,
        input: BatchWriteItemInput,
    ) -> Result<BatchWriteItemOutput, DaxError> {
        let ricm = input
            .return_item_collection_metrics()
            .map(|r| r.as_str().to_string());
        let items = input.request_items.unwrap_or_default();
        let mut tables: Vec<(String, Vec<WriteRequest>)> = items.into_iter().collect();
        tables.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, writes) in &tables {
            for w in writes {
                if w.put_request().is_some() == w.delete_request().is_some() {
                    return Err(DaxError::Validation(format!(
                        "each write request (table {name}) must hold exactly one of PutRequest and DeleteRequest"
                    )));
                }
            }
        }
        let tables = &tables;
        let ricm = ricm.as_deref();
        let unprocessed = self
            .inner
            .retrying(Route::Write, |node| async move {
                self.inner.attempt_batch_write(&node, tables, ricm).await
            })
            .await?;
        let mut out = HashMap::new();
        for (name, writes) in unprocessed {
            let mut list = Vec::with_capacity(writes.len());
            for w in writes {
                let bad =
                    |e: aws_sdk_dynamodb::error::BuildError| DaxError::Protocol(e.to_string());
                list.push(match w {
                    Unprocessed::Put(item) => WriteRequest::builder()
                        .put_request(
                            PutRequest::builder()
                                .set_item(Some(item))
                                .build()
                                .map_err(bad)?,
                        )
                        .build(),
                    Unprocessed::Delete(key) => WriteRequest::builder()
                        .delete_request(
                            DeleteRequest::builder()
                                .set_key(Some(key))
                                .build()
                                .map_err(bad)?,
                        )
                        .build(),
                });
            }
            out.insert(name, list);
        }
        Ok(BatchWriteItemOutput::builder()
            .set_unprocessed_items(Some(out))
            .build())
    }
}

/// An unprocessed write, resolved.
#[derive(Debug)]
enum Unprocessed {
    Put(Item),
    Delete(Item),
}

type TableItems = Vec<(String, Vec<Item>)>;

fn required<'a>(v: Option<&'a str>, name: &str) -> Result<&'a str, DaxError> {
    v.filter(|s| !s.is_empty())
        .ok_or_else(|| DaxError::Validation(format!("{name} is required")))
}

async fn refresh_loop(inner: Weak<Inner>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(inner) = inner.upgrade() else { return };
        if let Err(e) = inner.refresh().await {
            tracing::warn!(error = %e, "DAX endpoint refresh failed; keeping the known nodes");
        }
    }
}

/// A decoded response with its items named.
#[derive(Debug, Default)]
struct Resolved {
    item: Option<Item>,
    attributes: Option<Item>,
    items: Option<Vec<Item>>,
    count: Option<i64>,
    scanned_count: Option<i64>,
    last_evaluated_key: Option<Item>,
}

/// How to read a response: PutItem's values go under an attribute list id (`put`);
/// UpdateItem's UPDATED_* attributes come by ordinal (`partial`); a projection's
/// items come by path ordinal (`projection`).
#[derive(Debug, Default, Clone, Copy)]
struct Shape<'a> {
    put: bool,
    partial: bool,
    projection: Option<&'a [Vec<PathElement>]>,
}

impl Inner {
    async fn credentials(&self) -> Result<Credentials, DaxError> {
        let mut cached = self.creds.lock().await;
        if let Some((c, at)) = cached.as_ref() {
            let fresh = match c.expiry() {
                Some(exp) => exp > SystemTime::now() + Duration::from_secs(300),
                None => at.elapsed() < Duration::from_secs(3600),
            };
            if fresh {
                return Ok(c.clone());
            }
        }
        let c = self
            .config
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| DaxError::Credentials(e.to_string()))?;
        *cached = Some((c.clone(), Instant::now()));
        Ok(c)
    }

    async fn open(&self, addr: SocketAddr, hostname: &str) -> Result<Connection, DaxError> {
        let tls = self.tls.as_ref().map(|t| (t, hostname));
        Connection::open(
            addr,
            tls,
            &self.config.user_agent,
            self.config.connect_timeout,
        )
        .await
    }

    async fn call(
        &self,
        conn: &mut Connection,
        request: &[u8],
    ) -> Result<crate::cbor::Value, DaxError> {
        let creds = self.credentials().await?;
        conn.call(
            &creds,
            &self.config.region,
            &self.config.user_agent,
            request,
            self.config.request_timeout,
        )
        .await
    }

    /// Asks a known node (else the discovery endpoint) for the cluster's nodes.
    async fn refresh(&self) -> Result<(), DaxError> {
        // Known nodes first (on a pooled connection), then the discovery endpoint.
        let mut sources: Vec<(SocketAddr, String, Option<Arc<Node>>)> = lock(&self.nodes)
            .iter()
            .filter(|n| n.healthy())
            .map(|n| (n.addr, n.hostname.clone(), Some(n.clone())))
            .collect();
        fastrand::shuffle(&mut sources);
        let seeds = (self.url.host.as_str(), self.url.port)
            .to_socket_addrs()
            .map_err(|e| DaxError::Config(format!("resolve {}: {e}", self.url.host)))?;
        sources.extend(seeds.map(|a| (a, self.url.host.clone(), None)));
        let mut last = DaxError::NoRoute(format!("{} resolves to no address", self.url.host));
        for (addr, host, node) in sources {
            let attempt = async {
                let pooled = node.as_ref().and_then(|n| lock(&n.idle).pop());
                let mut conn = match pooled {
                    Some(c) => c,
                    None => self.open(addr, &host).await?,
                };
                let body = self.call(&mut conn, &codec::encode_endpoints()).await?;
                if let Some(n) = &node {
                    self.recycle(n, conn);
                }
                codec::decode_endpoints(&body)
            };
            match attempt.await {
                Ok(eps) if !eps.is_empty() => {
                    self.set_nodes(eps);
                    return Ok(());
                }
                Ok(_) => last = DaxError::NoRoute("the cluster listed no nodes".into()),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn set_nodes(&self, eps: Vec<codec::Endpoint>) {
        let mut nodes = lock(&self.nodes);
        let old = std::mem::take(&mut *nodes);
        for ep in eps {
            let addr = SocketAddr::new(ep.address, ep.port);
            let leader = ep.role == codec::ROLE_LEADER;
            // A node that stays keeps its connections and caches.
            match old.iter().find(|n| n.addr == addr && n.leader == leader) {
                Some(n) => nodes.push(n.clone()),
                None => {
                    tracing::info!(%addr, leader, "DAX node joined");
                    nodes.push(Arc::new(Node {
                        addr,
                        // TLS names the node as the cluster lists it (the official
                        // clients verify the node's hostname).
                        hostname: if ep.hostname.is_empty() {
                            self.url.host.clone()
                        } else {
                            ep.hostname
                        },
                        leader,
                        idle: Mutex::new(Vec::new()),
                        caches: Mutex::new(NodeCaches::default()),
                        unhealthy_until: Mutex::new(None),
                    }))
                }
            }
        }
    }

    fn pick(&self, route: Route, avoid: Option<&Arc<Node>>) -> Result<Arc<Node>, DaxError> {
        let nodes = lock(&self.nodes);
        let eligible: Vec<&Arc<Node>> = nodes
            .iter()
            .filter(|n| route == Route::Read || n.leader)
            .collect();
        let healthy: Vec<&&Arc<Node>> = eligible
            .iter()
            .filter(|n| n.healthy() && avoid.is_none_or(|a| !Arc::ptr_eq(a, n)))
            .collect();
        let pool: Vec<&Arc<Node>> = if healthy.is_empty() {
            // Everything is marked unhealthy: try anyway rather than fail outright.
            eligible.clone()
        } else {
            healthy.into_iter().copied().collect()
        };
        if pool.is_empty() {
            return Err(DaxError::NoRoute(match route {
                Route::Read => "no DAX nodes known".into(),
                Route::Write => "no DAX primary known".into(),
            }));
        }
        Ok(pool[fastrand::usize(..pool.len())].clone())
    }

    async fn key_schema(
        &self,
        node: &Node,
        conn: &mut Connection,
        table: &str,
    ) -> Result<KeySchema, DaxError> {
        if let Some((s, at)) = lock(&node.caches).key_schemas.get(table) {
            if at.elapsed() < KEY_SCHEMA_TTL {
                return Ok(s.clone());
            }
        }
        let body = self
            .call(conn, &codec::encode_define_key_schema(table))
            .await?;
        let schema = codec::decode_key_schema(&body)?;
        lock(&node.caches)
            .key_schemas
            .insert(table.to_string(), (schema.clone(), Instant::now()));
        Ok(schema)
    }

    async fn list_id(
        &self,
        node: &Node,
        conn: &mut Connection,
        names: &[String],
    ) -> Result<i64, DaxError> {
        if names.is_empty() {
            return Ok(codec::EMPTY_ATTRIBUTE_LIST_ID);
        }
        if let Some(id) = lock(&node.caches).list_ids.get(names) {
            return Ok(*id);
        }
        let body = self
            .call(conn, &codec::encode_define_attribute_list_id(names))
            .await?;
        let id = body
            .as_int()
            .and_then(|i| i64::try_from(i).ok())
            .ok_or_else(|| DaxError::Protocol("attribute list id is not an integer".into()))?;
        // Only this direction is cached: the official client keeps the two caches
        // apart, so a list it defined is asked for again when a response names it
        // (same requests, same bytes).
        lock(&node.caches).list_ids.insert(names.to_vec(), id);
        Ok(id)
    }

    async fn list(
        &self,
        node: &Node,
        conn: &mut Connection,
        id: i64,
    ) -> Result<Vec<String>, DaxError> {
        if id == codec::EMPTY_ATTRIBUTE_LIST_ID {
            return Ok(Vec::new());
        }
        if let Some(l) = lock(&node.caches).lists.get(&id) {
            return Ok(l.clone());
        }
        let body = self
            .call(conn, &codec::encode_define_attribute_list(id))
            .await?;
        let names = codec::decode_string_list(&body)?;
        lock(&node.caches).lists.insert(id, names.clone());
        Ok(names)
    }

    async fn resolve(
        &self,
        node: &Node,
        conn: &mut Connection,
        raw: Option<RawItem>,
        projection: Option<&[Vec<PathElement>]>,
    ) -> Result<Option<Item>, DaxError> {
        match raw {
            None => Ok(None),
            // The key is not put back: a projection returns what it names.
            Some(RawItem::Projected(values)) => match projection {
                Some(paths) => Ok(Some(codec::projected_item(values, paths)?)),
                None => Err(DaxError::Protocol(
                    "projected item for a request without projection".into(),
                )),
            },
            Some(RawItem::Stream { key, values }) => {
                let names = self.list(node, conn, values.list_id).await?;
                let mut item = values.named(&names)?;
                item.extend(key);
                Ok(Some(item))
            }
            // Nothing updated: an empty map, and no list to look up (as the official
            // client: `_decode_stream_item_projection`).
            Some(RawItem::Partial { values, .. }) if values.is_empty() => Ok(Some(Item::new())),
            Some(RawItem::Partial { list_id, values }) => {
                let names = self.list(node, conn, list_id).await?;
                let mut item = Item::new();
                for (ord, v) in values {
                    let name = names.get(ord).ok_or_else(|| {
                        DaxError::Protocol(format!(
                            "attribute ordinal {ord} outside attribute list {list_id}"
                        ))
                    })?;
                    item.insert(name.clone(), v);
                }
                Ok(Some(item))
            }
        }
    }

    async fn checkout(&self, node: &Node) -> Result<Connection, DaxError> {
        let pooled = lock(&node.idle).pop();
        match pooled {
            Some(c) => Ok(c),
            None => self.open(node.addr, &node.hostname).await,
        }
    }

    /// The request on `conn`; the connection goes back to the pool after a DAX
    /// error (it is still in step), and is dropped after a transport failure.
    async fn call_data(
        &self,
        node: &Node,
        mut conn: Connection,
        request: &[u8],
        values: usize,
    ) -> Result<(Connection, Vec<crate::cbor::Value>), DaxError> {
        let creds = self.credentials().await?;
        let body = conn
            .call_many(
                &creds,
                &self.config.region,
                &self.config.user_agent,
                request,
                self.config.request_timeout,
                values,
            )
            .await;
        match body {
            Ok(b) => Ok((conn, b)),
            Err(e) => {
                if !e.is_transport() {
                    self.recycle(node, conn);
                }
                Err(e)
            }
        }
    }

    /// The key schemas of `tables`, in order (the official client asks for each
    /// table's before writing a batch).
    async fn schemas<'t>(
        &self,
        node: &Node,
        conn: &mut Connection,
        tables: impl Iterator<Item = &'t str>,
    ) -> Result<HashMap<String, KeySchema>, DaxError> {
        let mut out = HashMap::new();
        for t in tables {
            let s = self.key_schema(node, conn, t).await?;
            out.insert(t.to_string(), s);
        }
        Ok(out)
    }

    async fn attempt_batch_get(
        &self,
        node: &Arc<Node>,
        tables: &[(String, KeysAndAttributes)],
        paths: &HashMap<String, Vec<Vec<PathElement>>>,
    ) -> Result<(TableItems, TableItems), DaxError> {
        let mut conn = self.checkout(node).await?;
        let schemas = self
            .schemas(node, &mut conn, tables.iter().map(|(n, _)| n.as_str()))
            .await?;
        let request_tables: Vec<BatchGetTable<'_>> = tables
            .iter()
            .map(|(name, t)| BatchGetTable {
                name,
                schema: &schemas[name.as_str()],
                consistent_read: t.consistent_read().unwrap_or(false),
                projection: t.projection_expression(),
                names: t.expression_attribute_names(),
                keys: t.keys(),
            })
            .collect();
        let request = codec::encode_batch_get_item(&request_tables)?;
        let (mut conn, body) = self.call_data(node, conn, &request, 2).await?;
        let first = body.first().cloned().unwrap_or(crate::cbor::Value::Null);
        let projected: Vec<&str> = paths.keys().map(String::as_str).collect();
        let raw = codec::decode_batch_get(&first, &schemas, &projected)?;
        // Resolved in the server's order, as the official client resolves them (the
        // same attribute-list calls in the same order).
        let mut responses = Vec::with_capacity(raw.responses.len());
        for (name, items) in raw.responses {
            let mut list = Vec::with_capacity(items.len());
            let projection = paths.get(&name).map(Vec::as_slice);
            for i in items {
                if let Some(i) = self.resolve(node, &mut conn, Some(i), projection).await? {
                    list.push(i);
                }
            }
            responses.push((name, list));
        }
        self.recycle(node, conn);
        Ok((responses, raw.unprocessed))
    }

    async fn attempt_batch_write(
        &self,
        node: &Arc<Node>,
        tables: &[(String, Vec<WriteRequest>)],
        ricm: Option<&str>,
    ) -> Result<Vec<(String, Vec<Unprocessed>)>, DaxError> {
        let mut conn = self.checkout(node).await?;
        let schemas = self
            .schemas(node, &mut conn, tables.iter().map(|(n, _)| n.as_str()))
            .await?;
        // Then every put's attribute list id, in order (as the official client).
        let mut request_tables = Vec::with_capacity(tables.len());
        for (name, writes) in tables {
            let schema = &schemas[name.as_str()];
            let mut out = Vec::with_capacity(writes.len());
            for w in writes {
                if let Some(item) = w.put_request().map(|p| p.item()) {
                    let names = codec::attribute_names(item, schema);
                    let id = self.list_id(node, &mut conn, &names).await?;
                    out.push(BatchWrite::Put {
                        item,
                        values: codec::encode_values(item, &names, id)?,
                    });
                } else if let Some(key) = w.delete_request().map(|d| d.key()) {
                    out.push(BatchWrite::Delete { key });
                }
            }
            request_tables.push(BatchWriteTable {
                name,
                schema,
                writes: out,
            });
        }
        let request = codec::encode_batch_write_item(&request_tables, ricm)?;
        let (mut conn, body) = self.call_data(node, conn, &request, 3).await?;
        let first = body.first().cloned().unwrap_or(crate::cbor::Value::Null);
        let raw = codec::decode_batch_write(&first, &schemas)?;
        let mut out = Vec::with_capacity(raw.len());
        for (name, writes) in raw {
            let mut list = Vec::with_capacity(writes.len());
            for w in writes {
                list.push(match w {
                    RawWrite::Delete { key } => Unprocessed::Delete(key),
                    RawWrite::Put { key, values } => {
                        // The key too: the official Go client puts it back; the
                        // Python client (2.1.0) leaves it out (dax/README.md).
                        let names = self.list(node, &mut conn, values.list_id).await?;
                        let mut item = values.named(&names)?;
                        item.extend(key);
                        Unprocessed::Put(item)
                    }
                });
            }
            out.push((name, list));
        }
        self.recycle(node, conn);
        Ok(out)
    }

    /// One attempt on one node.
    async fn attempt<F>(
        &self,
        node: &Arc<Node>,
        table: &str,
        encode: &F,
        item: Option<&Item>,
        shape: Shape<'_>,
    ) -> Result<Resolved, DaxError>
    where
        F: Fn(&KeySchema, Option<&[u8]>) -> Result<Vec<u8>, DaxError>,
    {
        let mut conn = self.checkout(node).await?;
        let schema = self.key_schema(node, &mut conn, table).await?;
        // PutItem: the values under their attribute list's id.
        let values = match item {
            Some(item) if shape.put => {
                let names = codec::attribute_names(item, &schema);
                let id = self.list_id(node, &mut conn, &names).await?;
                Some(codec::encode_values(item, &names, id)?)
            }
            _ => None,
        };
        let request = encode(&schema, values.as_deref())?;
        let (mut conn, body) = self.call_data(node, conn, &request, 1).await?;
        let body = body.into_iter().next().unwrap_or(crate::cbor::Value::Null);
        let raw: RawResponse = codec::decode_normal(
            &body,
            item.map(|i| key_only(i, &schema)).as_ref(),
            &schema,
            shape.partial,
        )?;
        let out = Resolved {
            item: self
                .resolve(node, &mut conn, raw.item, shape.projection)
                .await?,
            attributes: self.resolve(node, &mut conn, raw.attributes, None).await?,
            items: match raw.items {
                None => None,
                Some(items) => {
                    let mut v = Vec::with_capacity(items.len());
                    for i in items {
                        if let Some(i) = self
                            .resolve(node, &mut conn, Some(i), shape.projection)
                            .await?
                        {
                            v.push(i);
                        }
                    }
                    Some(v)
                }
            },
            count: raw.count,
            scanned_count: raw.scanned_count,
            last_evaluated_key: raw.last_evaluated_key,
        };
        self.recycle(node, conn);
        Ok(out)
    }

    fn recycle(&self, node: &Node, conn: Connection) {
        let mut idle = lock(&node.idle);
        if idle.len() < MAX_IDLE_PER_NODE {
            idle.push(conn);
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn execute<F>(
        &self,
        route: Route,
        table: &str,
        encode: F,
        item: Option<&Item>,
        shape: Shape<'_>,
    ) -> Result<Resolved, DaxError>
    where
        F: Fn(&KeySchema, Option<&[u8]>) -> Result<Vec<u8>, DaxError>,
    {
        let encode = &encode;
        self.retrying(route, |node| async move {
            self.attempt(&node, table, encode, item, shape).await
        })
        .await
    }

    /// Runs `attempt` on a node picked for `route`, retrying as the official
    /// clients retry (see the module docs) and routing around failed nodes.
    async fn retrying<T, A, Fut>(&self, route: Route, mut attempt: A) -> Result<T, DaxError>
    where
        A: FnMut(Arc<Node>) -> Fut,
        Fut: Future<Output = Result<T, DaxError>>,
    {
        let mut attempts = 0u32;
        let mut last_node: Option<Arc<Node>> = None;
        loop {
            let node = self.pick(route, last_node.as_ref())?;
            match attempt(node.clone()).await {
                Ok(r) => return Ok(r),
                Err(e) => {
                    if e.is_transport() {
                        tracing::warn!(node = %node.addr, error = %e, "DAX node failed; routing around it");
                        node.mark_unhealthy();
                    }
                    if attempts >= self.config.max_retries || !e.is_retryable() {
                        return Err(e);
                    }
                    attempts += 1;
                    if e.kind().is_some_and(ErrorKind::is_throttling) {
                        tokio::time::sleep(backoff(attempts)).await;
                    }
                    last_node = Some(node);
                }
            }
        }
    }
}

/// Equal jitter: half of `min(cap, base * 2^attempt)` plus a random part of the other
/// half (<https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/>).
pub fn backoff(attempt: u32) -> Duration {
    let temp = THROTTLE_BASE
        .saturating_mul(2u32.saturating_pow(attempt))
        .min(BACKOFF_CAP);
    let half = temp / 2;
    half + Duration::from_millis(fastrand::u64(..=half.as_millis() as u64))
}

fn key_only(item: &Item, schema: &KeySchema) -> Item {
    schema
        .names()
        .filter_map(|n| item.get(n).map(|v| (n.to_string(), v.clone())))
        .collect()
}
