//! The readers of the stage latency budgets, both returning [`sizing::LatencyBudgets`]
//! (the sizing crate's one latency-budget type, shared with mangactl's templates and
//! sizing):
//! - [`read_budgets_from_environment_file`]: an environment file (`environments/*.yaml`,
//!   key `targets.latency_ms`, `MANGA_ENVIRONMENT_FILE`) read with mangactl's own parser
//!   (`stacks::env::load`);
//! - [`read_budgets_from_json`]: the same keys as one JSON object (`MANGA_BUDGETS_JSON`,
//!   the form the task definition passes).
//!
//! [`super::Config::budgets`] picks the source (neither set:
//! [`sizing::LatencyBudgets::SEED`]). The flags are in `mod.rs`, the `--config` file
//! reader in `file.rs`.

use super::ConfigError;
use sizing::LatencyBudgets;
use std::path::Path;

/// Reads the budgets of an environment file with mangactl's own parser
/// (`stacks::env`), so the runtime enforces exactly the `targets.latency_ms`
/// that sizing and the templates were built from, and a file mangactl
/// rejects is rejected here too.
pub fn read_budgets_from_environment_file(path: &Path) -> Result<LatencyBudgets, ConfigError> {
    let env = stacks::env::load(path).map_err(|e| ConfigError::EnvironmentFile {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    // mangactl's parser already refused zero stage budgets.
    Ok(env.targets.latency_ms)
}

/// Budgets from a JSON object with the keys of `targets.latency_ms` (every key required,
/// unknown keys refused, only `margin` may be 0) — the form the service stack's task
/// definition passes in `MANGA_BUDGETS_JSON`.
pub fn read_budgets_from_json(json: &str) -> Result<LatencyBudgets, ConfigError> {
    let invalid = |m: String| ConfigError::Invalid(format!("MANGA_BUDGETS_JSON: {m}"));
    let budgets: LatencyBudgets = serde_json::from_str(json).map_err(|e| invalid(e.to_string()))?;
    let zero = budgets.zero_budgets();
    if !zero.is_empty() {
        return Err(invalid(format!(
            "latency budgets must be > 0 ms: {}",
            zero.join(", ")
        )));
    }
    Ok(budgets)
}
