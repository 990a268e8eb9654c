//! [`DaxSessionStore`]: conversation memory (PO-04) through the memory stack's DAX
//! cluster (`MANGA_DAX_ENDPOINT`, `daxs://`), with the `mangactl-dax` client; the
//! same table and turn items as [`super::dynamodb::DynamoSessionStore`], which is
//! also this store's fallback when DAX is unreachable.
//!
//! Consistency design (facts: DynamoDB Developer Guide, "DAX and DynamoDB
//! consistency models",
//! <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/DAX.consistency.html>):
//! - writes go through DAX: a write straight to DynamoDB would leave DAX's item cache
//!   stale until its TTL;
//! - a write through DAX updates the *primary's* item cache and reaches the other
//!   nodes eventually, so every session read here goes to the primary
//!   ([`DaxClient::with_primary_reads`]): an eventually consistent GetItem there
//!   sees every write made through DAX before it, and is served from the item cache;
//! - the query cache is not refreshed by writes, so the turns are not listed with a
//!   cached Query: each session has a *head* item (sort key `turn = 0`) listing its
//!   latest turn numbers; a load is one GetItem of the head and one GetItem per turn
//!   (turn items never change once written, so cached copies are always right);
//! - misses are cached too (negative caching): the head is written after the turn it
//!   lists, so no turn is read before it exists; a new session's cached "no head" is
//!   replaced by the write-through of its first head;
//! - strongly consistent reads pass through to DynamoDB uncached: used where
//!   freshness matters more than latency and off the answer's path (the head read
//!   before it is rewritten, the idempotency check), and for a session without a
//!   head (written before this store existed, or new): one consistent Query.
//!
//! DAX unreachable (connection refused, timed out, no node): the call is made on
//! DynamoDB directly, counted in `manga_dax_fallbacks_total`, logged, and reported
//! as [`Served::Fallback`] (the message's `done.degraded` then says
//! `memory_fallback`). A write made
//! then leaves DAX's cached head stale for at most the item cache TTL (the memory
//! stack's parameter group: `record-ttl-millis`, which sizing sets just long enough
//! for the oldest history turn read to be cached still: 4 minutes at 2 messages a minute).

use super::dynamodb::{
    item_to_turn, turn_to_item, DynamoSessionStore, HASH_KEY, RANGE_KEY, TTL_ATTRIBUTE, TURN_ID,
};
use crate::backends::{BackendError, Served, SessionStore};
use crate::domain::{epoch_micros, Turn};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::get_item::builders::GetItemInputBuilder;
use aws_sdk_dynamodb::operation::get_item::{GetItemInput, GetItemOutput};
use aws_sdk_dynamodb::operation::put_item::builders::PutItemInputBuilder;
use aws_sdk_dynamodb::operation::put_item::{PutItemInput, PutItemOutput};
use aws_sdk_dynamodb::operation::query::builders::QueryInputBuilder;
use aws_sdk_dynamodb::operation::query::{QueryInput, QueryOutput};
use aws_sdk_dynamodb::types::AttributeValue;
use mangactl_dax::{DaxClient, DaxConfig, DaxError, ErrorKind};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The head item's sort key.
pub const HEAD_TURN: &str = "0";
/// The head's attributes: the latest turn numbers (ascending) and a version for
/// conditional rewrites.
pub const HEAD_TURNS: &str = "turns";
pub const HEAD_VERSION: &str = "version";
/// Turn numbers listed in a head (the pipeline reads far fewer).
const HEAD_KEEP: usize = 50;
const READY_KEY: &str = "__readyz__";
/// Between attempts to reach the cluster while it is unreachable at start.
const RECONNECT_EVERY: Duration = Duration::from_secs(5);

/// Counts of calls that went to DynamoDB directly because DAX was unreachable.
#[derive(Debug, Default)]
pub struct DaxFallbacks {
    pub load: AtomicU64,
    pub append: AtomicU64,
}

