//! ECS Fargate orchestrator service: task size, task count and autoscaling.
//!
//! The task count is the largest of four requirements: connections (every
//! open WebSocket costs memory), CPU (CPU-ms per message at the target
//! utilisation), in-flight LLM streams per task, and one task per AZ where
//! failover is required.
//!
//! The orchestrator's own stages (auth, intent rules, delivery) run on its CPU,
//! so their latency grows with utilisation. The async runtime shares a core
//! among ready tasks much like processor sharing (PS); [`cpu_stage_dist`]
//! gives the sojourn-time distribution it models for those stages and
//! [`cpu_ceiling`] the upper bound on ρ each budget implies.
//!
//! Failure sizing ([`super::failure`]): ECS spreads the tasks over the AZs,
//! so losing one AZ of `az_count` loses `ceil(n / az_count)` tasks (at least
//! one). Where failover is required the count is raised until the survivors
//! hold every session and stream at peak under their hard limits
//! (`connections_per_task`, `max_streams_per_task`, which the runtime
//! enforces) with CPU below 100% and, in prod, low enough for the CPU
//! stages' budgets; the lost tasks come back by scaling out. When that
//! raises the count, the target of the dimension that forced it is lowered
//! so target tracking settles at the raised count at peak instead of
//! scaling in to the healthy need.

use serde::Serialize;

use crate::cost::fargate_monthly;
use crate::error::Findings;
use crate::input::ServiceOverride;
use crate::latency::Stage;
use crate::path::Dist;

use super::failure::{self, Degraded};
use super::{ceil_u32, pct, round4, Assessment, Binding, Ctx};

/// Most tasks the failure search considers.
const MAX_FAILURE_TASKS: u32 = 1_000_000;

/// Valid Fargate task CPU values (CPU units, 1024 = 1 vCPU).
pub const FARGATE_CPU: [u32; 7] = [256, 512, 1024, 2048, 4096, 8192, 16384];

/// Valid memory values (MiB) for a Fargate task CPU, from the Amazon ECS
/// Developer Guide "Task CPU and memory" table
/// (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size>).
pub fn fargate_memory_options(cpu: u32) -> Vec<u32> {
    let range = |lo: u32, hi: u32, step: usize| (lo..=hi).step_by(step).collect::<Vec<_>>();
    match cpu {
        256 => vec![512, 1024, 2048],
        512 => range(1024, 4096, 1024),
        1024 => range(2048, 8192, 1024),
        2048 => range(4096, 16384, 1024),
        4096 => range(8192, 30720, 1024),
        8192 => range(16384, 61440, 4096),
        16384 => range(32768, 122_880, 8192),
        _ => Vec::new(),
    }
}

/// Whether (cpu, memory) is a valid Fargate combination.
pub fn is_valid_fargate(cpu: u32, memory_mib: u32) -> bool {
    fargate_memory_options(cpu).contains(&memory_mib)
}

/// Task counts each requirement alone would need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TaskRequirements {
    /// For CPU at the target utilisation.
    pub cpu: u32,
    /// For the open connections' memory.
    pub connections: u32,
    /// For the in-flight streams per task limit.
    pub in_flight_streams: u32,
    /// For availability (one per AZ, or one).
    pub availability: u32,
}

impl TaskRequirements {
    /// The count meeting all four.
    pub fn max(&self) -> u32 {
        self.cpu
            .max(self.connections)
            .max(self.in_flight_streams)
            .max(self.availability)
    }
}

