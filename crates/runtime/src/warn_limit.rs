//! Rate-limiting a warning that an attacker (or a storm) can repeat: the
//! first occurrence is logged, then at most one line per interval with the
//! count of occurrences it stands for, so the node's log stays readable and
//! its disk bounded however often the cause repeats.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, TryLockError};
use std::time::{Duration, Instant};

/// Counts occurrences and says when one should be logged.
#[derive(Debug)]
pub struct WarnLimit {
    interval: Duration,
    last: Option<Instant>,
    count: u64,
}

impl WarnLimit {
    pub const fn per_second() -> Self {
        WarnLimit {
            interval: Duration::from_secs(1),
            last: None,
            count: 0,
        }
    }

    /// Counts one occurrence; `Some(n)` when it should be logged now, `n`
    /// being the occurrences since the last logged one (this one included).
    pub fn hit(&mut self) -> Option<u64> {
        self.count += 1;
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < self.interval)
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.count))
    }
}

/// A [`WarnLimit`] shared by tasks: the same rule, behind a lock taken only
/// once per interval on the hot path's common case.
#[derive(Debug)]
pub struct SharedWarnLimit {
    suppressed: AtomicU64,
    limit: Mutex<WarnLimit>,
}

impl Default for SharedWarnLimit {
    fn default() -> Self {
        SharedWarnLimit::new()
    }
}

impl SharedWarnLimit {
    /// `const`, so a limit can be a `static` for a warning with no owner.
    pub const fn new() -> Self {
        SharedWarnLimit {
            suppressed: AtomicU64::new(0),
            limit: Mutex::new(WarnLimit::per_second()),
        }
    }

    /// As [`WarnLimit::hit`].
    pub fn hit(&self) -> Option<u64> {
        let mut limit = match self.limit.try_lock() {
            Ok(limit) => limit,
            // Two numbers, valid whatever a panicking holder did.
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => {
                // Another task is deciding right now: this one is suppressed.
                self.suppressed.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        };
        let logged = limit.hit()?;
        Some(logged + self.suppressed.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_is_logged_then_one_per_interval_with_the_count() {
        let mut limit = WarnLimit::per_second();
        assert_eq!(limit.hit(), Some(1));
        for _ in 0..999 {
            assert_eq!(limit.hit(), None);
        }
        limit.last = Some(Instant::now() - Duration::from_secs(2));
        assert_eq!(limit.hit(), Some(1000));
        assert_eq!(limit.hit(), None);
    }

    #[test]
    fn the_shared_limit_counts_what_it_suppressed() {
        let limit = SharedWarnLimit::default();
        assert_eq!(limit.hit(), Some(1));
        assert_eq!(limit.hit(), None);
        limit
            .limit
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .last = Some(Instant::now() - Duration::from_secs(2));
        assert_eq!(limit.hit(), Some(2));
    }
}
