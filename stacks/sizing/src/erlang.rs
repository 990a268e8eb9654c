//! Queueing formulas: Erlang B and C for M/M/c pools, wait-time tails, and the
//! search for the smallest pool that fits a latency budget.
//!
//! A pooled resource (model workers, search threads, cache nodes) is modelled
//! as M/M/c: Poisson arrivals at rate λ, exponential service at rate μ per
//! server, c servers, offered load a = λ/μ Erlangs. Erlang C is computed from
//! the Erlang B recursion rather than the factorial formula because a^c/c!
//! overflows an f64 long before the thousands of servers a large fleet has;
//! the recursion only ever handles numbers in [0, 1].
//!
//! Service times in this system are not exponential (a model worker's
//! inference time has a p95 under twice its mean), so pools sized from a
//! service time with a known mean and p95 use the Allen–Cunneen M/G/c
//! approximation ([`allen_cunneen`]): the M/M/c wait scaled by (1 + C_s²)/2.
//!
//! Units are the caller's: rates and times just have to agree (per second and
//! seconds everywhere in this crate). Neighbours: [`crate::path`] turns the
//! waits into distributions ([`crate::path::Dist::queue_wait`]) for the
//! end-to-end path; the resources (`resources/*.rs`) search pool sizes here.

/// Erlang B: probability that all `servers` are busy when `a` Erlangs are
/// offered to a loss system.
///
/// Recursion B(0) = 1, B(k) = a·B(k−1) / (k + a·B(k−1)): every term stays in
/// [0, 1], so it is stable for any server count.
pub fn erlang_b(servers: u32, a: f64) -> f64 {
    let mut b = 1.0;
    for k in 1..=servers {
        b = next_erlang_b(b, k, a);
    }
    b
}

fn next_erlang_b(prev: f64, k: u32, a: f64) -> f64 {
    let ab = a * prev;
    ab / (f64::from(k) + ab)
}

/// Erlang C from Erlang B at the same (c, a): C = c·B / (c − a(1 − B)).
/// Returns 1 when the pool is saturated (a ≥ c): every arrival waits.
fn erlang_c_from_b(servers: u32, a: f64, b: f64) -> f64 {
    let c = f64::from(servers);
    if servers == 0 || a >= c {
        return 1.0;
    }
    (c * b / (c - a * (1.0 - b))).clamp(0.0, 1.0)
}

/// Erlang C: probability that an arrival to an M/M/c queue waits at all.
pub fn erlang_c(servers: u32, a: f64) -> f64 {
    erlang_c_from_b(servers, a, erlang_b(servers, a))
}

/// An M/M/c queue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mmc {
    /// Arrivals per unit time (λ).
    pub arrival_rate: f64,
    /// Completions per unit time of one server (μ).
    pub service_rate: f64,
    /// Servers (c).
    pub servers: u32,
}

impl Mmc {
    /// Offered load a = λ/μ, in Erlangs.
    pub fn offered_load(&self) -> f64 {
        self.arrival_rate / self.service_rate
    }

    /// Utilisation ρ = a/c.
    pub fn utilisation(&self) -> f64 {
        if self.servers == 0 {
            return f64::INFINITY;
        }
        self.offered_load() / f64::from(self.servers)
    }

    /// Whether the queue is stable (ρ < 1).
    pub fn is_stable(&self) -> bool {
        self.utilisation() < 1.0
    }

    /// P(wait > 0), Erlang C.
    pub fn prob_wait(&self) -> f64 {
        erlang_c(self.servers, self.offered_load())
    }

    /// P(wait > t) = C·e^(−(cμ − λ)t).
    pub fn prob_wait_exceeds(&self, t: f64) -> f64 {
        if !self.is_stable() {
            return 1.0;
        }
        self.prob_wait() * (-(self.drain_rate()) * t).exp()
    }

    /// cμ − λ: the rate the queue drains at, which sets the wait tail.
    fn drain_rate(&self) -> f64 {
        f64::from(self.servers) * self.service_rate - self.arrival_rate
    }

    /// The `q` quantile of the wait in queue (0 when fewer than 1 − q of
    /// arrivals wait at all); infinite for an unstable queue.
    pub fn wait_quantile(&self, q: f64) -> f64 {
        wait_quantile(self.prob_wait(), self.drain_rate(), q)
    }