/// The sized ECS service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServicePlan {
    /// Task CPU units (1024 = 1 vCPU).
    pub cpu: u32,
    /// Task memory in MiB.
    pub memory_mib: u32,
    /// Desired task count (carries the peak).
    pub tasks: u32,
    /// Autoscaling minimum.
    pub min_tasks: u32,
    /// Autoscaling maximum.
    pub max_tasks: u32,
    /// Target-tracking CPU utilisation, percent.
    pub target_cpu_percent: u32,
    /// Sessions one task holds at the memory ceiling (the runtime refuses more).
    pub connections_per_task: u32,
    /// Streams one task relays at most (the runtime's stream permits).
    pub max_streams_per_task: u32,
    /// Target-tracking value of the per-task average of connected sessions:
    /// `connections_per_task` at the scaling target utilisation.
    pub target_sessions_per_task: u32,
    /// Target-tracking value of the per-task average of LLM streams in flight:
    /// `max_streams_per_task` at the scaling target utilisation.
    pub target_streams_per_task: u32,
    /// CPU utilisation at peak with `tasks` tasks.
    pub cpu_utilisation_at_peak: f64,
    /// What each requirement alone needs at peak, for the chosen task size.
    pub requirements: TaskRequirements,
    /// Binding constraint, utilisation, cost and notes.
    pub assessment: Assessment,
}

/// A stage that runs on the orchestrator's CPU: (stage, fixed p95 ms outside
/// the CPU, CPU p95 ms, budget ms).
pub(crate) fn cpu_stages(ctx: &Ctx<'_>) -> [(Stage, f64, f64, u32); 3] {
    let o = &ctx.a.orchestrator;
    let b = &ctx.input.targets.latency_ms;
    [
        // Auth checks the rate limit in Redis besides verifying the token.
        (
            Stage::Auth,
            ctx.a.redis.get_p95_ms.v(),
            o.auth_cpu_p95_ms.v(),
            b.auth,
        ),
        (
            Stage::IntentRules,
            0.0,
            o.intent_rules_cpu_p95_ms.v(),
            b.intent_rules,
        ),
        (
            Stage::Delivery,
            o.delivery_network_p95_ms.v(),
            o.delivery_cpu_p95_ms.v(),
            b.delivery,
        ),
    ]
}

/// ln 20: the p95 of an exponential is ln 20 ≈ 2.996 times its mean.
const EXP_P95_PER_MEAN: f64 = 2.995_732_273_553_991;

/// The processor-sharing sojourn of a CPU job of size `cpu_ms` at
/// utilisation `rho`: `cpu_ms` plus a slowdown delay, the delay taken as
/// exponential with mean `cpu_ms` · ρ/(1 − ρ); infinite when ρ ≥ 1.
///
/// In an M/G/1-PS queue a job of size x has mean sojourn x/(1 − ρ) whatever
/// the service-time distribution (M. Harchol-Balter, "Performance Modeling
/// and Design of Computer Systems", Cambridge University Press 2013, Part
/// VII, processor sharing among the preemptive policies; L. Kleinrock,
/// "Queueing Systems, Volume 2: Computer Applications", Wiley 1976, ch. 4 on
/// time-sharing), so the mean delay beyond x is x·ρ/(1 − ρ). The mean
/// is exact; the exponential shape of the delay is this crate's assumption.
/// It gives the right limits (x alone when idle; a delay that grows like
/// 1/(1 − ρ)), but does not model: the variance of the PS sojourn of a job
/// of fixed size (lower than exponential for large jobs), several cores per
/// task, bursts above the mean utilisation, or the async runtime not being
/// an exact PS server (cooperative scheduling runs a ready task until it
/// yields). x is the stage's p95 CPU time (the figure the assumptions give).
pub(crate) fn cpu_sojourn(cpu_ms: f64, rho: f64) -> Dist {
    if rho >= 1.0 {
        return Dist::Point(f64::INFINITY);
    }
    let rho = rho.max(0.0);
    Dist::ShiftedExp {
        shift: cpu_ms,
        mean: cpu_ms * rho / (1.0 - rho),
    }
}

/// A CPU stage's latency distribution: its part outside the CPU (log-normal
/// with p95 `fixed_ms` and shape `sigma`) plus the PS sojourn of its CPU.
pub(crate) fn cpu_stage_dist(fixed_ms: f64, cpu_ms: f64, rho: f64, sigma: f64) -> Dist {
    let cpu = cpu_sojourn(cpu_ms, rho);
    if fixed_ms > 0.0 {
        Dist::Sum(vec![Dist::lognormal_p95_sigma(fixed_ms, sigma), cpu])
    } else {
        cpu
    }
}

