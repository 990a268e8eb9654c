//! [`DynamoSessionStore`]: conversation memory in the `memory` stack's DynamoDB table
//! (PO-04). Key schema as that stack creates it: `session_id` (S, hash) and `turn`
//! (N, range); `expires_at` (N, epoch seconds) is the table's TTL attribute.
//!
//! - load: one `Query` on the session, newest first, `Limit` N, strongly consistent so a
//!   follow-up question sees the turn saved just before it; items past `expires_at`
//!   are skipped because DynamoDB deletes expired items lazily (up to days later).
//! - append: one `PutItem`; `turn` is the time the message was received
//!   ([`Turn::at_us`], microseconds since the epoch; the append time when unknown), so
//!   no read precedes the write, turns sort in time order and a retried save writes
//!   the same item. A condition refuses to
//!   overwrite a turn that has the same number. When it fails, one consistent `GetItem`
//!   tells the two causes apart: the item carries our `turn_id` (the message id) — the
//!   SDK retried a write that had landed, so the save is done and no second copy is
//!   written — or another message took the number in the same microsecond, and the next
//!   number is tried. A retried save therefore never stores a turn twice.
//!
//! DAX: with `MANGA_DAX_ENDPOINT` set, [`super::dax::DaxSessionStore`] serves the
//! same table through the cluster and falls back to this store's calls; it adds a
//! per-session head item at `turn = 0`, which the Query here skips (`#t > 0`).

use super::describe;
use crate::backends::{BackendError, SessionStore};
use crate::domain::{epoch_micros, Intent, Turn};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const HASH_KEY: &str = "session_id";
pub const RANGE_KEY: &str = "turn";
/// The TTL attribute (`memory::TTL_ATTRIBUTE` in mangactl-stacks).
pub const TTL_ATTRIBUTE: &str = "expires_at";
/// The message id of the turn, for idempotent saves.
pub const TURN_ID: &str = "turn_id";
/// The session `/readyz` queries: nobody uses it, the `Query` proves table and role.
const READY_KEY: &str = "__readyz__";

#[derive(Debug, thiserror::Error)]
pub enum DynamoError {
    #[error("DynamoDB {operation} on {table}: {message}")]
    Call {
        operation: &'static str,
        table: String,
        message: String,
    },
    #[error("DynamoDB item in {table} is malformed: {message}")]
    BadItem { table: String, message: String },
    #[error("DynamoDB PutItem on {table}: turn numbers kept colliding")]
    Collision { table: String },
}

impl From<DynamoError> for BackendError {
    fn from(e: DynamoError) -> Self {
        match e {
            DynamoError::BadItem { .. } => BackendError::Invalid(e.to_string()),
            DynamoError::Call { .. } | DynamoError::Collision { .. } => {
                BackendError::Unavailable(e.to_string())
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct DynamoSessionStore {
    client: Client,
    table: String,
    ttl: Duration,
}

impl DynamoSessionStore {
    /// `ttl`: how long a turn is kept after it was written (`MANGA_SESSION_TTL_SECS`).
    pub fn new(config: &aws_config::SdkConfig, table: &str, ttl: Duration) -> Self {
        DynamoSessionStore {
            client: Client::new(config),
            table: table.to_string(),
            ttl,
        }
    }

    fn call_error(
        &self,
        operation: &'static str,
        e: &(dyn std::error::Error + 'static),
    ) -> DynamoError {
        DynamoError::Call {
            operation,
            table: self.table.clone(),
            message: describe(e),
        }
    }

    fn bad(&self, message: String) -> DynamoError {
        DynamoError::BadItem {
            table: self.table.clone(),
            message,
        }
    }

    async fn query(&self, key: &str, limit: usize) -> Result<Vec<Turn>, DynamoError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#k = :k AND #t > :z")
            .expression_attribute_names("#k", HASH_KEY)
            .expression_attribute_names("#t", RANGE_KEY)
            .expression_attribute_values(":k", AttributeValue::S(key.to_string()))
            // Turn 0 is the DAX store's session head, not a turn.
            .expression_attribute_values(":z", AttributeValue::N("0".into()))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.call_error("Query", &e))?;
        let now = epoch_secs(SystemTime::now());
        let mut turns = Vec::new();
        for item in out.items() {
            let expires = number(item, TTL_ATTRIBUTE).map_err(|m| self.bad(m))?;
            if expires <= now {
                continue;
            }
            turns.push(item_to_turn(item).map_err(|m| self.bad(m))?);
        }
        turns.reverse(); // newest first from the query; the trait wants oldest first
        Ok(turns)
    }

    async fn put(&self, key: &str, turn: Turn) -> Result<(), DynamoError> {
        let now = SystemTime::now();
        let mut number = match turn.at_us {
            0 => epoch_micros(now),
            at => at,
        };
        let expires_at = epoch_secs(now).saturating_add(self.ttl.as_secs());
        for _ in 0..3 {
            let mut item = turn_to_item(&turn);
            item.insert(HASH_KEY.into(), AttributeValue::S(key.to_string()));
            item.insert(RANGE_KEY.into(), AttributeValue::N(number.to_string()));
            item.insert(
                TTL_ATTRIBUTE.into(),
                AttributeValue::N(expires_at.to_string()),
            );
            let r = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#t)")
                .expression_attribute_names("#t", RANGE_KEY)
                .send()
                .await;
            match r {
                Ok(_) => return Ok(()),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
                {
                    if !turn.id.is_empty() && self.holds(key, number, &turn.id).await? {
                        return Ok(());
                    }
                    number += 1;
                }
                Err(e) => return Err(self.call_error("PutItem", &e)),
            }
        }
        Err(DynamoError::Collision {
            table: self.table.clone(),
        })
    }
}

impl DynamoSessionStore {
    /// Whether turn `number` of `key` is the turn with id `id` (our own earlier write).
    async fn holds(&self, key: &str, number: u64, id: &str) -> Result<bool, DynamoError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(HASH_KEY, AttributeValue::S(key.to_string()))
            .key(RANGE_KEY, AttributeValue::N(number.to_string()))
            .projection_expression("#i")
            .expression_attribute_names("#i", TURN_ID)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.call_error("GetItem", &e))?;
        Ok(matches!(
            out.item().and_then(|i| i.get(TURN_ID)),
            Some(AttributeValue::S(s)) if s == id
        ))
    }
}

fn epoch_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The item attributes of a turn (without the key and TTL attributes).
pub fn turn_to_item(turn: &Turn) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (TURN_ID.to_string(), AttributeValue::S(turn.id.clone())),
        ("user".to_string(), AttributeValue::S(turn.user.clone())),
        (
            "assistant".to_string(),
            AttributeValue::S(turn.assistant.clone()),
        ),
        (
            "intent".to_string(),
            AttributeValue::S(turn.intent.as_str().to_string()),
        ),
        (
            "title_ids".to_string(),
            // A list, not a string set: sets cannot be empty.
            AttributeValue::L(
                turn.title_ids
                    .iter()
                    .cloned()
                    .map(AttributeValue::S)
                    .collect(),
            ),
        ),
    ])
}

