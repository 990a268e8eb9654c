//! Embedded [`SessionStore`]: a bounded LRU of sessions with an idle TTL, standing in for
//! DynamoDB + DAX (PO-04). Each session keeps at most `max_turns_kept` turns, so memory is
//! bounded by `capacity × max_turns_kept`. Used by [`crate::app`] by default.

use super::{BackendError, SessionStore};
use crate::domain::Turn;
use async_trait::async_trait;
use lru::LruCache;
use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Entry {
    turns: VecDeque<Turn>,
    touched: Instant,
}

#[derive(Debug)]
pub struct LruSessionStore {
    // A std mutex: the critical sections are a hash lookup and a push, never held across
    // an await, and this avoids an async lock's overhead on the hot path.
    inner: Mutex<LruCache<String, Entry>>,
    ttl: Duration,
    max_turns_kept: usize,
}

impl LruSessionStore {
    pub fn new(capacity: usize, ttl: Duration, max_turns_kept: usize) -> Self {
        let cap = NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN);
        LruSessionStore {
            inner: Mutex::new(LruCache::new(cap)),
            ttl,
            max_turns_kept: max_turns_kept.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.inner.lock().map(|c| c.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn poisoned() -> BackendError {
        BackendError::Unavailable("session store lock poisoned".into())
    }
}

#[async_trait]
impl SessionStore for LruSessionStore {
    async fn load(&self, key: &str, max_turns: usize) -> Result<Vec<Turn>, BackendError> {
        let mut cache = self.inner.lock().map_err(|_| Self::poisoned())?;
        let now = Instant::now();
        let expired = match cache.get(key) {
            None => return Ok(Vec::new()),
            Some(e) => now.duration_since(e.touched) > self.ttl,
        };
        if expired {
            cache.pop(key);
            return Ok(Vec::new());
        }
        let Some(entry) = cache.get(key) else {
            return Ok(Vec::new());
        };
        let skip = entry.turns.len().saturating_sub(max_turns);
        Ok(entry.turns.iter().skip(skip).cloned().collect())
    }

    async fn append(&self, key: &str, turn: Turn) -> Result<(), BackendError> {
        let mut cache = self.inner.lock().map_err(|_| Self::poisoned())?;
        let now = Instant::now();
        let entry = cache.get_or_insert_mut(key.to_string(), || Entry {
            turns: VecDeque::new(),
            touched: now,
        });
        if now.duration_since(entry.touched) > self.ttl {
            entry.turns.clear();
        }
        entry.touched = now;
        // A retried save of the same message keeps one turn.
        if !turn.id.is_empty() && entry.turns.iter().any(|t| t.id == turn.id) {
            return Ok(());
        }
        entry.turns.push_back(turn);
        while entry.turns.len() > self.max_turns_kept {
            entry.turns.pop_front();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Intent;

    fn turn(n: usize) -> Turn {
        Turn {
            id: format!("t{n}"),
            at_us: 0,
            user: format!("q{n}"),
            assistant: format!("a{n}"),
            intent: Intent::Greeting,
            title_ids: vec![],
        }
    }

    #[tokio::test]
    async fn keeps_last_turns_and_evicts_least_recently_used() {
        let s = LruSessionStore::new(2, Duration::from_secs(60), 3);
        for n in 0..5 {
            s.append("a", turn(n)).await.expect("append");
        }
        let got = s.load("a", 10).await.expect("load");
        assert_eq!(
            got.iter().map(|t| t.user.as_str()).collect::<Vec<_>>(),
            ["q2", "q3", "q4"]
        );
        assert_eq!(s.load("a", 2).await.expect("load").len(), 2);
        s.append("b", turn(0)).await.expect("append");
        s.load("a", 1).await.expect("touch a");
        s.append("c", turn(0)).await.expect("append"); // evicts b, the least recently used
        assert!(s.load("b", 5).await.expect("load").is_empty());
        assert_eq!(s.load("a", 5).await.expect("load").len(), 3);
        assert_eq!(s.len(), 2);
    }

    #[tokio::test]
    async fn a_retried_append_keeps_one_turn() {
        let s = LruSessionStore::new(4, Duration::from_secs(60), 10);
        s.append("a", turn(1)).await.expect("append");
        s.append("a", turn(1)).await.expect("retried append");
        s.append("a", turn(2)).await.expect("append");
        let ids: Vec<String> = s
            .load("a", 10)
            .await
            .expect("load")
            .into_iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(ids, ["t1", "t2"]);
    }

    #[tokio::test]
    async fn expired_sessions_are_forgotten() {
        let s = LruSessionStore::new(10, Duration::from_millis(0), 3);
        s.append("a", turn(0)).await.expect("append");
        std::thread::sleep(Duration::from_millis(2));
        assert!(s.load("a", 5).await.expect("load").is_empty());
    }
}