#[derive(Debug)]
pub struct DaxSessionStore {
    dax: Arc<RwLock<Option<DaxClient>>>,
    ddb: aws_sdk_dynamodb::Client,
    direct: DynamoSessionStore,
    table: String,
    ttl: Duration,
    fallbacks: Arc<DaxFallbacks>,
    connector: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for DaxSessionStore {
    fn drop(&mut self) {
        if let Some(h) = self.connector.take() {
            h.abort();
        }
    }
}

/// A call's failure: DAX unreachable (go direct), the condition failed, or else.
#[derive(Debug)]
enum Failure {
    Unreachable(String),
    ConditionFailed,
    Other(String),
}

fn from_dax(e: DaxError) -> Failure {
    match e.kind() {
        Some(ErrorKind::ConditionalCheckFailed) => Failure::ConditionFailed,
        _ if e.is_transport() || matches!(e, DaxError::NoRoute(_) | DaxError::Credentials(_)) => {
            Failure::Unreachable(e.to_string())
        }
        _ => Failure::Other(e.to_string()),
    }
}

fn from_sdk<E>(e: aws_sdk_dynamodb::error::SdkError<E>) -> Failure
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + 'static,
{
    if e.as_service_error().and_then(|s| s.code()) == Some("ConditionalCheckFailedException") {
        return Failure::ConditionFailed;
    }
    Failure::Other(super::describe(&e))
}

/// Where a call goes: the DAX primary, or DynamoDB directly.
#[derive(Debug, Clone, Copy)]
enum Via<'a> {
    Dax(&'a DaxClient),
    Direct(&'a aws_sdk_dynamodb::Client),
}

impl Via<'_> {
    async fn get(self, b: GetItemInputBuilder) -> Result<GetItemOutput, Failure> {
        match self {
            Via::Dax(c) => c.get_item(built(b.build())?).await.map_err(from_dax),
            Via::Direct(c) => b.send_with(c).await.map_err(from_sdk),
        }
    }
    async fn put(self, b: PutItemInputBuilder) -> Result<PutItemOutput, Failure> {
        match self {
            Via::Dax(c) => c.put_item(built(b.build())?).await.map_err(from_dax),
            Via::Direct(c) => b.send_with(c).await.map_err(from_sdk),
        }
    }
    async fn query(self, b: QueryInputBuilder) -> Result<QueryOutput, Failure> {
        match self {
            Via::Dax(c) => c.query(built(b.build())?).await.map_err(from_dax),
            Via::Direct(c) => b.send_with(c).await.map_err(from_sdk),
        }
    }
}

fn epoch_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn built<T>(r: Result<T, aws_sdk_dynamodb::error::BuildError>) -> Result<T, Failure> {
    r.map_err(|e| Failure::Other(e.to_string()))
}

fn key(session: &str, turn: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (HASH_KEY.to_string(), AttributeValue::S(session.to_string())),
        (RANGE_KEY.to_string(), AttributeValue::N(turn.to_string())),
    ])
}

fn number(v: Option<&AttributeValue>) -> Option<u64> {
    match v {
        Some(AttributeValue::N(n)) => n.parse().ok(),
        _ => None,
    }
}

/// A head's turn numbers and version.
fn head_of(item: &HashMap<String, AttributeValue>) -> (Vec<u64>, u64) {
    let turns = match item.get(HEAD_TURNS) {
        Some(AttributeValue::L(l)) => l.iter().filter_map(|v| number(Some(v))).collect(),
        _ => Vec::new(),
    };
    (turns, number(item.get(HEAD_VERSION)).unwrap_or(0))
}

impl DaxSessionStore {
    /// Starts connecting to the cluster in the background: until it answers, calls go
    /// to DynamoDB directly (counted as fallbacks).
    pub fn new(
        sdk: &aws_config::SdkConfig,
        endpoint: &str,
        table: &str,
        ttl: Duration,
    ) -> Result<Self, BackendError> {
        let credentials = sdk
            .credentials_provider()
            .ok_or_else(|| BackendError::Invalid("no AWS credentials provider for DAX".into()))?;
        let region = sdk
            .region()
            .map(|r| r.to_string())
            .ok_or_else(|| BackendError::Invalid("no AWS region for DAX".into()))?;
        let config = DaxConfig::new(endpoint, &region, credentials);
        mangactl_dax::client::parse_url(endpoint)
            .map_err(|e| BackendError::Invalid(e.to_string()))?;
        Ok(Self::with_config(sdk, config, table, ttl))
    }

