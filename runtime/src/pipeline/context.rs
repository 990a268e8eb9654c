//! Stage 2: load conversation context (the last N turns) from the [`SessionStore`]
//! under the `memory_read` budget. A store that is slow or failing is skipped: the
//! message is answered without history and `done.degraded` says `memory_skipped`.
//! A history the store read on its fallback path (the DAX store on DynamoDB
//! directly) is used as usual, and `done.degraded` says `memory_fallback`.
//! Saving the new turn happens in [`super::deliver`].

use super::{timed, Run};
use crate::backends::{Served, SessionStore};
use crate::domain::Turn;
use crate::metrics::{Degradation, Stage};

pub async fn load(
    store: &dyn SessionStore,
    key: &str,
    max_turns: usize,
    run: &mut Run<'_>,
) -> Vec<Turn> {
    if max_turns == 0 {
        return Vec::new();
    }
    match timed(run, Stage::MemoryRead, store.load_served(key, max_turns)).await {
        Some(Ok((turns, served))) => {
            if served == Served::Fallback {
                run.degrade(Degradation::MemoryFallback);
            }
            turns
        }
        Some(Err(e)) => {
            crate::warn_limited!(error = %e, "session store failed; answering without history");
            run.degrade(Degradation::MemorySkipped);
            Vec::new()
        }
        None => {
            run.degrade(Degradation::MemorySkipped);
            Vec::new()
        }
    }
}