    /// Mean wait in queue, C / (cμ − λ).
    pub fn mean_wait(&self) -> f64 {
        if !self.is_stable() {
            return f64::INFINITY;
        }
        self.prob_wait() / self.drain_rate()
    }

    /// Mean wait of the arrivals that wait, 1 / (cμ − λ) (the M/M/c wait
    /// given it is positive is exponential with that mean); infinite for an
    /// unstable queue.
    pub fn mean_wait_if_waiting(&self) -> f64 {
        if !self.is_stable() {
            return f64::INFINITY;
        }
        1.0 / self.drain_rate()
    }

    /// The `q` quantile of the wait under the Allen–Cunneen M/G/c
    /// approximation for service times with squared coefficient of variation
    /// `service_cv2`: P(wait > 0) stays Erlang C and the conditional wait is
    /// exponential with mean (1 + C_s²)/2 / (cμ − λ).
    pub fn mgc_wait_quantile(&self, q: f64, service_cv2: f64) -> f64 {
        wait_quantile(
            self.prob_wait(),
            self.drain_rate() / allen_cunneen(service_cv2),
            q,
        )
    }
}

/// The Allen–Cunneen factor (1 + C_s²)/2 by which the M/M/c mean wait is
/// scaled for an M/G/c queue whose service time has squared coefficient of
/// variation C_s² (Poisson arrivals, so C_a² = 1):
///
///   W_q(M/G/c) ≈ W_q(M/M/c) · (C_a² + C_s²)/2.
///
/// A. O. Allen, "Probability, Statistics, and Queueing Theory with Computer
/// Science Applications", 2nd ed., Academic Press 1990, §6 (the
/// Allen–Cunneen approximation); W. Whitt, "Approximations for the GI/G/m
/// queue", Production and Operations Management 2(2), 1993, which shows it
/// is exact for M/M/c, asymptotically exact in heavy traffic and typically
/// within ~10% for M/D/c and M/G/c with moderate C_s². It approximates the
/// mean only; this crate also keeps P(wait > 0) at Erlang C and the
/// conditional wait exponential, which is a further assumption (the M/D/c
/// wait tail is lighter than exponential).
pub fn allen_cunneen(service_cv2: f64) -> f64 {
    (1.0 + service_cv2.max(0.0)) / 2.0
}

fn wait_quantile(prob_wait: f64, drain_rate: f64, q: f64) -> f64 {
    if drain_rate <= 0.0 {
        return f64::INFINITY;
    }
    let tail = 1.0 - q;
    if prob_wait <= tail {
        0.0
    } else {
        (prob_wait / tail).ln() / drain_rate
    }
}

/// Percentile the whole crate sizes to.
pub const P95: f64 = 0.95;

/// What a pool must achieve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoolTarget {
    /// Arrivals per second.
    pub arrival_rate: f64,
    /// Completions per second of one server (1 / mean service time).
    pub service_rate: f64,
    /// p95 service time in seconds.
    pub service_p95: f64,
    /// Squared coefficient of variation of the service time (1 for
    /// exponential service; [`crate::path::lognormal_cv2`] from a mean and
    /// p95), for the Allen–Cunneen M/G/c wait.
    pub service_cv2: f64,
    /// Budget for wait plus service, in seconds.
    pub budget: f64,
    /// Highest acceptable utilisation a/c.
    pub utilisation_ceiling: f64,
    /// Fewest servers allowed (availability floors).
    pub min_servers: u32,
}

/// Hard cap on the search so a nonsensical target cannot loop for long.
pub const MAX_SERVERS: u32 = 1_000_000;

/// The result of a pool search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoolSize {
    /// Servers chosen.
    pub servers: u32,
    /// Modelled p95 of wait plus service, in seconds.
    pub p95: f64,
    /// Whether the latency budget (rather than the utilisation ceiling or
    /// the floor) forced the count.
    pub latency_bound: bool,
    /// Whether the budget is met (false when no pool size can meet it
    /// because the service time alone exceeds it).
    pub meets_budget: bool,
}

