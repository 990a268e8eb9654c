//! Drain tracking for graceful shutdown: the draining flag (read by `/readyz`, the
//! upgrade handler and each connection's worker), the shutdown signal each reader
//! subscribes to, and the count of live WebSocket connections that [`super::serve`]
//! waits on. axum's own graceful shutdown does not track upgraded connections, hence
//! this module. The connections themselves live in `connection.rs`.

use crate::metrics::Metrics;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
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

    /// Counts one more live connection until the returned guard is dropped.
    pub(super) fn enter(&self, metrics: &Arc<Metrics>) -> ConnGuard {
        self.tracker.enter(metrics)
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
    fn enter(self: &Arc<Self>, metrics: &Arc<Metrics>) -> ConnGuard {
        self.active.fetch_add(1, Ordering::SeqCst);
        metrics.connection_opened();
        ConnGuard {
            tracker: self.clone(),
            metrics: metrics.clone(),
        }
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