/// The p95 of the CPU part of a stage: x + ln 20 · x·ρ/(1 − ρ).
#[cfg(test)]
pub(crate) fn cpu_sojourn_p95(cpu_ms: f64, rho: f64) -> f64 {
    cpu_sojourn(cpu_ms, rho)
        .exact_quantile(crate::erlang::P95)
        .unwrap_or(f64::INFINITY)
}

/// Lowest utilisation any task may run at: guards against a budget that
/// leaves almost no room turning into millions of tasks.
const MIN_CEILING: f64 = 0.05;

/// The CPU utilisation ceiling: the autoscaling target, lowered where a CPU
/// stage's budget needs more idle CPU. With room = budget − fixed p95, the
/// CPU part's p95 x + ln 20 · x·ρ/(1 − ρ) fits when ρ/(1 − ρ) ≤ k =
/// (room/x − 1)/ln 20, i.e. ρ ≤ k/(1 + k). (Adding the fixed part's p95 to
/// the CPU part's is a sizing rule, not a bound; the budget table takes the
/// stage's p95 from the distribution of the sum.)
pub(crate) fn cpu_ceiling(ctx: &Ctx<'_>) -> f64 {
    let mut ceiling = ctx.a.orchestrator.scaling_target_utilisation.v();
    for (_, fixed, cpu, budget) in cpu_stages(ctx) {
        let room = f64::from(budget) - fixed;
        // A budget the stage cannot meet even idle is reported by the budget
        // check; it does not drive the task count.
        if room > cpu && cpu > 0.0 {
            let k = (room / cpu - 1.0) / EXP_P95_PER_MEAN;
            ceiling = ceiling.min(k / (1.0 + k));
        }
    }
    ceiling.max(MIN_CEILING)
}

struct Demand {
    sessions: f64,
    messages_per_s: f64,
    streams: f64,
}

struct Model {
    cpu_ms: f64,
    baseline_mib: f64,
    per_session_mib: f64,
    memory_ceiling: f64,
    /// Sessions the task's open-file limit allows.
    fd_sessions: f64,
    max_streams: f64,
    ceiling: f64,
    /// Share of a task's session and stream capacity target tracking holds.
    target: f64,
    floor: u32,
    /// AZs the tasks spread over.
    az_count: u32,
    /// Whether counts are raised for the loss of an AZ.
    failover: bool,
    /// Highest CPU utilisation the survivors may run at (below 1; in prod
    /// also what the CPU stages' budgets allow).
    degraded_cpu_cap: f64,
}

/// How far each dimension's survivors are loaded after losing one AZ.
struct Survivors {
    tasks: u32,
    sessions: f64,
    streams: f64,
    cpu: f64,
}

impl Model {
    /// Sessions one task holds: what its memory holds at the ceiling, at most
    /// what its open-file limit allows.
    fn connections_per_task(&self, memory_mib: u32) -> f64 {
        ((f64::from(memory_mib) - self.baseline_mib) * self.memory_ceiling / self.per_session_mib)
            .floor()
            .clamp(0.0, self.fd_sessions)
    }

    /// The sessions target tracking holds per task (the count the connection
    /// requirement divides by, so the two agree).
    fn sessions_target(&self, memory_mib: u32) -> f64 {
        (self.connections_per_task(memory_mib) * self.target).floor()
    }

    /// The streams target tracking holds per task.
    fn streams_target(&self) -> f64 {
        (self.max_streams * self.target).floor().max(1.0)
    }

    fn vcpu_needed(&self, d: &Demand) -> f64 {
        d.messages_per_s * self.cpu_ms / 1000.0
    }