/// p95 of (wait + service) for `servers` servers, as the pool search uses it.
///
/// Approximation: the p95 of the M/G/c wait (Allen–Cunneen) plus the p95 of
/// the service time. This is a sizing rule of thumb, not a bound: quantiles
/// do not add, and when fewer than 5% of arrivals wait the wait p95 is 0
/// although the waits still lengthen the tail of the sum. The budget table
/// does not use this figure: it takes the stage's p95 from the distribution
/// of overhead + wait + service ([`crate::path`]).
pub fn pool_p95(target: &PoolTarget, servers: u32) -> f64 {
    let q = Mmc {
        arrival_rate: target.arrival_rate,
        service_rate: target.service_rate,
        servers,
    };
    q.mgc_wait_quantile(P95, target.service_cv2) + target.service_p95
}

/// Smallest server count c ≥ `min_servers` such that a/c ≤ the utilisation
/// ceiling and p95(wait + service) ≤ budget.
///
/// When the service p95 alone exceeds the budget no c can help; the count
/// that satisfies the ceiling is returned with `meets_budget: false` so the
/// budget check can name the stage. The wait p95 falls monotonically in c
/// (Erlang C falls and the drain rate grows), so the first fit is the smallest.
/// Erlang B is advanced incrementally as c grows, keeping the search O(c).
pub fn smallest_pool(target: &PoolTarget) -> PoolSize {
    let a = if target.service_rate > 0.0 {
        target.arrival_rate / target.service_rate
    } else {
        f64::INFINITY
    };
    let ceiling = target.utilisation_ceiling.clamp(1e-6, 0.999_999);
    let by_ceiling = if a.is_finite() {
        let need = (a / ceiling).ceil();
        if need >= f64::from(MAX_SERVERS) {
            MAX_SERVERS
        } else {
            // `need` is a non-negative integer-valued float below MAX_SERVERS.
            need as u32
        }
    } else {
        MAX_SERVERS
    };
    let start = by_ceiling.max(target.min_servers).max(1);
    let feasible = target.service_p95 <= target.budget;

    let mut b = erlang_b(start, a);
    let mut c = start;
    loop {
        let drain = (f64::from(c) * target.service_rate - target.arrival_rate)
            / allen_cunneen(target.service_cv2);
        let p95 = wait_quantile(erlang_c_from_b(c, a, b), drain, P95) + target.service_p95;
        if !feasible || p95 <= target.budget || c >= MAX_SERVERS {
            return PoolSize {
                servers: c,
                p95,
                latency_bound: c > start,
                meets_budget: p95 <= target.budget,
            };
        }
        c += 1;
        b = next_erlang_b(b, c, a);
    }
}

