//! Stage 4: response cache look-up under the `cache_hit` budget. Only answers that do not
//! depend on who asks are cached (greeting, store-policy FAQ, out-of-scope; see
//! [`crate::domain::Intent::cacheable`]), keyed by intent and normalised question.
//! A slow or failing cache is skipped (`cache_skipped`). Stores happen in
//! [`super::deliver`] after a complete answer.

use super::{timed, Run};
use crate::backends::catalog::normalize;
use crate::backends::{CachedAnswer, ResponseCache};
use crate::domain::Intent;
use crate::metrics::{Degradation, Stage};

/// `None` for intents that must not be cached. Versioned so a change in answer format
/// can invalidate a shared (Redis) cache by bumping the prefix.
pub fn key(intent: Intent, text: &str) -> Option<String> {
    intent
        .cacheable()
        .then(|| format!("v1:{}:{}", intent.as_str(), normalize(text)))
}

pub async fn lookup(
    cache: &dyn ResponseCache,
    key: Option<&str>,
    run: &mut Run<'_>,
) -> Option<CachedAnswer> {
    let key = key?;
    match timed(run, Stage::CacheHit, cache.get(key)).await {
        Some(Ok(Some(hit))) => {
            run.metrics().cache_hit();
            Some(hit)
        }
        Some(Ok(None)) => None,
        Some(Err(e)) => {
            crate::warn_limited!(error = %e, "response cache failed; computing the answer");
            run.degrade(Degradation::CacheSkipped);
            None
        }
        None => {
            run.degrade(Degradation::CacheSkipped);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_normalise_text_and_skip_personal_intents() {
        assert_eq!(key(Intent::Greeting, "Hi!"), key(Intent::Greeting, "  hi "));
        assert_ne!(key(Intent::Greeting, "hi"), key(Intent::OutOfScope, "hi"));
        assert_eq!(key(Intent::OrderStatus, "where is MA-100001"), None);
    }
}