    fn needs(&self, cpu: u32, memory_mib: u32, d: &Demand) -> TaskRequirements {
        let vcpu = f64::from(cpu) / 1024.0;
        let conn = self.sessions_target(memory_mib);
        TaskRequirements {
            cpu: ceil_u32(self.vcpu_needed(d) / (vcpu * self.ceiling)),
            connections: if conn > 0.0 {
                ceil_u32(d.sessions / conn)
            } else {
                u32::MAX
            },
            in_flight_streams: ceil_u32(d.streams / self.streams_target()),
            availability: self.floor,
        }
    }

    /// The survivors of `tasks` tasks once one AZ's share is gone.
    fn survivors(&self, cpu: u32, memory_mib: u32, tasks: u32, d: &Demand) -> Survivors {
        let left = tasks - failure::lost_in_one_az(tasks, self.az_count);
        let n = f64::from(left);
        let ratio = |demand: f64, per_task: f64| {
            if left == 0 || per_task <= 0.0 {
                f64::INFINITY
            } else {
                demand / (n * per_task)
            }
        };
        Survivors {
            tasks: left,
            sessions: ratio(d.sessions, self.connections_per_task(memory_mib)),
            streams: ratio(d.streams, self.max_streams),
            cpu: ratio(self.vcpu_needed(d), f64::from(cpu) / 1024.0),
        }
    }

    /// Whether the survivors of `tasks` hold the demand: sessions and
    /// streams below the hard limits, CPU below its cap.
    fn survives(&self, cpu: u32, memory_mib: u32, tasks: u32, d: &Demand) -> bool {
        let s = self.survivors(cpu, memory_mib, tasks, d);
        s.sessions < 1.0 && s.streams < 1.0 && s.cpu < self.degraded_cpu_cap
    }

    /// `tasks`, raised where failover is required until one AZ's loss is
    /// survived.
    fn with_failure(&self, cpu: u32, memory_mib: u32, tasks: u32, d: &Demand) -> u32 {
        if !self.failover {
            return tasks;
        }
        failure::smallest_surviving(tasks, MAX_FAILURE_TASKS, |n| {
            self.survives(cpu, memory_mib, n, d)
        })
        .unwrap_or(MAX_FAILURE_TASKS)
    }

    /// Tasks every requirement but connections needs under demand `d`.
    fn without_connections(&self, cpu: u32, d: &Demand) -> u32 {
        let r = self.needs(
            cpu,
            fargate_memory_options(cpu).last().copied().unwrap_or(0),
            d,
        );
        r.cpu.max(r.in_flight_streams).max(r.availability)
    }

    /// The smallest valid memory for `cpu` whose connection limit fits in
    /// `tasks` tasks; the largest when none does.
    fn memory_for(&self, cpu: u32, tasks: u32, sessions: f64) -> u32 {
        let options = fargate_memory_options(cpu);
        options
            .iter()
            .copied()
            .find(|m| {
                let conn = self.sessions_target(*m);
                conn > 0.0 && ceil_u32(sessions / conn) <= tasks
            })
            .or_else(|| options.last().copied())
            .unwrap_or(0)
    }

    fn utilisation(&self, cpu: u32, memory_mib: u32, tasks: u32, d: &Demand) -> (f64, f64) {
        let tasks_f = f64::from(tasks.max(1));
        let cpu_util = self.vcpu_needed(d) / (tasks_f * f64::from(cpu) / 1024.0);
        let mem_util = (self.baseline_mib + d.sessions / tasks_f * self.per_session_mib)
            / f64::from(memory_mib.max(1));
        let stream_util = d.streams / (tasks_f * self.max_streams);
        (cpu_util, cpu_util.max(mem_util).max(stream_util))
    }
}