    pub fn with_config(
        sdk: &aws_config::SdkConfig,
        config: DaxConfig,
        table: &str,
        ttl: Duration,
    ) -> Self {
        let dax = Arc::new(RwLock::new(None));
        let slot = dax.clone();
        let connector = tokio::spawn(async move {
            loop {
                match DaxClient::connect(config.clone()).await {
                    Ok(c) => {
                        tracing::info!(endpoint = %config.endpoint, nodes = c.nodes().len(), "DAX cluster connected");
                        *slot.write().unwrap_or_else(|p| p.into_inner()) =
                            Some(c.with_primary_reads());
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(endpoint = %config.endpoint, error = %e, "DAX unreachable; sessions use DynamoDB directly until it answers");
                        tokio::time::sleep(RECONNECT_EVERY).await;
                    }
                }
            }
        });
        DaxSessionStore {
            dax,
            ddb: aws_sdk_dynamodb::Client::new(sdk),
            direct: DynamoSessionStore::new(sdk, table, ttl),
            table: table.to_string(),
            ttl,
            fallbacks: Arc::new(DaxFallbacks::default()),
            connector: Some(connector),
        }
    }

    /// Whether the cluster has answered (until then calls go to DynamoDB directly).
    pub fn connected(&self) -> bool {
        self.client().is_some()
    }

    /// The fallback counters, for `/metrics`.
    pub fn fallbacks(&self) -> Arc<DaxFallbacks> {
        self.fallbacks.clone()
    }

