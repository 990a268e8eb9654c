//! Drain tracking for graceful shutdown: the draining flag (read by `/readyz`, the
//! upgrade handler and each connection's worker), the shutdown signal each reader
//! subscribes to, and the count of live WebSocket connections that [`super::serve`]
//! waits on, and the per-user connection counts ([`Users`]). axum's own graceful
//! shutdown does not track upgraded connections, hence this module. The connections themselves live in `connection.rs`.

use crate::metrics::Metrics;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// The server's drain state: set once by [`Drain::begin`], never cleared.
#[derive(Debug)]
pub(super) struct Drain {
    draining: AtomicBool,
    shutdown_tx: watch::Sender<bool>,
    tracker: Arc<ConnTracker>,
}

impl Drain {
    pub(super) fn new() -> Drain {
        Drain {
            draining: AtomicBool::new(false),
            shutdown_tx: watch::channel(false).0,
            tracker: Arc::new(ConnTracker::default()),
        }
    }

    pub(super) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Starts the drain: readiness fails, readers stop, streams finish.
    pub(super) fn begin(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.shutdown_tx.send_replace(true);
    }

    /// The shutdown signal, `true` once the drain has begun.
    pub(super) fn subscribe(&self) -> watch::Receiver<bool> {
        self.shutdown_tx.subscribe()
    }

    pub(super) fn open_connections(&self) -> usize {
        self.tracker.active.load(Ordering::SeqCst)
    }

    /// Counts one more live connection until the returned guard is dropped,
    /// unless `limit` are live already: the check and the count are one
    /// atomic step, so concurrent upgrades cannot overshoot the limit.
    pub(super) fn try_enter(&self, limit: usize, metrics: &Arc<Metrics>) -> Option<ConnGuard> {
        self.tracker.try_enter(limit, metrics)
    }

    /// Waits until no connection is live; false when `limit` passed first.
    pub(super) async fn wait_idle(&self, limit: Duration) -> bool {
        self.tracker.wait_idle(limit).await
    }
}

/// Counts live WebSocket connections so shutdown can wait for them.
#[derive(Debug, Default)]
struct ConnTracker {
    active: AtomicUsize,
    idle: Notify,
}

/// One live connection, counted in [`ConnTracker`] and `manga_connections_active`.
#[derive(Debug)]
pub(super) struct ConnGuard {
    tracker: Arc<ConnTracker>,
    metrics: Arc<Metrics>,
}

impl ConnTracker {
    fn try_enter(self: &Arc<Self>, limit: usize, metrics: &Arc<Metrics>) -> Option<ConnGuard> {
        self.active
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()?;
        metrics.connection_opened();
        Some(ConnGuard {
            tracker: self.clone(),
            metrics: metrics.clone(),
        })
    }

    async fn wait_idle(&self, limit: Duration) -> bool {
        let wait = async {
            loop {
                // Register before checking, so a wake-up between the two is not lost.
                let notified = self.idle.notified();
                if self.active.load(Ordering::SeqCst) == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.metrics.connection_closed();
        if self.tracker.active.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.tracker.idle.notify_waiters();
        }
    }
}

/// Live connections per user (token subject), for `MANGA_MAX_CONNECTIONS_PER_USER`.
#[derive(Debug, Default)]
pub(super) struct Users {
    // A std mutex: held for one map update, never across an await.
    open: Arc<Mutex<HashMap<String, usize>>>,
}

/// One of a user's live connections; dropping it frees the slot.
#[derive(Debug)]
pub(super) struct UserGuard {
    open: Arc<Mutex<HashMap<String, usize>>>,
    subject: String,
}

impl Users {
    /// Counts a connection of `subject` unless it holds `limit` already.
    pub(super) fn try_enter(&self, subject: &str, limit: usize) -> Option<UserGuard> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(subject.to_string()).or_insert(0);
        if *n >= limit {
            return None;
        }
        *n += 1;
        Some(UserGuard {
            open: self.open.clone(),
            subject: subject.to_string(),
        })
    }

    #[cfg(test)]
    fn count(&self, subject: &str) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(subject).copied().unwrap_or(0)
    }
}

impl Drop for UserGuard {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.subject) {
            *n -= 1;
            // Entries live only while the user is connected: the map stays
            // as small as the set of connected users.
            if *n == 0 {
                open.remove(&self.subject);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sizing::LatencyBudgets;

    #[test]
    fn admission_never_overshoots_under_concurrent_upgrades() {
        let drain = Arc::new(Drain::new());
        let metrics = Arc::new(Metrics::new(LatencyBudgets::default()));
        let admitted: Vec<Option<ConnGuard>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let (drain, metrics) = (drain.clone(), metrics.clone());
                    s.spawn(move || {
                        (0..100)
                            .map(|_| drain.try_enter(50, &metrics))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("thread"))
                .collect()
        });
        assert_eq!(admitted.iter().filter(|g| g.is_some()).count(), 50);
        assert_eq!(drain.open_connections(), 50);
        drop(admitted);
        assert_eq!(drain.open_connections(), 0);
    }

    #[test]
    fn a_user_holds_at_most_the_cap_and_slots_come_back() {
        let users = Users::default();
        let a: Vec<UserGuard> = (0..3).filter_map(|_| users.try_enter("alice", 3)).collect();
        assert_eq!(a.len(), 3);
        assert!(users.try_enter("alice", 3).is_none());
        assert!(
            users.try_enter("bob", 3).is_some(),
            "other users are not affected"
        );
        drop(a);
        assert_eq!(users.count("alice"), 0);
        assert!(users.try_enter("alice", 3).is_some());
    }
}
