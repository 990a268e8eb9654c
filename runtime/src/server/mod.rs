//! The HTTP side of the runtime: the shared [`AppState`], the connection [`Limits`], the
//! [`router`] and [`serve`] (listener, accept loop, shutdown sequence).
//!
//! Its neighbours, one job each:
//! - `endpoints.rs`: `GET /healthz` (liveness), `GET /readyz` (backends reachable, not
//!   draining), `GET /metrics` (Prometheus text) and `GET /` (the browser chat page);
//! - `connection.rs`: one WebSocket `/v1/chat` connection, from the upgrade (bearer
//!   token, peer id) through its reader, worker and writer tasks to the close frame;
//! - `drain.rs`: the draining flag and the live-connection count that shutdown waits on;
//! - `watch.rs`: the drain watcher, which starts the drain when the load balancer starts
//!   draining this task's target ([`TargetHealth`]), before ECS sends SIGTERM.
//!
//! Drain ([`AppState::begin_drain`], from the watcher or the signal): `/readyz` turns
//! 503, `/v1/chat` refuses upgrades (503), readers stop taking new messages, in-flight
//! answers finish, queued ones get `shutting_down`, each client gets a `reconnect` frame
//! and its socket is closed with 1001. Shutdown ([`serve`]): on the signal, the drain
//! (if the watcher has not begun it already), the listener stops accepting, and the
//! process waits up to `MANGA_DRAIN_TIMEOUT_SECS` for the connections to close.

mod connection;
mod drain;
mod endpoints;
mod watch;

pub use connection::RECONNECT_SPREAD_MS;
pub use watch::{TargetHealth, TargetHealthError, TargetState};

use crate::metrics::Metrics;
use crate::pipeline::auth::Authenticator;
use crate::pipeline::Pipeline;
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use drain::Drain;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Connection-level limits (from [`crate::config::Config`]).
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_message_bytes: usize,
    pub max_frame_bytes: usize,
    pub max_sessions_per_connection: usize,
    pub max_connections: usize,
    pub max_connections_per_user: usize,
    pub ping_interval: Duration,
    pub drain_timeout: Duration,
    /// How often the backends are probed for `/readyz`.
    pub ready_probe_every: Duration,
    /// How often the drain watcher asks for the target's state (with a [`TargetHealth`]).
    pub drain_poll_every: Duration,
    /// How often the per-task gauges are written (EMF on).
    pub gauge_every: Duration,
}

#[derive(Debug)]
pub struct AppState {
    pub pipeline: Arc<Pipeline>,
    pub authenticator: Arc<Authenticator>,
    pub metrics: Arc<Metrics>,
    pub limits: Limits,
    drain: Drain,
    users: drain::Users,
    next_conn: AtomicU64,
    /// Random per process start: makes message ids (which key saved turns)
    /// unique across tasks and restarts.
    instance: String,
    /// The last readiness probe (`None` before the first).
    readiness: tokio::sync::watch::Sender<Option<Arc<endpoints::Readiness>>>,
    /// This task's load-balancer target, watched for a drain (`None`: SIGTERM only).
    target_health: Option<Arc<dyn TargetHealth>>,
}

impl AppState {
    pub fn new(
        pipeline: Arc<Pipeline>,
        authenticator: Arc<Authenticator>,
        limits: Limits,
    ) -> AppState {
        let metrics = pipeline.metrics().clone();
        AppState {
            pipeline,
            authenticator,
            metrics,
            limits,
            drain: Drain::new(),
            users: drain::Users::default(),
            next_conn: AtomicU64::new(1),
            instance: format!("{:08x}", fastrand::u32(..)),
            readiness: tokio::sync::watch::Sender::new(None),
            target_health: None,
        }
    }

    /// Watches `health` while serving and drains when it reports a drain (`watch.rs`).
    pub fn with_target_health(mut self, health: Arc<dyn TargetHealth>) -> AppState {
        self.target_health = Some(health);
        self
    }

    pub fn is_draining(&self) -> bool {
        self.drain.is_draining()
    }

    /// Starts the drain: readiness fails, upgrades are refused, readers stop, streams
    /// finish, then each client is told to reconnect and its socket closed (1001).
    /// Idempotent; the process keeps running (and `/healthz` answering) until SIGTERM.
    pub fn begin_drain(&self) {
        self.drain.begin();
    }

    pub fn open_connections(&self) -> usize {
        self.drain.open_connections()
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(endpoints::index))
        .route("/healthz", get(endpoints::healthz))
        .route("/readyz", get(endpoints::readyz))
        .route("/metrics", get(endpoints::metrics))
        .route("/v1/chat", get(connection::chat))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then drains (see the module docs).
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let st = state.clone();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutdown requested; draining");
        st.begin_drain();
    };
    let probes = tokio::spawn(endpoints::probe_loop(
        Arc::downgrade(&state),
        state.limits.ready_probe_every,
    ));
    let gauges = state.metrics.emf_enabled().then(|| {
        tokio::spawn(endpoints::gauge_loop(
            Arc::downgrade(&state),
            state.limits.gauge_every,
        ))
    });
    let watcher = state.target_health.clone().map(|health| {
        tokio::spawn(watch::watch(
            Arc::downgrade(&state),
            health,
            state.limits.drain_poll_every,
        ))
    });
    let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    // Small token frames must leave at once: with Nagle's algorithm on, a
    // frame written while the previous one is unacknowledged waits for the
    // peer's delayed ACK (tens of milliseconds on loopback and LANs).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!("TCP_NODELAY not set on a connection: {e}");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(signal)
        .await?;
    let open = state.open_connections();
    if open > 0 {
        tracing::info!(open, "waiting for WebSocket connections to finish");
    }
    if !state.drain.wait_idle(state.limits.drain_timeout).await {
        tracing::warn!(
            open = state.open_connections(),
            "drain timeout reached; closing remaining connections"
        );
    }
    probes.abort();
    if let Some(g) = gauges {
        g.abort();
    }
    if let Some(w) = watcher {
        w.abort();
    }
    tracing::info!("shutdown complete");
    Ok(())
}
