//! Which raw invocation records are kept when a function runs faster than
//! anyone will read them one by one.
//!
//! A raw record is what one invocation's page and exact usage read; at
//! tens of thousands of requests a second they are most of what the ledger
//! writes (a 1 GiB budget held about two minutes of one busy function's
//! records). Past a rate per function, a successful warm invocation's
//! record is kept one time in N: errors and cold starts are always kept,
//! because they are what someone looks for. A record sampled out still
//! counts in the usage roll-ups ([`LedgerStore::count`]), so totals and
//! bills never come from sampled rows.
//!
//! [`LedgerStore::count`]: super::LedgerStore::count

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use super::record::InvocationRecord;

/// How raw records are sampled; the default keeps the first 100 records of
/// each function per second and one in 100 successes past them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sampling {
    /// Records per function and second kept whatever they are; `0` keeps
    /// every record (no sampling).
    pub keep_per_second: u32,
    /// Past that rate, one successful warm record in this many is kept
    /// (`1` keeps them all).
    pub then_one_in: u32,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            keep_per_second: 100,
            then_one_in: 100,
        }
    }
}

impl Sampling {
    /// Keeps every record.
    pub const OFF: Sampling = Sampling {
        keep_per_second: 0,
        then_one_in: 1,
    };
}

/// Functions tracked before those idle for a while are forgotten.
const TRACKED: usize = 4096;

/// One function's count in the current second.
#[derive(Debug, Default, Clone, Copy)]
struct Second {
    /// Seconds since the epoch.
    at: u64,
    taken: u64,
}

/// The sampler the recorder asks about every record.
#[derive(Debug, Default)]
pub(crate) struct Sampler {
    policy: Mutex<Policy>,
}

#[derive(Debug, Default)]
struct Policy {
    sampling: Sampling,
    /// By app, then function (so a lookup needs no allocation).
    seconds: HashMap<String, HashMap<String, Second>>,
    tracked: usize,
}

impl Sampler {
    pub(crate) fn set(&self, sampling: Sampling) {
        let mut policy = self.policy.lock().unwrap_or_else(|e| e.into_inner());
        policy.sampling = sampling;
    }

    /// Whether `record`'s raw record is kept.
    pub(crate) fn keep(&self, record: &InvocationRecord, now: SystemTime) -> bool {
        if record.error.is_some() || record.cold {
            return true;
        }
        let at = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut policy = self.policy.lock().unwrap_or_else(|e| e.into_inner());
        let Sampling {
            keep_per_second,
            then_one_in,
        } = policy.sampling;
        if keep_per_second == 0 || then_one_in <= 1 {
            return true;
        }
        let second = match policy
            .seconds
            .get_mut(&record.app)
            .and_then(|functions| functions.get_mut(&record.function))
        {
            Some(second) => second,
            None => {
                if policy.tracked >= TRACKED {
                    // Forget functions not seen this second or the last.
                    for functions in policy.seconds.values_mut() {
                        functions.retain(|_, s| s.at + 1 >= at);
                    }
                    policy.seconds.retain(|_, functions| !functions.is_empty());
                    policy.tracked = policy.seconds.values().map(HashMap::len).sum();
                }
                policy.tracked += 1;
                policy
                    .seconds
                    .entry(record.app.clone())
                    .or_default()
                    .entry(record.function.clone())
                    .or_default()
            }
        };
        if second.at != at {
            *second = Second { at, taken: 0 };
        }
        second.taken += 1;
        let past = second.taken.saturating_sub(u64::from(keep_per_second));
        past == 0 || past % u64::from(then_one_in) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::record::{Outbound, Trigger};
    use std::time::Duration;

    fn record(function: &str, cold: bool, error: bool) -> InvocationRecord {
        InvocationRecord {
            id: "x".into(),
            app: "shop".into(),
            function: function.into(),
            version: 1,
            trigger: Trigger::Http,
            started_at: UNIX_EPOCH,
            wall: Duration::from_millis(1),
            cpu: Duration::from_millis(1),
            peak_memory: 1 << 20,
            peak_host_memory: 0,
            bytes_in: 0,
            bytes_out: 0,
            status: if error { 502 } else { 200 },
            error: error.then(|| "trap".into()),
            cold,
            caller: None,
            outbound: Outbound::default(),
        }
    }

    #[test]
    fn past_the_rate_one_success_in_n_is_kept_and_every_error_and_cold_start() {
        let sampler = Sampler::default();
        sampler.set(Sampling {
            keep_per_second: 10,
            then_one_in: 5,
        });
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let kept = (0..60)
            .filter(|_| sampler.keep(&record("api", false, false), now))
            .count();
        // 10 in full, then 50 past the rate: one in five.
        assert_eq!(kept, 10 + 10);
        assert!(sampler.keep(&record("api", false, true), now));
        assert!(sampler.keep(&record("api", true, false), now));
        // Another function has its own rate.
        assert!(sampler.keep(&record("web", false, false), now));
        // A new second starts again.
        let next = now + Duration::from_secs(1);
        assert!((0..10).all(|_| sampler.keep(&record("api", false, false), next)));
    }

    #[test]
    fn off_keeps_every_record() {
        let sampler = Sampler::default();
        sampler.set(Sampling::OFF);
        let now = UNIX_EPOCH;
        assert!((0..10_000).all(|_| sampler.keep(&record("api", false, false), now)));
    }

    #[test]
    fn many_functions_are_forgotten_once_idle() {
        let sampler = Sampler::default();
        let now = UNIX_EPOCH + Duration::from_secs(50);
        for i in 0..TRACKED {
            sampler.keep(&record(&format!("f{i}"), false, false), now);
        }
        let later = now + Duration::from_secs(10);
        sampler.keep(&record("new", false, false), later);
        let policy = sampler.policy.lock().unwrap();
        assert_eq!(policy.tracked, 1);
    }
}
