//! A canary: a second version of an app serving a share of its requests
//! beside the live one, and what each version's requests did, so the
//! control plane can judge one against the other.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use http::HeaderMap;
use stratus_manifest::Route;
use stratus_storage::{Canary, Sticky};

use crate::live::LiveFunction;
use crate::routes::RouteTable;
use crate::timeline::{DURATION_SLOTS, bucket_of, quantile};

/// The canary version of one app, ready to serve its share.
#[derive(Debug)]
pub struct CanaryRoute {
    pub version: u32,
    /// How it runs: its share, stickiness, steps and policy.
    pub plan: Canary,
    functions: Vec<Arc<LiveFunction>>,
    routes: RouteTable<Arc<LiveFunction>>,
}

impl CanaryRoute {
    /// The canary made of `functions`, one version of one app, whose
    /// routes were checked against each other when it was deployed.
    pub fn new(plan: Canary, functions: Vec<Arc<LiveFunction>>) -> CanaryRoute {
        let mut routes = RouteTable::default();
        for function in &functions {
            for route in &function.routes {
                routes.insert(route, function.clone());
            }
        }
        CanaryRoute {
            version: plan.version,
            plan,
            functions,
            routes,
        }
    }

    pub fn functions(&self) -> &[Arc<LiveFunction>] {
        &self.functions
    }

    /// The same code under another plan (a new share, a new step).
    pub fn at(&self, plan: Canary) -> CanaryRoute {
        CanaryRoute::new(plan, self.functions.clone())
    }

    /// Whether a request with `headers` goes to the canary: by the sticky
    /// header's or cookie's value when the request has one (the same value
    /// always lands on the same side, and stays on the canary as its share
    /// grows), else at random.
    pub fn takes(&self, headers: &HeaderMap) -> bool {
        let point = match self
            .plan
            .sticky
            .as_ref()
            .and_then(|s| sticky_value(s, headers))
        {
            Some(value) => fnv1a(value.as_bytes()) % 100,
            None => u64::from(rand::random::<u32>() % 100),
        };
        point < u64::from(self.plan.percent)
    }

    /// The canary's function serving `path` on `host`, if its version
    /// routes it.
    pub fn route(&self, host: Option<&str>, path: &str) -> Option<&Arc<LiveFunction>> {
        self.routes.lookup(host, path, |_, _| true)
    }

    /// The canary's function `name`, if its version has one.
    pub fn function(&self, name: &str) -> Option<&Arc<LiveFunction>> {
        self.functions.iter().find(|f| f.name == name)
    }

    /// Every route of the canary's functions.
    pub fn all_routes(&self) -> impl Iterator<Item = &Route> {
        self.functions.iter().flat_map(|f| f.routes.iter())
    }
}

/// The sticky key's value in a request: the header's, or the cookie's.
fn sticky_value<'a>(sticky: &Sticky, headers: &'a HeaderMap) -> Option<&'a str> {
    match sticky {
        Sticky::Header(name) => headers.get(name.as_str())?.to_str().ok(),
        Sticky::Cookie(name) => headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(key, _)| key == name)
            .map(|(_, value)| value),
    }
}

/// FNV-1a: stable across nodes and releases, so a client keeps its side
/// of the split wherever it lands.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// What one version of an app answered: its requests (events aside, which
/// only the stable version takes), failures and durations. Shared by the
/// version's functions, and kept while the version serves.
#[derive(Debug)]
pub struct VersionOutcomes {
    requests: AtomicU64,
    errors: AtomicU64,
    durations: [AtomicU32; DURATION_SLOTS],
}

impl Default for VersionOutcomes {
    fn default() -> Self {
        VersionOutcomes {
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            durations: std::array::from_fn(|_| AtomicU32::new(0)),
        }
    }
}