/// Sizes the service and applies the `capacity.service` override.
pub(crate) fn size(ctx: &Ctx<'_>, findings: &mut Findings) -> ServicePlan {
    let o = &ctx.a.orchestrator;
    let r = ctx.rates;
    let floor = if ctx.failover() {
        ctx.input.az_count.max(1)
    } else {
        1
    };
    // In prod the survivors' CPU must also keep the CPU stages in budget
    // (the same processor-sharing bound as `cpu_ceiling`, without the
    // autoscaling target); everywhere it must stay below 100%.
    let mut degraded_cpu_cap: f64 = 1.0;
    if ctx.is_production() {
        for (_, fixed, cpu, budget) in cpu_stages(ctx) {
            let room = f64::from(budget) - fixed;
            if room > cpu {
                degraded_cpu_cap = degraded_cpu_cap.min(1.0 - cpu / room);
            }
        }
    }
    let m = Model {
        // Measured on the benchmark machine, converted to Fargate vCPU-ms.
        cpu_ms: o.cpu_ms_per_message.v() * o.bench_cpu_per_fargate_vcpu.v(),
        baseline_mib: o.memory_baseline_mib.v(),
        per_session_mib: o.memory_per_session_mib.v(),
        memory_ceiling: o.memory_ceiling.v(),
        fd_sessions: o.session_file_descriptors.v().max(1.0),
        max_streams: o.max_streams_per_task.v().max(1.0),
        ceiling: cpu_ceiling(ctx),
        target: o.scaling_target_utilisation.v(),
        floor,
        az_count: ctx.input.az_count,
        failover: ctx.failover(),
        degraded_cpu_cap,
    };
    let peak = Demand {
        sessions: f64::from(r.concurrent_sessions),
        messages_per_s: r.messages_per_s,
        streams: r.streams_in_flight,
    };
    // Connections stay at their peak off-peak too: scaling in would drop
    // open WebSockets, so the minimum fleet must still hold every session.
    let peak_factor = ctx.input.targets.traffic.peak_factor.max(1.0);
    let average = Demand {
        sessions: peak.sessions,
        messages_per_s: peak.messages_per_s / peak_factor,
        streams: peak.streams / peak_factor,
    };

    // Task CPU: the smallest allowed size whose fleet stays at the floor,
    // otherwise the largest allowed size scaled out (monotone in traffic).
    let mut candidates: Vec<u32> = FARGATE_CPU
        .iter()
        .copied()
        .filter(|c| f64::from(*c) >= o.min_task_cpu.v() && f64::from(*c) <= o.max_task_cpu.v())
        .collect();
    if candidates.is_empty() {
        findings.warn(
            "service",
            "assumptions min_task_cpu..max_task_cpu contain no Fargate CPU size; using 1024",
        );
        candidates.push(1024);
    }
    // The failure case counts in the type choice so counts stay monotone.
    let tasks_for = |cpu: u32| {
        let max_mem = fargate_memory_options(cpu).last().copied().unwrap_or(0);
        m.with_failure(cpu, max_mem, m.needs(cpu, max_mem, &peak).max(), &peak)
    };
    let (idx, _) = super::pick_type(candidates.len(), floor, |i| Some(tasks_for(candidates[i])))
        .unwrap_or((0, floor));
    let rec_cpu = candidates[idx];
    // Memory: open connections do not drain off-peak, so the task memory is
    // chosen to hold every session in the fleet the average load needs (the
    // autoscaling minimum), not just in the peak fleet. This also keeps both
    // counts monotone in traffic: each is max(its other requirements, the
    // connection count at the largest memory).
    let rec_mem = m.memory_for(
        rec_cpu,
        m.without_connections(rec_cpu, &average),
        peak.sessions,
    );
    let rec_req = m.needs(rec_cpu, rec_mem, &peak);
    let healthy_tasks = rec_req.max();
    let rec_tasks = m.with_failure(rec_cpu, rec_mem, healthy_tasks, &peak);
    // The minimum holds the average load through an AZ's loss too.
    let rec_min = m
        .with_failure(
            rec_cpu,
            rec_mem,
            m.needs(rec_cpu, rec_mem, &average).max(),
            &average,
        )
        .min(rec_tasks);
    let rec_max = rec_tasks.max(ceil_u32(f64::from(rec_tasks) * o.max_tasks_factor.v()));

    let physical = [
        (Binding::Cpu, rec_req.cpu),
        (Binding::Connections, rec_req.connections),
        (Binding::InFlightStreams, rec_req.in_flight_streams),
    ];
    let mut binding = if ctx.failover() {
        Binding::OnePerAz
    } else {
        Binding::Minimum
    };
    let mut most = floor;
    for (b, n) in physical {
        // Ties go to the floor: a fractional need rounded up to the floor is
        // not what decided the count.
        if n > most {
            most = n;
            binding = b;
        }
    }
    if rec_tasks > healthy_tasks {
        binding = Binding::AzLoss;
    }

    let mut notes = vec![
        format!(
            "peak {:.1} msg/s × {} CPU-ms = {:.2} vCPU at ≤ {} CPU ({:.0} msg/s per vCPU) → {} tasks",
            peak.messages_per_s,
            m.cpu_ms,
            m.vcpu_needed(&peak),
            pct(m.ceiling),
            m.ceiling * 1000.0 / m.cpu_ms,
            rec_req.cpu
        ),
        format!(
            "{} sessions at {} MiB each, {} per task of {} MiB (target {} of {}) → {} tasks",
            r.concurrent_sessions,
            m.per_session_mib,
            m.sessions_target(rec_mem),
            rec_mem,
            pct(m.target),
            m.connections_per_task(rec_mem),
            rec_req.connections
        ),
        format!(
            "{:.0} streams in flight, {} per task (target {} of {}) → {} tasks",
            peak.streams,
            m.streams_target(),
            pct(m.target),
            m.max_streams,
            rec_req.in_flight_streams
        ),
    ];

    // Explicit capacity wins field by field; missing fields are derived for
    // the explicit task size.
    let ov: Option<&ServiceOverride> = ctx.input.overrides.service.as_ref();
    let overridden = ov.is_some();
    let (cpu, memory_mib, tasks, min_tasks, max_tasks) = match ov {
        None => (rec_cpu, rec_mem, rec_tasks, rec_min, rec_max),
        Some(ov) => {
            let cpu = ov.cpu.unwrap_or(rec_cpu);
            let memory_mib = ov.memory_mib.unwrap_or_else(|| {
                let fleet = ov
                    .min_tasks
                    .unwrap_or_else(|| m.without_connections(cpu, &average));
                m.memory_for(cpu, fleet, peak.sessions)
            });
            let tasks = ov
                .tasks
                .unwrap_or_else(|| m.needs(cpu, memory_mib, &peak).max());
            let tasks = ov
                .tasks
                .unwrap_or_else(|| m.with_failure(cpu, memory_mib, tasks, &peak));
            let min_tasks = ov.min_tasks.unwrap_or_else(|| {
                let need = m.needs(cpu, memory_mib, &average).max().max(floor);
                m.with_failure(cpu, memory_mib, need, &average).min(tasks)
            });
            let max_tasks = ov
                .max_tasks
                .unwrap_or_else(|| tasks.max(ceil_u32(f64::from(tasks) * o.max_tasks_factor.v())));
            notes.push(format!(
                "sizing recommends {} × {} CPU / {} MiB (min {}, max {}), bound by {}",
                rec_tasks, rec_cpu, rec_mem, rec_min, rec_max, binding
            ));
            (cpu, memory_mib, tasks, min_tasks, max_tasks)
        }
    };

    if overridden {
        check_override(
            ctx, findings, &m, &peak, cpu, memory_mib, tasks, min_tasks, max_tasks,
        );
    }

    let requirements = m.needs(cpu, memory_mib, &peak);
    let (cpu_util, utilisation) = m.utilisation(cpu, memory_mib, tasks, &peak);
    let cost = fargate_monthly(ctx.prices, cpu, memory_mib, tasks);

    let fail = degraded(&m, cpu, memory_mib, tasks, &peak);
    if let Some(problem) = failure::check(ctx, findings, "service", &fail, overridden) {
        findings.override_shortfall(
            "service",
            problem,
            ctx.is_production(),
            ctx.acknowledged("service"),
        );
    }
    // Target tracking must keep the failure-sized count at peak: lower the
    // target of each dimension that would fail with one task fewer.
    let mut sessions_target = m.sessions_target(memory_mib);
    let mut streams_target = m.streams_target();
    let mut cpu_target = m.ceiling;
    if m.failover && !overridden && min_tasks < tasks && tasks > requirements.max() {
        let fewer = m.survivors(cpu, memory_mib, tasks - 1, &peak);
        let vcpu = f64::from(cpu) / 1024.0;
        if fewer.sessions >= 1.0 {
            sessions_target = failure::target_settling_at(peak.sessions, tasks, sessions_target);
        }
        if fewer.streams >= 1.0 {
            streams_target = failure::target_settling_at(peak.streams, tasks, streams_target);
        }
        if fewer.cpu >= m.degraded_cpu_cap {
            // In whole percent of a task's vCPU.
            let per_task = failure::target_settling_at(
                m.vcpu_needed(&peak) * 100.0,
                tasks,
                (cpu_target * vcpu * 100.0).floor(),
            );
            cpu_target = per_task / vcpu / 100.0;
        }
        if (sessions_target, streams_target, cpu_target)
            != (m.sessions_target(memory_mib), m.streams_target(), m.ceiling)
        {
            notes.push(format!(
                "scaling targets lowered so target tracking keeps {tasks} tasks at peak: {sessions_target} sessions, {streams_target} streams, {:.0}% CPU per task",
                (cpu_target * 100.0).floor()
            ));
        }
    }
    ServicePlan {
        cpu,
        memory_mib,
        tasks,
        min_tasks,
        max_tasks,
        // Rounded down so target tracking never aims above the ceiling.
        target_cpu_percent: ceil_u32((cpu_target * 100.0).floor()).max(1),
        connections_per_task: ceil_u32(m.connections_per_task(memory_mib)),
        max_streams_per_task: ceil_u32(m.max_streams),
        target_sessions_per_task: ceil_u32(sessions_target).max(1),
        target_streams_per_task: ceil_u32(streams_target),
        cpu_utilisation_at_peak: round4(cpu_util),
        requirements,
        assessment: Assessment::new(binding, utilisation, cost, overridden, notes)
            .with_failure(&fail),
    }
}