pub fn item_to_turn(item: &HashMap<String, AttributeValue>) -> Result<Turn, String> {
    let text = |name: &str| -> Result<String, String> {
        match item.get(name) {
            Some(AttributeValue::S(s)) => Ok(s.clone()),
            // Only `intent` is required; a turn without text is still usable context.
            None => Ok(String::new()),
            Some(other) => Err(format!("{name} is not a string: {other:?}")),
        }
    };
    let intent_name = text("intent")?;
    let intent =
        Intent::parse(&intent_name).ok_or_else(|| format!("unknown intent `{intent_name}`"))?;
    let title_ids = match item.get("title_ids") {
        None => Vec::new(),
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|v| match v {
                AttributeValue::S(s) => Ok(s.clone()),
                other => Err(format!("title_ids holds a non-string: {other:?}")),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => Err(format!("title_ids is not a list: {other:?}"))?,
    };
    Ok(Turn {
        id: text(TURN_ID)?,
        // The sort key; the caller knows it from the item's key.
        at_us: number(item, RANGE_KEY).map_or(0, |n| if n == u64::MAX { 0 } else { n }),
        user: text("user")?,
        assistant: text("assistant")?,
        intent,
        title_ids,
    })
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Result<u64, String> {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n
            .parse()
            .map_err(|_| format!("{name} is not an integer: {n}")),
        // An item without TTL never expires.
        None => Ok(u64::MAX),
        Some(other) => Err(format!("{name} is not a number: {other:?}")),
    }
}

#[async_trait]
impl SessionStore for DynamoSessionStore {
    async fn load(&self, key: &str, max_turns: usize) -> Result<Vec<Turn>, BackendError> {
        if max_turns == 0 {
            return Ok(Vec::new());
        }
        Ok(self.query(key, max_turns).await?)
    }

    async fn append(&self, key: &str, turn: Turn) -> Result<(), BackendError> {
        Ok(self.put(key, turn).await?)
    }

    async fn ready(&self) -> Result<(), BackendError> {
        self.query(READY_KEY, 1).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_round_trip_through_items() {
        let turn = Turn {
            id: "m1-2-3".into(),
            at_us: 1_764_590_000_000_000,
            user: "more like that one".into(),
            assistant: "Try Vinland Saga [1].".into(),
            intent: Intent::Recommendation,
            title_ids: vec!["vinland-saga".into()],
        };
        let mut item = turn_to_item(&turn);
        item.insert(RANGE_KEY.into(), AttributeValue::N(turn.at_us.to_string()));
        assert_eq!(item_to_turn(&item), Ok(turn));
        let mut bad = item.clone();
        bad.insert("intent".into(), AttributeValue::S("smalltalk".into()));
        assert!(item_to_turn(&bad).is_err_and(|e| e.contains("smalltalk")));
        bad.insert("intent".into(), AttributeValue::N("1".into()));
        assert!(item_to_turn(&bad).is_err());
    }
}