impl VersionOutcomes {
    /// Counts one request; `failed` for a platform failure or a 5xx answer.
    pub fn count(&self, failed: bool, wall: Duration) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(slot) = self.durations.get(bucket_of(wall)) {
            slot.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn read(&self) -> Outcomes {
        Outcomes {
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            durations: std::array::from_fn(|i| self.durations[i].load(Ordering::Relaxed)),
        }
    }
}

/// A reading of [`VersionOutcomes`], or the difference of two.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcomes {
    pub requests: u64,
    pub errors: u64,
    durations: [u32; DURATION_SLOTS],
}

impl Default for Outcomes {
    fn default() -> Self {
        Outcomes {
            requests: 0,
            errors: 0,
            durations: [0; DURATION_SLOTS],
        }
    }
}

impl Outcomes {
    /// What happened after `earlier` (a reading of the same counters).
    pub fn since(&self, earlier: &Outcomes) -> Outcomes {
        Outcomes {
            requests: self.requests.saturating_sub(earlier.requests),
            errors: self.errors.saturating_sub(earlier.errors),
            durations: std::array::from_fn(|i| {
                self.durations[i].saturating_sub(earlier.durations[i])
            }),
        }
    }

    /// Failed requests in percent (0 without requests).
    pub fn error_percent(&self) -> f64 {
        if self.requests == 0 {
            return 0.0;
        }
        self.errors as f64 * 100.0 / self.requests as f64
    }

    /// The 99th percentile duration, within 19 % (none without requests).
    pub fn p99_ms(&self) -> Option<f64> {
        quantile(&self.durations, 0.99)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    fn plan(percent: u8, sticky: Option<Sticky>) -> Canary {
        Canary {
            version: 2,
            percent,
            steps: Vec::new(),
            interval_ms: 60_000,
            since: 0,
            sticky,
            policy: stratus_storage::RolloutPolicy::default(),
        }
    }

    fn canary(percent: u8, sticky: Option<Sticky>) -> CanaryRoute {
        CanaryRoute::new(plan(percent, sticky), Vec::new())
    }

    #[test]
    fn a_random_split_takes_about_its_share() {
        let canary = canary(10, None);
        let none = HeaderMap::new();
        let taken = (0..10_000).filter(|_| canary.takes(&none)).count();
        assert!((700..1300).contains(&taken), "{taken} of 10000 at 10 %");
    }

    #[test]
    fn a_sticky_client_stays_on_its_side_and_keeps_the_canary_as_it_grows() {
        let by_header = canary(30, Some(Sticky::Header("x-user".into())));
        let by_cookie = canary(30, Some(Sticky::Cookie("uid".into())));
        let mut on_canary = 0;
        for user in 0..1000 {
            let id = format!("user-{user}");
            let h = headers(&[("x-user", &id)]);
            let c = headers(&[("cookie", &format!("theme=dark; uid={id}; x=1"))]);
            let first = by_header.takes(&h);
            for _ in 0..5 {
                assert_eq!(by_header.takes(&h), first);
                assert_eq!(by_cookie.takes(&c), first, "cookie and header hash alike");
            }
            if first {
                on_canary += 1;
                let grown = plan(60, Some(Sticky::Header("x-user".into())));
                assert!(by_header.at(grown).takes(&h));
            }
        }
        assert!(
            (200..400).contains(&on_canary),
            "{on_canary} of 1000 at 30 %"
        );
    }

    #[test]
    fn outcomes_since_a_reading_give_the_window() {
        let outcomes = VersionOutcomes::default();
        for _ in 0..10 {
            outcomes.count(false, Duration::from_millis(2));
        }
        let before = outcomes.read();
        for i in 0..100 {
            outcomes.count(
                i % 4 == 0,
                Duration::from_millis(if i < 98 { 2 } else { 400 }),
            );
        }
        let window = outcomes.read().since(&before);
        assert_eq!((window.requests, window.errors), (100, 25));
        assert_eq!(window.error_percent(), 25.0);
        let p99 = window.p99_ms().unwrap();
        assert!((330.0..480.0).contains(&p99), "{p99}");
        assert_eq!(Outcomes::default().p99_ms(), None);
        assert_eq!(Outcomes::default().error_percent(), 0.0);
    }
}
