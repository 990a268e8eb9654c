//! The drain watcher: starts the drain when the load balancer starts draining this task,
//! not when SIGTERM arrives.
//!
//! Why: on a deployment or scale-in, ECS first deregisters the task from its target
//! group and waits until the load balancer reports the target `UNUSED`, which takes the
//! deregistration delay; only then does it send the stop signal (SIGTERM): "Amazon ECS
//! monitors the load balancer, and waits for the load balancer to report that the keep
//! alive connection is closed (the target is in an UNUSED state). The amount of time that
//! the load balancer waits to move the target to the UNUSED state is the deregistration
//! delay" (Amazon ECS Developer Guide, "Optimize load balancer connection draining
//! parameters for Amazon ECS",
//! docs.aws.amazon.com/AmazonECS/latest/developerguide/load-balancer-connection-draining.html).
//! During the delay the target is `draining`: "The load balancer stops sending requests
//! to targets that are deregistering, but uses connection draining to ensure that
//! in-flight traffic completes on the existing connections" (ELB API Reference,
//! DeregisterTargets; TargetHealth's reason `Target.DeregistrationInProgress`: "the
//! deregistration delay period has not expired"), and when it ends the ALB closes what
//! it still holds ("After the deregistration delay elapses, the deregistration process
//! completes and the state of the target is unused", ALB User Guide, Deregistration
//! delay, as quoted by aws.github.io/aws-eks-best-practices/networking/loadbalancing).
//! A drain that waits for SIGTERM therefore starts after the ALB has cut every
//! WebSocket, and the task metadata endpoint does not help: the task stays `RUNNING`
//! until it stops.
//!
//! So [`watch`] polls the target's state every `MANGA_DRAIN_POLL_SECS` through a
//! [`TargetHealth`] (in ECS: `DescribeTargetHealth`,
//! [`crate::backends::aws::target_health::ElbTargetHealth`]) and calls
//! [`super::AppState::begin_drain`] as soon as it reads `draining`. Each connection then
//! finishes its answer in flight, gets a `reconnect` frame and is closed with 1001, all
//! while the ALB still holds it, so clients move to other tasks without an error. The
//! HTTP listener keeps serving `/healthz` (the container health check keeps passing) and
//! the process exits only on SIGTERM. "If a deregistering target has no in-flight
//! requests and no active connections, Elastic Load Balancing immediately completes the
//! deregistration process, without waiting for the deregistration delay to elapse"
//! (the same ALB page and quote), so a quick drain also shortens the deployment.
//!
//! A failed poll is logged (rate-limited) and retried at the next interval; it never
//! stops the watcher or the server.

use super::AppState;
use async_trait::async_trait;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// What the load balancer says of this task's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetState {
    /// Registered and routed to or about to be (`initial`, `healthy`, `unhealthy`,
    /// `unavailable`, …; the state name is kept for the log): keep serving.
    Serving(String),
    /// Deregistering with connection draining in progress (`draining`,
    /// `unhealthy.draining`): the ALB sends no new connections and cuts the existing ones
    /// when the deregistration delay ends.
    Draining,
    /// Not registered (`unused`, reason `Target.NotRegistered`): before the first
    /// registration, or after the deregistration completed.
    NotRegistered,
}

#[derive(Debug, thiserror::Error)]
pub enum TargetHealthError {
    /// The task's own target id could not be found (task metadata endpoint).
    #[error("target id: {0}")]
    TargetId(String),
    /// The target-health call failed.
    #[error("target health: {0}")]
    Api(String),
}

/// The source of [`TargetState`]s: the ELB API in ECS, a double in tests.
#[async_trait]
pub trait TargetHealth: Send + Sync + std::fmt::Debug {
    async fn state(&self) -> Result<TargetState, TargetHealthError>;
}

/// Polls `health` every `every` until it reports a drain (then starts the server's
/// drain and returns), the server drains for another reason (SIGTERM), or the state is
/// gone. `NotRegistered` counts as a drain only after the target was seen registered:
/// before that, ECS simply has not registered the task yet.
pub(super) async fn watch(state: Weak<AppState>, health: Arc<dyn TargetHealth>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen_registered = false;
    loop {
        tick.tick().await;
        match state.upgrade() {
            Some(st) if !st.is_draining() => {}
            _ => return,
        }
        let polled = health.state().await;
        let Some(st) = state.upgrade() else { return };
        if st.is_draining() {
            return;
        }
        match polled {
            Ok(TargetState::Serving(s)) => {
                if !seen_registered {
                    tracing::info!(state = %s, "load balancer target registered");
                }
                seen_registered = true;
            }
            Ok(TargetState::NotRegistered) if !seen_registered => {}
            Ok(s @ (TargetState::Draining | TargetState::NotRegistered)) => {
                tracing::info!(
                    state = ?s,
                    open = st.open_connections(),
                    "the load balancer is deregistering this task; draining: clients are \
                     told to reconnect; the process exits on SIGTERM"
                );
                st.begin_drain();
                return;
            }
            Err(e) => crate::warn_limited!("drain watcher: {e}; retrying next poll"),
        }
    }
}