    fn client(&self) -> Option<DaxClient> {
        self.dax.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn error(&self, operation: &str, message: String) -> BackendError {
        BackendError::Unavailable(format!("DAX {operation} on {}: {message}", self.table))
    }

    async fn load_via(
        &self,
        via: Via<'_>,
        session: &str,
        max_turns: usize,
    ) -> Result<Vec<Turn>, Failure> {
        let head = via
            .get(
                GetItemInput::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(session, HEAD_TURN))),
            )
            .await?;
        let Some(head) = head.item() else {
            return self.query_via(via, session, max_turns).await;
        };
        let (numbers, _) = head_of(head);
        let wanted: Vec<u64> = numbers.iter().rev().take(max_turns).copied().collect();
        let gets = wanted.iter().map(|n| async move {
            let input = GetItemInput::builder()
                .table_name(&self.table)
                .set_key(Some(key(session, &n.to_string())));
            via.get(input).await
        });
        let now = epoch_secs(SystemTime::now());
        let mut turns = Vec::new();
        for r in futures_util::future::join_all(gets).await {
            if let Some(item) = r?.item() {
                if number(item.get(TTL_ATTRIBUTE)).is_some_and(|e| e <= now) {
                    continue;
                }
                turns.push(item_to_turn(item).map_err(Failure::Other)?);
            }
        }
        turns.sort_by_key(|t| t.at_us);
        Ok(turns)
    }

    /// A session without a head: one consistent Query (uncached, through to DynamoDB).
    async fn query_via(
        &self,
        via: Via<'_>,
        session: &str,
        max_turns: usize,
    ) -> Result<Vec<Turn>, Failure> {
        let input = QueryInput::builder()
            .table_name(&self.table)
            .key_condition_expression("#k = :k AND #t > :z")
            .expression_attribute_names("#k", HASH_KEY)
            .expression_attribute_names("#t", RANGE_KEY)
            .expression_attribute_values(":k", AttributeValue::S(session.to_string()))
            .expression_attribute_values(":z", AttributeValue::N(HEAD_TURN.into()))
            .scan_index_forward(false)
            .limit(i32::try_from(max_turns).unwrap_or(i32::MAX))
            .consistent_read(true);
        let out = via.query(input).await?;
        let now = epoch_secs(SystemTime::now());
        let mut turns = Vec::new();
        for item in out.items() {
            if number(item.get(TTL_ATTRIBUTE)).is_some_and(|e| e <= now) {
                continue;
            }
            turns.push(item_to_turn(item).map_err(Failure::Other)?);
        }
        turns.reverse();
        Ok(turns)
    }

    /// The session's latest turn numbers, ascending (one consistent Query).
    async fn turn_numbers(&self, via: Via<'_>, session: &str) -> Result<Vec<u64>, Failure> {
        let input = QueryInput::builder()
            .table_name(&self.table)
            .key_condition_expression("#k = :k AND #t > :z")
            .expression_attribute_names("#k", HASH_KEY)
            .expression_attribute_names("#t", RANGE_KEY)
            .expression_attribute_values(":k", AttributeValue::S(session.to_string()))
            .expression_attribute_values(":z", AttributeValue::N(HEAD_TURN.into()))
            .scan_index_forward(false)
            .limit(HEAD_KEEP as i32)
            .consistent_read(true);
        let out = via.query(input).await?;
        let mut numbers: Vec<u64> = out
            .items()
            .iter()
            .filter_map(|i| number(i.get(RANGE_KEY)))
            .collect();
        numbers.sort_unstable();
        Ok(numbers)
    }

    async fn append_via(&self, via: Via<'_>, session: &str, turn: &Turn) -> Result<(), Failure> {
        let now = SystemTime::now();
        let expires_at = epoch_secs(now).saturating_add(self.ttl.as_secs());
        let mut n = match turn.at_us {
            0 => epoch_micros(now),
            at => at,
        };
        // The turn: the same conditional write and collision handling as the
        // DynamoDB store (a retried save never stores a turn twice).
        let mut written = false;
        for _ in 0..3 {
            let mut item = turn_to_item(turn);
            item.extend(key(session, &n.to_string()));
            item.insert(
                TTL_ATTRIBUTE.into(),
                AttributeValue::N(expires_at.to_string()),
            );
            let put = PutItemInput::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#t)")
                .expression_attribute_names("#t", RANGE_KEY);
            match via.put(put).await {
                Ok(_) => {
                    written = true;
                    break;
                }
                Err(Failure::ConditionFailed) => {
                    let check = GetItemInput::builder()
                        .table_name(&self.table)
                        .set_key(Some(key(session, &n.to_string())))
                        .consistent_read(true);
                    let held = via.get(check).await?;
                    if !turn.id.is_empty()
                        && matches!(held.item().and_then(|i| i.get(TURN_ID)), Some(AttributeValue::S(s)) if *s == turn.id)
                    {
                        written = true;
                        break;
                    }
                    n += 1;
                }
                Err(e) => return Err(e),
            }
        }
        if !written {
            return Err(Failure::Other("turn numbers kept colliding".into()));
        }
        // The head, rewritten after the turn it lists; read consistently (fresh from
        // DynamoDB) and replaced only if no other writer replaced it meanwhile.
        for _ in 0..5 {
            let read = GetItemInput::builder()
                .table_name(&self.table)
                .set_key(Some(key(session, HEAD_TURN)))
                .consistent_read(true);
            let current = via.get(read).await?;
            let (mut numbers, version) = match current.item() {
                Some(h) => head_of(h),
                // A session's first head lists the turns already there (a session
                // written before this store, by the DynamoDB one), this turn included.
                None => (self.turn_numbers(via, session).await?, 0),
            };
            if !numbers.contains(&n) {
                numbers.push(n);
                numbers.sort_unstable();
            }
            let drop = numbers.len().saturating_sub(HEAD_KEEP);
            numbers.drain(..drop);
            let mut head = key(session, HEAD_TURN);
            head.insert(
                HEAD_TURNS.into(),
                AttributeValue::L(
                    numbers
                        .iter()
                        .map(|x| AttributeValue::N(x.to_string()))
                        .collect(),
                ),
            );
            head.insert(
                HEAD_VERSION.into(),
                AttributeValue::N((version + 1).to_string()),
            );
            head.insert(
                TTL_ATTRIBUTE.into(),
                AttributeValue::N(expires_at.to_string()),
            );
            let mut put = PutItemInput::builder()
                .table_name(&self.table)
                .set_item(Some(head));
            put = if current.item().is_some() {
                put.condition_expression("#v = :v")
                    .expression_attribute_names("#v", HEAD_VERSION)
                    .expression_attribute_values(":v", AttributeValue::N(version.to_string()))
            } else {
                put.condition_expression("attribute_not_exists(#t)")
                    .expression_attribute_names("#t", RANGE_KEY)
            };
            match via.put(put).await {
                Ok(_) => return Ok(()),
                Err(Failure::ConditionFailed) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Failure::Other("the session head kept changing".into()))
    }

    /// Runs `call` through DAX if it is connected and answers; else (not connected,
    /// or unreachable mid-call) on DynamoDB directly, counted in `counter` and
    /// logged. DAX errors other than unreachability are not retried directly.
    async fn with_fallback<'v, T, F, Fut>(
        &'v self,
        dax: Option<&'v DaxClient>,
        operation: &str,
        counter: &AtomicU64,
        call: F,
    ) -> Result<(T, Served), BackendError>
    where
        F: Fn(Via<'v>) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let why = match dax {
            Some(c) => match call(Via::Dax(c)).await {
                Ok(t) => return Ok((t, Served::Primary)),
                Err(Failure::Unreachable(m)) => m,
                Err(Failure::ConditionFailed) => {
                    return Err(self.error(operation, "condition failed".into()))
                }
                Err(Failure::Other(m)) => return Err(self.error(operation, m)),
            },
            None => "not connected".to_string(),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            operation,
            reason = why,
            "DAX unreachable: session call made on DynamoDB directly"
        );
        let direct = format!("{operation} (direct)");
        match call(Via::Direct(&self.ddb)).await {
            Ok(t) => Ok((t, Served::Fallback)),
            Err(Failure::Unreachable(m) | Failure::Other(m)) => Err(self.error(&direct, m)),
            Err(Failure::ConditionFailed) => Err(self.error(&direct, "condition failed".into())),
        }
    }
}

