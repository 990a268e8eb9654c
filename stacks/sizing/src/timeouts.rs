//! Timeouts derived from the budgets and stream durations.
//!
//! Every timeout guards a silence: the longest time an open connection may
//! carry no bytes. On a WebSocket that is the server's ping interval; on a
//! request it is the longest response (pre-LLM stages + first token + the
//! longest tier's stream + guardrails + delivery, complex tier included).
//! Timeouts are that silence times a safety factor, clamped into the ranges
//! AWS accepts, with a warning whenever clamping would cut a response short.

use serde::Serialize;

use crate::budget::BudgetTable;
use crate::error::Findings;
use crate::latency::Stage;
use crate::resources::{ceil_u32, round_ms, Ctx};

/// Every derived timeout, in seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeouts {
    /// How often the runtime pings an idle WebSocket; every idle timeout
    /// below is derived from it, so the task definition passes it on.
    pub websocket_ping_interval_s: u32,
    /// ALB idle timeout (1-4000 s).
    pub alb_idle_timeout_s: u32,
    /// Target-group deregistration delay (0-3600 s): the runtime's poll
    /// interval plus its drain timeout, so a task that notices it is
    /// draining as late as possible still finishes its answers before the
    /// ALB cuts (README, "Draining: the order of a task's stop").
    pub deregistration_delay_s: u32,
    /// How often the runtime asks DescribeTargetHealth for its own target
    /// (`MANGA_DRAIN_POLL_SECS`): the longest it runs on after its
    /// deregistration began without knowing.
    pub drain_poll_interval_s: u32,
    /// How long the runtime lets answers in flight finish once it drains
    /// (`MANGA_DRAIN_TIMEOUT_SECS`): the longest response times the safety
    /// factor, within the stop timeout.
    pub drain_timeout_s: u32,
    /// CloudFront origin response (read) timeout (1-60 s default quota).
    pub cloudfront_origin_read_timeout_s: u32,
    /// CloudFront origin keep-alive timeout (1-60 s default quota).
    pub cloudfront_origin_keepalive_timeout_s: u32,
    /// ECS container stop timeout (2-120 s on Fargate): the drain timeout
    /// plus [`EXIT_GRACE_S`], for a task that gets SIGTERM without having
    /// drained (its poll failed).
    pub container_stop_timeout_s: u32,
    /// Target-group health check interval (5-300 s).
    pub health_check_interval_s: u32,
    /// Health check timeout (2-120 s, below the interval).
    pub health_check_timeout_s: u32,
    /// Consecutive successes to become healthy (2-10).
    pub healthy_threshold: u32,
    /// Consecutive failures to become unhealthy (2-10).
    pub unhealthy_threshold: u32,
    /// ECS health check grace period after a task starts.
    pub health_check_grace_period_s: u32,
    /// The longest modelled response, ms (complex tier included).
    pub longest_response_ms: f64,
    /// How each value was derived.
    pub notes: Vec<String>,
}

/// The runtime's DescribeTargetHealth poll interval: 5 s bounds how late
/// it notices a deregistration at a cost of 12 calls a minute per task.
pub const DRAIN_POLL_INTERVAL_S: u32 = 5;

/// Seconds between the end of the drain and SIGKILL: the runtime's exit
/// (flushing logs and EMF lines) after its drain timeout.
pub const EXIT_GRACE_S: u32 = 3;