/// Little's law: mean number in the system L = λ·W.
pub fn littles_law(arrival_rate: f64, time_in_system: f64) -> f64 {
    arrival_rate * time_in_system
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64, tol: f64) {
        assert!(
            (actual - expected).abs() <= tol,
            "expected {expected}, got {actual}"
        );
    }

    /// Known answers from published Erlang C tables and worked examples:
    ///
    /// - Wolfram Language documentation, `ErlangC[3, 2]` = 4/9 (exact).
    /// - callcentrehelper.com, "Erlang C Formula – Made Simple With an Easy
    ///   Worked Example": A = 10 Erlangs (100 calls in 30 min, AHT 180 s);
    ///   11 agents → P(wait) 0.6821, 12 agents → 0.4494, 14 agents → 0.1741.
    /// - "The Erlang-C formula" worked example reproduced by call-centre
    ///   calculators: 360 calls per half hour, 4 min calls → A = 48 Erlangs,
    ///   55 agents → P(wait) 0.2387, ASA 0.1364 min (8.2 s), 84.6% answered
    ///   within 15 s.
    /// - M/M/1 closed form: P(wait) = ρ, so (1 server, 0.5 Erlang) → 0.5.
    ///
    /// Each value was cross-checked with an exact rational evaluation of the
    /// textbook formula (a^c/c! · c/(c−a)) / (Σ_{k<c} a^k/k! + a^c/c! · c/(c−a)).
    #[test]
    fn erlang_c_matches_published_tables() {
        let cases = [
            (2.0, 3, 4.0 / 9.0),
            (10.0, 11, 0.6821),
            (10.0, 12, 0.4494),
            (10.0, 14, 0.1741),
            (48.0, 55, 0.2387),
            (0.5, 1, 0.5),
            (1.0, 2, 1.0 / 3.0),
        ];
        for (a, c, expected) in cases {
            close(erlang_c(c, a), expected, 1e-3);
        }
    }

    #[test]
    fn call_centre_example_asa_and_service_level() {
        // 360 calls per 30 min = 12 calls/min; 4 min per call → μ = 0.25/min.
        let q = Mmc {
            arrival_rate: 12.0,
            service_rate: 0.25,
            servers: 55,
        };
        close(q.offered_load(), 48.0, 1e-12);
        // ASA = C / (cμ − λ) = 0.2387 / (13.75 − 12) = 0.1364 min.
        close(q.mean_wait(), 0.1364, 1e-3);
        // Service level: 1 − P(wait > 15 s = 0.25 min) = 84.6%.
        close(1.0 - q.prob_wait_exceeds(0.25), 0.846, 1e-3);
    }

    #[test]
    fn erlang_b_small_case_by_hand() {
        // B(2, 1) = (1/2) / (1 + 1 + 1/2) = 0.2.
        close(erlang_b(2, 1.0), 0.2, 1e-12);
    }

    #[test]
    fn stable_for_thousands_of_servers() {
        // a^c/c! would overflow f64 here; the recursion stays finite.
        let c = erlang_c(5000, 4900.0);
        assert!(c.is_finite() && (0.0..=1.0).contains(&c), "{c}");
        // Log-space evaluation of the closed form gives C(5000, 4900) = 0.09994.
        close(c, 0.09994, 1e-4);
        // Square-root staffing: with c = a + β√a, C tends to the Halfin–Whitt
        // value 1 / (1 + βΦ(β)/φ(β)), 0.2234 for β = 1. At a = 10,000,
        // c = 10,100 the exact (log-space) value is 0.2248.
        close(erlang_c(10_100, 10_000.0), 0.2248, 1e-4);
    }

    #[test]
    fn saturated_pool_always_waits() {
        assert_eq!(erlang_c(4, 4.0), 1.0);
        assert_eq!(erlang_c(4, 9.0), 1.0);
        let q = Mmc {
            arrival_rate: 10.0,
            service_rate: 1.0,
            servers: 5,
        };
        assert!(q.wait_quantile(P95).is_infinite());
    }

    #[test]
    fn wait_quantile_by_hand() {
        // M/M/1, λ = 0.5, μ = 1: C = 0.5, P(W > t) = 0.5 e^(−0.5 t).
        // p95: 0.5 e^(−0.5 t) = 0.05 → t = 2 ln 10 = 4.6052.
        let q = Mmc {
            arrival_rate: 0.5,
            service_rate: 1.0,
            servers: 1,
        };
        close(q.wait_quantile(P95), 2.0 * 10f64.ln(), 1e-9);
    }

    #[test]
    fn smallest_pool_respects_ceiling_budget_and_floor() {
        // 200/s at 20 ms mean (μ = 50/s): a = 4 Erlangs; ceiling 0.7 → c ≥ 5.71 → 6.
        let t = PoolTarget {
            arrival_rate: 200.0,
            service_rate: 50.0,
            service_p95: 0.035,
            service_cv2: 1.0,
            budget: 0.135,
            utilisation_ceiling: 0.7,
            min_servers: 1,
        };
        let p = smallest_pool(&t);
        assert_eq!(p.servers, 6);
        assert!(p.meets_budget && !p.latency_bound);
        // A floor above the need wins.
        let p = smallest_pool(&PoolTarget {
            min_servers: 8,
            ..t
        });
        assert_eq!(p.servers, 8);
        // A budget barely above the service p95 forces more servers.
        let tight = PoolTarget { budget: 0.036, ..t };
        let p = smallest_pool(&tight);
        assert!(p.servers > 6 && p.latency_bound && p.meets_budget);
        assert!(pool_p95(&tight, p.servers - 1) > tight.budget);
        // A budget below the service p95 cannot be met by any pool.
        let p = smallest_pool(&PoolTarget { budget: 0.03, ..t });
        assert_eq!(p.servers, 6);
        assert!(!p.meets_budget);
    }

    /// Waits of `n` customers of a FCFS queue with `servers` servers, Poisson
    /// arrivals at `lambda` and service times from `service(i)`: each
    /// customer starts on the server that frees first (exact for FCFS
    /// M/G/c). Returns (share that waited, mean wait), the first 10% of
    /// customers dropped as warm-up.
    fn simulate(servers: usize, lambda: f64, n: u64, service: impl Fn(u64) -> f64) -> (f64, f64) {
        let mut free = vec![0.0_f64; servers];
        let (mut t, mut waited, mut total, mut counted) = (0.0, 0u64, 0.0, 0u64);
        for i in 0..n {
            t += -(1.0 - crate::path::uniform(900, i)).ln() / lambda;
            let (k, f) = free
                .iter()
                .copied()
                .enumerate()
                .fold(
                    (0, f64::INFINITY),
                    |b, (k, f)| if f < b.1 { (k, f) } else { b },
                );
            let wait = (f - t).max(0.0);
            free[k] = t + wait + service(i);
            if i >= n / 10 {
                counted += 1;
                total += wait;
                if wait > 0.0 {
                    waited += 1;
                }
            }
        }
        (waited as f64 / counted as f64, total / counted as f64)
    }

    /// A seeded discrete-event simulation of M/M/3 at a = 2 Erlangs (λ = 2,
    /// μ = 1) against Erlang C: P(wait > 0) = 4/9 = 0.444 and mean wait
    /// C/(cμ − λ) = 0.444/1 = 0.444. 200,000 customers; with the waits'
    /// autocorrelation at ρ = 2/3 the standard error is about 0.005 for the
    /// share and 0.01 for the mean, so the tolerance is 0.02 and 0.04.
    #[test]
    fn erlang_c_agrees_with_a_simulated_mmc_queue() {
        let q = Mmc {
            arrival_rate: 2.0,
            service_rate: 1.0,
            servers: 3,
        };
        let (share, mean) = simulate(3, 2.0, 200_000, |i| {
            -(1.0 - crate::path::uniform(901, i)).ln()
        });
        close(share, 4.0 / 9.0, 0.02);
        close(mean, q.mean_wait(), 0.04);
        close(q.mean_wait(), 4.0 / 9.0, 1e-9);
    }

    /// Allen–Cunneen against a simulated M/D/3 queue at the same load
    /// (constant service 1): C_s² = 0, so the approximation halves the M/M/3
    /// mean wait, 0.444 × (1 + 0)/2 = 0.222. Whitt (1993) puts the
    /// approximation within about 10% for M/D/c; the test allows 15% plus
    /// the simulation's error. The M/M/c formula alone (0.444) would be 100%
    /// off.
    #[test]
    fn allen_cunneen_agrees_with_a_simulated_mdc_queue() {
        let q = Mmc {
            arrival_rate: 2.0,
            service_rate: 1.0,
            servers: 3,
        };
        let approx = q.mean_wait() * allen_cunneen(0.0);
        close(approx, 2.0 / 9.0, 1e-9);
        let (_, mean) = simulate(3, 2.0, 200_000, |_| 1.0);
        close(mean, approx, 0.15 * approx + 0.02);
        // Its quantile uses the same scaling: p95 of the M/M/3 wait is
        // ln(C/0.05)/(cμ − λ) = ln(8.889) = 2.185; M/D/3 by Allen–Cunneen
        // half that, 1.092.
        close(
            q.mgc_wait_quantile(P95, 1.0),
            (4.0 / 9.0 / 0.05_f64).ln(),
            1e-9,
        );
        close(
            q.mgc_wait_quantile(P95, 0.0),
            0.5 * (4.0 / 9.0 / 0.05_f64).ln(),
            1e-9,
        );
    }

    #[test]
    fn littles_law_by_hand() {
        // 150 standard answers/s, each streaming for 0.25 s to first token plus
        // 0.8 s of tokens = 1.05 s in flight → 150 × 1.05 = 157.5 streams.
        close(littles_law(150.0, 1.05), 157.5, 1e-9);
        // A cache filled at 325 entries/s with a 3600 s TTL holds
        // 325 × 3600 = 1,170,000 entries.
        close(littles_law(325.0, 3600.0), 1_170_000.0, 1e-6);
    }
}
