//! Rate-limited logging for the hot path: [`warn_limited!`](crate::warn_limited) logs at
//! most [`LINES_PER_SECOND`] lines per call site and second, and the next line that gets
//! through carries `suppressed = N`, the count it stood in for. A backend outage then
//! costs a few lines per second instead of one per message (at 280 messages/s a failing
//! store would otherwise write 280 lines a second, each formatted on the request path).
//!
//! The lines themselves go to stderr through a non-blocking writer (a bounded queue and
//! a writer thread, set up in `main.rs`), so a slow log pipe never stalls an answer;
//! lines beyond the queue are dropped rather than waited for. EMF metric lines have
//! their own queue and thread ([`crate::emf`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// Lines per call site per second before the rest are counted instead of written.
pub const LINES_PER_SECOND: u64 = 5;

/// One call site's budget: the current one-second window and what it let through.
#[derive(Debug)]
pub struct Site {
    /// `window << 16 | lines written in it` (lines saturate well below 2^16).
    state: AtomicU64,
    suppressed: AtomicU64,
}

impl Site {
    pub const fn new() -> Site {
        Site {
            state: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(suppressed since the last line)` when this line may be written.
    pub fn admit(&self) -> Option<u64> {
        self.admit_at(seconds())
    }

    fn admit_at(&self, now: u64) -> Option<u64> {
        let mut cur = self.state.load(Ordering::Relaxed);
        loop {
            let (window, lines) = (cur >> 16, cur & 0xffff);
            let next = if window == now {
                if lines >= LINES_PER_SECOND {
                    self.suppressed.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
                cur + 1
            } else {
                (now << 16) | 1
            };
            match self
                .state
                .compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Some(self.suppressed.swap(0, Ordering::Relaxed)),
                Err(actual) => cur = actual,
            }
        }
    }
}

impl Default for Site {
    fn default() -> Self {
        Site::new()
    }
}

/// Whole seconds since the first call (the windows' clock).
fn seconds() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs()
}

/// `tracing::warn!` limited per call site (see the module docs); same arguments.
#[macro_export]
macro_rules! warn_limited {
    ($($arg:tt)+) => {{
        static SITE: $crate::logs::Site = $crate::logs::Site::new();
        if let Some(suppressed) = SITE.admit() {
            ::tracing::warn!(suppressed, $($arg)+);
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_writes_a_few_lines_per_second_and_counts_the_rest() {
        let site = Site::new();
        let first: Vec<Option<u64>> = (0..8).map(|_| site.admit_at(7)).collect();
        assert_eq!(
            first,
            [
                Some(0),
                Some(0),
                Some(0),
                Some(0),
                Some(0),
                None,
                None,
                None
            ]
        );
        // The next window's first line reports the three it stood in for.
        assert_eq!(site.admit_at(8), Some(3));
        assert_eq!(site.admit_at(8), Some(0));
    }
}