/// Derives the timeouts from the budget table and assumptions.
pub(crate) fn derive(ctx: &Ctx<'_>, table: &BudgetTable, findings: &mut Findings) -> Timeouts {
    let a = ctx.a;
    let safety = a.timeouts.safety_factor.v().max(1.0);
    let stage = |s: Stage| {
        table.row(s).map_or(0.0, |r| {
            if r.modelled_p95_ms.is_finite() {
                r.modelled_p95_ms
            } else {
                0.0
            }
        })
    };
    let pre_llm = stage(Stage::Edge)
        + stage(Stage::Auth)
        + stage(Stage::MemoryRead)
        + stage(Stage::IntentRules)
        + stage(Stage::IntentMl)
        + stage(Stage::CacheHit)
        + stage(Stage::ServiceCalls).max(stage(Stage::Retrieval));
    // The longest answer of any tier, each at its own model's p95s.
    let longest_llm = a
        .tiers
        .all()
        .iter()
        .zip(ctx.tier_models)
        .filter(|(t, _)| t.uses_llm())
        .map(|(t, m)| m.first_token_p95_ms + m.stream_p95_ms(t.output_tokens))
        .fold(0.0_f64, f64::max);
    let longest_ms = pre_llm + longest_llm + stage(Stage::Guardrails) + stage(Stage::Delivery);
    let longest_s = longest_ms / 1000.0;
    let ping_s = a.edge.websocket_ping_interval_s.v();
    let silence_s = longest_s.max(ping_s);
    let mut notes = vec![format!(
        "longest response {:.1} s (complex tier p95); WebSocket ping every {ping_s} s; safety ×{safety}",
        longest_s
    )];

    let want_read = ceil_u32(silence_s * safety);
    let read = want_read.clamp(1, 60);
    if want_read > 60 {
        findings.warn(
            "timeouts",
            format!(
                "CloudFront origin read timeout needs {want_read} s, above the 60 s default quota; request an increase or shorten the longest response"
            ),
        );
    }
    // The ALB must outlast CloudFront's read timeout, else it closes a
    // connection CloudFront is still waiting on.
    let alb = ceil_u32(silence_s * safety).max(read).clamp(1, 4000);
    // CloudFront must drop an idle origin connection well before the ALB
    // does, or it may reuse one the ALB is closing (a 502).
    let keepalive = (alb / 2).clamp(1, 60);
    // The order of a task's stop (Amazon ECS Developer Guide, "Optimize
    // load balancer connection draining parameters for Amazon ECS"): ECS
    // deregisters the target and waits for the load balancer to report it
    // unused, which takes at most the deregistration delay; only then does
    // it send SIGTERM, and SIGKILL after the stop timeout. So the
    // deregistration delay is the runtime's whole window: it notices the
    // `draining` state within one poll, tells clients to reconnect and
    // finishes the answers in flight within its drain timeout.
    let want_drain = ceil_u32(longest_s * safety);
    let stop = (want_drain + EXIT_GRACE_S).clamp(2, 120);
    if want_drain + EXIT_GRACE_S > 120 {
        findings.warn(
            "timeouts",
            format!(
                "a stream may need {want_drain} s to finish, above what Fargate's 120 s stop timeout leaves"
            ),
        );
    }
    let drain = want_drain.min(stop - EXIT_GRACE_S);
    let poll = DRAIN_POLL_INTERVAL_S;
    let dereg = (poll + drain).min(3600);
    notes.push(format!(
        "origin read {read} s and ALB idle {alb} s cover the longest silence; keep-alive {keepalive} s is half the ALB idle timeout"
    ));
    notes.push(format!(
        "drain: noticed within the {poll} s poll, answers finish within {drain} s (longest response x safety), so deregistration delay {dereg} s; stop timeout {stop} s = drain + {EXIT_GRACE_S} s exit"
    ));

    let interval = ceil_u32(a.timeouts.health_check_interval_s.v()).clamp(5, 300);
    // A health check is trivial; taking longer than the whole conversational
    // budget (times the safety factor) means the task is not healthy.
    let hc_timeout =
        ceil_u32(f64::from(ctx.input.targets.latency_ms.end_to_end_p95) / 1000.0 * safety)
            .clamp(2, interval.saturating_sub(1).max(2));
    let healthy = ceil_u32(a.timeouts.healthy_threshold.v()).clamp(2, 10);
    let unhealthy = ceil_u32(a.timeouts.unhealthy_threshold.v()).clamp(2, 10);
    let grace = ceil_u32(a.orchestrator.container_start_s.v() * safety);
    notes.push(format!(
        "health check every {interval} s, timeout {hc_timeout} s; unhealthy after {} s",
        interval * unhealthy
    ));

    Timeouts {
        websocket_ping_interval_s: ping_s.ceil() as u32,
        alb_idle_timeout_s: alb,
        deregistration_delay_s: dereg,
        drain_poll_interval_s: poll,
        drain_timeout_s: drain,
        cloudfront_origin_read_timeout_s: read,
        cloudfront_origin_keepalive_timeout_s: keepalive,
        container_stop_timeout_s: stop,
        health_check_interval_s: interval,
        health_check_timeout_s: hc_timeout,
        healthy_threshold: healthy,
        unhealthy_threshold: unhealthy,
        health_check_grace_period_s: grace,
        longest_response_ms: round_ms(longest_ms),
        notes,
    }
}
