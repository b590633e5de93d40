//! Longest-match routing over exact (`/x`) and prefix (`/x/...`) routes.
//!
//! Lookups cost one hash probe per path segment rather than a scan over all
//! routes, so a node with thousands of functions routes as fast as one with
//! two.

use std::collections::HashMap;
use std::sync::Arc;

use stratus_manifest::Route;

use crate::live::LiveFunction;

/// An immutable routing table; rebuilt (not mutated) on every activation.
#[derive(Debug, Default, Clone)]
pub struct RouteTable {
    exact: HashMap<String, Arc<LiveFunction>>,
    /// Keyed by the prefix without its `/...` suffix; `""` is the catch-all.
    prefix: HashMap<String, Arc<LiveFunction>>,
}

impl RouteTable {
    /// Adds a route; returns the function that already held it, if any.
    pub fn insert(
        &mut self,
        route: &Route,
        target: Arc<LiveFunction>,
    ) -> Option<Arc<LiveFunction>> {
        match route {
            Route::Exact(path) => self.exact.insert(path.clone(), target),
            Route::Prefix(prefix) => self.prefix.insert(prefix.clone(), target),
        }
    }

    /// The function owning `route` exactly (same form and path), if any.
    pub fn owner(&self, route: &Route) -> Option<&Arc<LiveFunction>> {
        match route {
            Route::Exact(path) => self.exact.get(path),
            Route::Prefix(prefix) => self.prefix.get(prefix),
        }
    }

    /// The most specific match for a request path: an exact route for the
    /// path itself, else the longest prefix route covering it.
    pub fn lookup(&self, path: &str) -> Option<&Arc<LiveFunction>> {
        if let Some(hit) = self.exact.get(path) {
            return Some(hit);
        }
        if self.prefix.is_empty() {
            return None;
        }
        // "/a/b/c" tries "/a/b/c", "/a/b", "/a", then "" (the catch-all).
        let mut candidate = path.strip_suffix('/').unwrap_or(path);
        loop {
            if let Some(hit) = self.prefix.get(candidate) {
                return Some(hit);
            }
            match candidate.rfind('/') {
                Some(cut) => candidate = &candidate[..cut],
                None => return None,
            }
        }
    }

    pub fn len(&self) -> usize {
        self.exact.len() + self.prefix.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
