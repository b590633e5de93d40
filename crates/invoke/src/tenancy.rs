//! Namespaces' run-time quotas: how many of a namespace's invocations run
//! at once, how many requests per second its routes take at the gateway,
//! and whether its money budget is spent.
//!
//! Checked on every request, so a check is one read lock, one hash of the
//! namespace's name and, for a namespace that has quotas, an atomic load
//! and a short lock on its token bucket (measured in `docs/benchmarks.md`).
//! A namespace without quotas has no guard and costs only the lookup.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use stratus_storage::Quotas;
use tokio::sync::Semaphore;

/// Every namespace's guard, by name.
#[derive(Debug, Default)]
pub struct Tenancy {
    guards: RwLock<HashMap<String, Arc<Guard>>>,
}

/// What one namespace's invocations are held to.
#[derive(Debug)]
pub struct Guard {
    /// What it was made from: set again with the same, it is kept.
    quotas: Quotas,
    /// `max_concurrency`: a permit per running invocation.
    concurrency: Option<Arc<Semaphore>>,
    /// `requests_per_second`.
    rate: Option<Mutex<Bucket>>,
    /// The budget is spent and its namespace refuses (set by the budget
    /// check, which reads the ledger).
    exhausted: AtomicBool,
}

/// A token bucket holding at most one second's worth of requests.
#[derive(Debug)]
struct Bucket {
    per_second: f64,
    tokens: f64,
    filled: Instant,
}

impl Bucket {
    /// Takes one token, or says how long until there is one.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.filled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.per_second);
        self.filled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / self.per_second,
            ))
        }
    }
}

impl Guard {
    fn new(quotas: &Quotas) -> Guard {
        Guard {
            quotas: quotas.clone(),
            concurrency: quotas
                .max_concurrency
                .map(|n| Arc::new(Semaphore::new(n as usize))),
            rate: quotas.requests_per_second.map(|rps| {
                let per_second = f64::from(rps.max(1));
                Mutex::new(Bucket {
                    per_second,
                    tokens: per_second,
                    filled: Instant::now(),
                })
            }),
            exhausted: AtomicBool::new(false),
        }
    }

    /// Takes a request from the namespace's rate, or says when to retry.
    pub fn take_request(&self) -> Result<(), Duration> {
        match &self.rate {
            None => Ok(()),
            Some(bucket) => match bucket.lock() {
                Ok(mut bucket) => bucket.take(Instant::now()),
                // A panic mid-update left a bucket that may be off: let
                // requests through rather than refuse a namespace for it.
                Err(_) => Ok(()),
            },
        }
    }

    /// The semaphore of the namespace's running invocations, if capped.
    pub fn concurrency(&self) -> Option<&Arc<Semaphore>> {
        self.concurrency.as_ref()
    }

    /// Whether the namespace's budget is spent and it refuses invocations.
    pub fn exhausted(&self) -> bool {
        self.exhausted.load(Ordering::Relaxed)
    }
}

impl Tenancy {
    /// Applies a namespace's quotas: the same ones keep the guard (its
    /// running invocations and its bucket); others make a new guard
    /// (invocations running under the old one finish under it), keeping
    /// whether its budget is spent until the budget check says otherwise.
    pub fn set(&self, namespace: &str, quotas: &Quotas) {
        if self
            .guard(namespace)
            .is_some_and(|guard| guard.quotas == *quotas)
        {
            return;
        }
        let Ok(mut guards) = self.guards.write() else {
            return;
        };
        // Again under the lock: the API and the quota follower applying
        // the same change at once must not make two guards, or invocations
        // admitted under each would run twice the namespace's concurrency.
        if guards
            .get(namespace)
            .is_some_and(|guard| guard.quotas == *quotas)
        {
            return;
        }
        let limited = quotas.max_concurrency.is_some()
            || quotas.requests_per_second.is_some()
            || quotas.budget.is_some();
        if !limited {
            guards.remove(namespace);
            return;
        }
        let guard = Guard::new(quotas);
        if let Some(old) = guards.get(namespace) {
            guard.exhausted.store(
                old.exhausted() && quotas.budget.is_some(),
                Ordering::Relaxed,
            );
        }
        guards.insert(namespace.to_owned(), Arc::new(guard));
    }

    /// The namespace's guard, when it has run-time quotas.
    pub fn guard(&self, namespace: &str) -> Option<Arc<Guard>> {
        self.guards.read().ok()?.get(namespace).cloned()
    }

    /// Marks the namespace's budget spent (its functions then answer 429
    /// `budget_exhausted`) or not.
    pub fn set_exhausted(&self, namespace: &str, exhausted: bool) {
        if let Some(guard) = self.guard(namespace) {
            guard.exhausted.store(exhausted, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_takes_a_seconds_worth_then_refills_at_the_rate() {
        let start = Instant::now();
        let mut bucket = Bucket {
            per_second: 10.0,
            tokens: 10.0,
            filled: start,
        };
        for _ in 0..10 {
            assert!(bucket.take(start).is_ok());
        }
        let wait = bucket.take(start).unwrap_err();
        assert!(
            wait > Duration::from_millis(90) && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        assert!(bucket.take(start + Duration::from_millis(100)).is_ok());
        assert!(bucket.take(start + Duration::from_millis(100)).is_err());
        // Idle time refills at most one second's worth.
        let later = start + Duration::from_secs(60);
        for _ in 0..10 {
            assert!(bucket.take(later).is_ok());
        }
        assert!(bucket.take(later).is_err());
    }

    #[test]
    fn only_namespaces_with_run_time_quotas_have_a_guard() {
        let tenancy = Tenancy::default();
        tenancy.set(
            "a",
            &Quotas {
                max_apps: Some(3),
                ..Quotas::default()
            },
        );
        assert!(tenancy.guard("a").is_none());
        tenancy.set(
            "a",
            &Quotas {
                requests_per_second: Some(5),
                ..Quotas::default()
            },
        );
        let guard = tenancy.guard("a").unwrap();
        assert!(guard.concurrency().is_none() && !guard.exhausted());
        // The same quotas again keep the guard and what it holds.
        tenancy.set(
            "a",
            &Quotas {
                requests_per_second: Some(5),
                ..Quotas::default()
            },
        );
        assert!(Arc::ptr_eq(&guard, &tenancy.guard("a").unwrap()));
        tenancy.set("a", &Quotas::default());
        assert!(tenancy.guard("a").is_none());
    }
}
