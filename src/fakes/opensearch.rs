//! An in-memory [`SearchCapacity`] for tests (moto has no OpenSearch
//! Serverless). It keeps the account settings as the JSON document
//! `GetAccountSettings` returns and records each `UpdateAccountSettings`
//! request body, both in the shapes of the API reference:
//!
//! ```json
//! GetAccountSettings / UpdateAccountSettings response:
//!   { "accountSettingsDetail": { "capacityLimits":
//!       { "maxIndexingCapacityInOCU": 4, "maxSearchCapacityInOCU": 8 } } }
//! UpdateAccountSettings request:
//!   { "capacityLimits": { "maxIndexingCapacityInOCU": 4, "maxSearchCapacityInOCU": 16 } }
//! ```
//!
//! Like the service, an update changes only the fields it sends and
//! rejects values below 2 with a `ValidationException`. Tests can make the
//! next call of an operation fail with [`FakeSearchCapacity::fail_next`].

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use crate::aws::error::AwsError;
use crate::aws::opensearch::{
    CapacityError, CapacityLimits, CapacityResult, SearchCapacity, MIN_MAX_OCU, SERVICE,
};

const SEARCH: &str = "maxSearchCapacityInOCU";
const INDEXING: &str = "maxIndexingCapacityInOCU";

#[derive(Debug)]
pub struct FakeSearchCapacity {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// The `GetAccountSettings` response document.
    settings: Value,
    /// Every call, as `Operation [request body]`.
    calls: Vec<String>,
    /// `UpdateAccountSettings` request bodies, in order.
    updates: Vec<Value>,
    /// Errors the next calls of an operation return.
    failures: VecDeque<CapacityError>,
}

impl FakeSearchCapacity {
    /// An account whose `GetAccountSettings` answers `response` (the API's
    /// response document, e.g. `{"accountSettingsDetail": {}}` when no
    /// limits were ever set).
    pub fn new(response: Value) -> Self {
        FakeSearchCapacity {
            state: Mutex::new(State {
                settings: response,
                calls: Vec::new(),
                updates: Vec::new(),
                failures: VecDeque::new(),
            }),
        }
    }

    /// An account with both maximum limits set.
    pub fn with_limits(max_search_ocu: u32, max_indexing_ocu: u32) -> Self {
        Self::new(json!({
            "accountSettingsDetail": {
                "capacityLimits": { INDEXING: max_indexing_ocu, SEARCH: max_search_ocu }
            }
        }))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock has failed already.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next call of `operation` fails with this service error.
    pub fn fail_next(&self, operation: &'static str, code: &str, message: &str) {
        self.lock()
            .failures
            .push_back(CapacityError::Aws(AwsError::service(
                SERVICE, operation, None, code, message,
            )));
    }

    /// Every call so far, as `Operation` or `Operation {request body}`.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// The `UpdateAccountSettings` request bodies sent so far.
    pub fn update_requests(&self) -> Vec<Value> {
        self.lock().updates.clone()
    }

    /// The current `GetAccountSettings` response document.
    pub fn settings(&self) -> Value {
        self.lock().settings.clone()
    }
}

impl State {
    fn failure(&mut self, operation: &str) -> CapacityResult<()> {
        let next = self
            .failures
            .iter()
            .position(|e| e.operation() == operation);
        match next.and_then(|i| self.failures.remove(i)) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn limits_of(response: &Value) -> CapacityLimits {
    let limits = &response["accountSettingsDetail"]["capacityLimits"];
    let field = |name: &str| {
        limits
            .get(name)
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
    };
    CapacityLimits {
        max_search_ocu: field(SEARCH),
        max_indexing_ocu: field(INDEXING),
    }
}

#[async_trait]
impl SearchCapacity for FakeSearchCapacity {
    async fn capacity_limits(&self) -> CapacityResult<CapacityLimits> {
        let mut st = self.lock();
        st.calls.push("GetAccountSettings".into());
        st.failure("GetAccountSettings")?;
        Ok(limits_of(&st.settings))
    }

    async fn set_capacity_limits(&self, limits: &CapacityLimits) -> CapacityResult<CapacityLimits> {
        const OP: &str = "UpdateAccountSettings";
        let mut sent = Map::new();
        if let Some(v) = limits.max_indexing_ocu {
            sent.insert(INDEXING.into(), json!(v));
        }
        if let Some(v) = limits.max_search_ocu {
            sent.insert(SEARCH.into(), json!(v));
        }
        let request = json!({ "capacityLimits": sent });
        let mut st = self.lock();
        st.calls.push(format!("{OP} {request}"));
        st.updates.push(request);
        st.failure(OP)?;
        if let Some((name, v)) = sent
            .iter()
            .find(|(_, v)| v.as_u64().is_some_and(|v| v < u64::from(MIN_MAX_OCU)))
        {
            return Err(CapacityError::Aws(AwsError::service(
                SERVICE,
                OP,
                None,
                "ValidationException",
                format!("{name} must be at least {MIN_MAX_OCU}, got {v}"),
            )));
        }
        let detail = st.settings.as_object_mut().map(|o| {
            o.entry("accountSettingsDetail")
                .or_insert_with(|| json!({}))
        });
        if let Some(Value::Object(detail)) = detail {
            let current = detail.entry("capacityLimits").or_insert_with(|| json!({}));
            if let Value::Object(current) = current {
                current.extend(sent);
            }
        }
        Ok(limits_of(&st.settings))
    }
}