#[async_trait]
impl SessionStore for DaxSessionStore {
    async fn load(&self, key: &str, max_turns: usize) -> Result<Vec<Turn>, BackendError> {
        self.load_served(key, max_turns).await.map(|(t, _)| t)
    }

    async fn append(&self, key: &str, turn: Turn) -> Result<(), BackendError> {
        self.append_served(key, turn).await.map(|_| ())
    }

    async fn load_served(
        &self,
        key: &str,
        max_turns: usize,
    ) -> Result<(Vec<Turn>, Served), BackendError> {
        if max_turns == 0 {
            return Ok((Vec::new(), Served::Primary));
        }
        let dax = self.client();
        self.with_fallback(dax.as_ref(), "load", &self.fallbacks.load, |via| {
            self.load_via(via, key, max_turns)
        })
        .await
    }

    async fn append_served(&self, key: &str, turn: Turn) -> Result<Served, BackendError> {
        let dax = self.client();
        let turn = &turn;
        self.with_fallback(dax.as_ref(), "append", &self.fallbacks.append, |via| {
            self.append_via(via, key, turn)
        })
        .await
        .map(|((), served)| served)
    }

    /// Ready when the table answers, through DAX if it is connected (a DAX outage is
    /// a degradation, not unreadiness: calls then go to DynamoDB).
    async fn ready(&self) -> Result<(), BackendError> {
        if let Some(c) = self.client() {
            let input = GetItemInput::builder()
                .table_name(&self.table)
                .set_key(Some(key(READY_KEY, HEAD_TURN)))
                .build()
                .map_err(|e| BackendError::Invalid(e.to_string()))?;
            match c.get_item(input).await {
                Ok(_) => return Ok(()),
                Err(e) if !e.is_transport() && !matches!(e, DaxError::NoRoute(_)) => {
                    return Err(self.error("ready", e.to_string()))
                }
                Err(_) => {}
            }
        }
        self.direct.ready().await
    }
}