/// The service with one AZ's tasks gone, in the most loaded dimension.
fn degraded(m: &Model, cpu: u32, memory_mib: u32, tasks: u32, d: &Demand) -> Degraded {
    let (_, what) = Degraded::describe(tasks, m.az_count, "task");
    let s = m.survivors(cpu, memory_mib, tasks, d);
    // CPU counts against its cap, so a cap below 100% shows as utilisation 1.
    let cpu = if m.degraded_cpu_cap > 0.0 {
        s.cpu / m.degraded_cpu_cap
    } else {
        f64::INFINITY
    };
    Degraded {
        what,
        survivors: s.tasks,
        utilisation: s.sessions.max(s.streams).max(cpu),
        p95_ms: None,
        budget_ms: None,
    }
}

#[allow(clippy::too_many_arguments)]
fn check_override(
    ctx: &Ctx<'_>,
    findings: &mut Findings,
    m: &Model,
    peak: &Demand,
    cpu: u32,
    memory_mib: u32,
    tasks: u32,
    min_tasks: u32,
    max_tasks: u32,
) {
    if !is_valid_fargate(cpu, memory_mib) {
        findings.invalid_override(
            "service",
            format!(
                "{cpu} CPU with {memory_mib} MiB is not a valid Fargate task size (valid memory for {cpu} CPU: {:?})",
                fargate_memory_options(cpu)
            ),
        );
        return;
    }
    if tasks == 0 || min_tasks > max_tasks {
        findings.invalid_override(
            "service",
            format!("tasks {tasks}, min_tasks {min_tasks}, max_tasks {max_tasks} are inconsistent"),
        );
        return;
    }
    let need = m.needs(cpu, memory_mib, peak);
    let mut short = Vec::new();
    let (cpu_util, _) = m.utilisation(cpu, memory_mib, tasks, peak);
    if tasks < need.cpu {
        short.push(format!(
            "CPU at peak {} exceeds the {} ceiling (needs {} tasks)",
            pct(cpu_util),
            pct(m.ceiling),
            need.cpu
        ));
    }
    if tasks < need.connections {
        short.push(format!(
            "{tasks} tasks hold {:.0} sessions at the scaling target, peak {:.0} (needs {} tasks)",
            f64::from(tasks) * m.sessions_target(memory_mib),
            peak.sessions,
            need.connections
        ));
    }
    if tasks < need.in_flight_streams {
        short.push(format!(
            "{tasks} tasks relay {:.0} streams at the scaling target, {:.0} in flight at peak",
            f64::from(tasks) * m.streams_target(),
            peak.streams
        ));
    }
    if tasks < m.floor || min_tasks < m.floor {
        short.push(format!(
            "fewer than one task per AZ ({} AZs) where failover is required",
            m.floor
        ));
    }
    if min_tasks < need.connections {
        short.push(format!(
            "min_tasks {min_tasks} cannot hold {:.0} sessions (scaling in drops connections)",
            peak.sessions
        ));
    }
    if max_tasks < tasks || min_tasks > tasks {
        short.push(format!(
            "tasks {tasks} lies outside autoscaling range {min_tasks}..={max_tasks}"
        ));
    }
    if !short.is_empty() {
        findings.override_shortfall(
            "service",
            short.join("; "),
            ctx.is_production(),
            ctx.acknowledged("service"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fargate_table_matches_aws_documentation() {
        assert_eq!(fargate_memory_options(256), vec![512, 1024, 2048]);
        assert_eq!(fargate_memory_options(512), vec![1024, 2048, 3072, 4096]);
        assert_eq!(fargate_memory_options(1024).first(), Some(&2048));
        assert_eq!(fargate_memory_options(1024).last(), Some(&8192));
        assert_eq!(fargate_memory_options(4096).last(), Some(&30720));
        assert_eq!(fargate_memory_options(8192)[1], 20480);
        assert_eq!(fargate_memory_options(16384).last(), Some(&122_880));
        assert!(is_valid_fargate(1024, 2048));
        assert!(!is_valid_fargate(1024, 1024));
        assert!(!is_valid_fargate(300, 1024));
        assert!(is_valid_fargate(256, 512));
        assert!(!is_valid_fargate(256, 4096));
        assert!(is_valid_fargate(1024, 3072));
        assert!(is_valid_fargate(8192, 20480));
        assert!(!is_valid_fargate(8192, 18432));
    }

    #[test]
    fn processor_sharing_sojourn_by_hand() {
        // 5 ms of CPU at 60% utilisation. Mean sojourn (M/G/1-PS):
        // 5 / (1 − 0.6) = 12.5 ms. Delay beyond the 5 ms: mean 12.5 − 5 = 7.5 ms,
        // exponential, so its p95 is 7.5 × ln 20 = 7.5 × 2.995732 = 22.468 ms;
        // the sojourn p95 is 5 + 22.468 = 27.468 ms (the old x/(1 − ρ) = 12.5
        // was the mean).
        let d = cpu_sojourn(5.0, 0.6);
        assert!((d.mean() - 12.5).abs() < 1e-9);
        assert!((cpu_sojourn_p95(5.0, 0.6) - 27.468).abs() < 1e-3);
        // Idle CPU: the job's own 5 ms.
        assert!((cpu_sojourn_p95(5.0, 0.0) - 5.0).abs() < 1e-12);
        assert!(cpu_sojourn_p95(5.0, 1.0).is_infinite());
        // With a 20 ms log-normal network part (σ 0.5) the stage's p95 is
        // below 20 + 27.468 = 47.47 (tails rarely coincide) and above the
        // larger part alone, 27.47.
        let p = cpu_stage_dist(20.0, 5.0, 0.6, 0.5).quantile(0.95);
        assert!(p > 27.468 && p < 47.468, "{p}");
    }
}
