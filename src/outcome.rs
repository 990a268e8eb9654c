//! Exit codes, decided in one place (README.md, "Exit codes"): every
//! command's result becomes an [`Outcome`], and only [`Outcome::code`]
//! turns it into a number. The deploy results convert here too
//! (`From<&Plan>`, `From<ApplyStatus>`, `From<DestroyStatus>`), so the
//! library's tests assert the same codes the binary exits with.
//! `src/cli/mod.rs::main` maps errors to [`Outcome::Failed`].

use crate::deploy::apply::ApplyStatus;
use crate::deploy::destroy::DestroyStatus;
use crate::deploy::drift::DriftReport;
use crate::deploy::index::Verdict;
use crate::deploy::plan::Plan;

/// How a command ended; the exit code is part of the CLI's contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 0: success, nothing to change.
    Success,
    /// 1: an error (bad input, impossible target, failed or refused AWS call).
    Failed,
    /// 2: changes or drift found.
    Changes,
    /// 3: a check or an operation could not complete (e.g. Ctrl-C).
    Incomplete,
    /// 130: a second Ctrl-C ended the process at once (the shell convention
    /// for SIGINT).
    Aborted,
}

impl Outcome {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::Failed => 1,
            Outcome::Changes => 2,
            Outcome::Incomplete => 3,
            Outcome::Aborted => 130,
        }
    }
}

impl From<&Plan> for Outcome {
    /// 1 when a stack cannot be planned, 2 with changes, 0 without.
    fn from(plan: &Plan) -> Outcome {
        if !plan.blocked().is_empty() {
            Outcome::Failed
        } else if plan.has_changes() {
            Outcome::Changes
        } else {
            Outcome::Success
        }
    }
}

impl From<&Verdict> for Outcome {
    /// `mangactl index`: 0 the index command exited 0; 3 it exited 3
    /// (incomplete) or the task had not stopped in time; 1 it failed or
    /// never started.
    fn from(v: &Verdict) -> Outcome {
        match v {
            Verdict::Complete => Outcome::Success,
            Verdict::Incomplete | Verdict::TimedOut { .. } => Outcome::Incomplete,
            Verdict::Failed { .. } | Verdict::NotStarted { .. } => Outcome::Failed,
        }
    }
}

impl From<ApplyStatus> for Outcome {
    /// 0 applied or nothing to do, 3 interrupted, 1 for everything else
    /// (declined, blocked, failed).
    fn from(status: ApplyStatus) -> Outcome {
        match status {
            ApplyStatus::NoChanges | ApplyStatus::Applied => Outcome::Success,
            ApplyStatus::Interrupted => Outcome::Incomplete,
            ApplyStatus::Declined | ApplyStatus::Blocked | ApplyStatus::Failed => Outcome::Failed,
        }
    }
}

impl From<DestroyStatus> for Outcome {
    /// 0 destroyed or nothing there, 3 interrupted, 1 otherwise.
    fn from(status: DestroyStatus) -> Outcome {
        match status {
            DestroyStatus::NothingToDo | DestroyStatus::Destroyed => Outcome::Success,
            DestroyStatus::Interrupted => Outcome::Incomplete,
            DestroyStatus::Declined | DestroyStatus::Failed => Outcome::Failed,
        }
    }
}

impl From<&DriftReport> for Outcome {
    /// 2 drift found; 3 a check failed or did not finish, resources were
    /// left unchecked (0 with `--allow-unchecked`), or nothing was compared
    /// at all; 0 everything checked and in sync.
    fn from(r: &DriftReport) -> Outcome {
        if r.summary.drift {
            Outcome::Changes
        } else if r.stacks.is_empty()
            || r.is_incomplete()
            || (r.has_unchecked() && !r.allow_unchecked)
        {
            Outcome::Incomplete
        } else {
            Outcome::Success
        }
    }
}
