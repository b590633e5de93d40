//! Longest-match routing over exact (`/x`) and prefix (`/x/...`) routes,
//! with or without a host.
//!
//! Lookups cost one hash probe per path segment (twice over when the
//! request's host has routes of its own) rather than a scan over all
//! routes, so a node with thousands of functions routes as fast as one with
//! two.

use std::collections::HashMap;

use stratus_manifest::{Route, RoutePath};

/// A routing table from routes to targets (live functions in the node);
/// rebuilt, not mutated, on every activation.
#[derive(Debug, Clone)]
pub struct RouteTable<T> {
    /// Routes without a host: they serve every host.
    any: PathTable<T>,
    /// Routes naming a host, by host.
    hosts: HashMap<String, PathTable<T>>,
}

/// The routes of one host (or of every host).
#[derive(Debug, Clone)]
struct PathTable<T> {
    exact: HashMap<String, T>,
    /// Keyed by the prefix without its `/...` suffix; `""` is the catch-all.
    prefix: HashMap<String, T>,
}

impl<T> Default for PathTable<T> {
    fn default() -> Self {
        PathTable {
            exact: HashMap::new(),
            prefix: HashMap::new(),
        }
    }
}

impl<T> Default for RouteTable<T> {
    fn default() -> Self {
        RouteTable {
            any: PathTable::default(),
            hosts: HashMap::new(),
        }
    }
}

impl<T> PathTable<T> {
    fn insert(&mut self, path: &RoutePath, target: T) -> Option<T> {
        match path {
            RoutePath::Exact(path) => self.exact.insert(path.clone(), target),
            RoutePath::Prefix(prefix) => self.prefix.insert(prefix.clone(), target),
        }
    }

    fn owner(&self, path: &RoutePath) -> Option<&T> {
        match path {
            RoutePath::Exact(path) => self.exact.get(path),
            RoutePath::Prefix(prefix) => self.prefix.get(prefix),
        }
    }

    /// An exact route for the path itself, else the longest prefix route
    /// covering it, among the targets `keep` accepts.
    fn lookup(&self, path: &str, keep: impl Fn(&T) -> bool) -> Option<&T> {
        if let Some(hit) = self.exact.get(path).filter(|t| keep(t)) {
            return Some(hit);
        }
        if self.prefix.is_empty() {
            return None;
        }
        // "/a/b/c" tries "/a/b/c", "/a/b", "/a", then "" (the catch-all).
        let mut candidate = path.strip_suffix('/').unwrap_or(path);
        loop {
            if let Some(hit) = self.prefix.get(candidate).filter(|t| keep(t)) {
                return Some(hit);
            }
            match candidate.rfind('/') {
                Some(cut) => candidate = &candidate[..cut],
                None => return None,
            }
        }
    }

    fn len(&self) -> usize {
        self.exact.len() + self.prefix.len()
    }
}

impl<T> RouteTable<T> {
    /// Adds a route; returns the target that already held it, if any.
    pub fn insert(&mut self, route: &Route, target: T) -> Option<T> {
        match &route.host {
            None => self.any.insert(&route.path, target),
            Some(host) => self
                .hosts
                .entry(host.clone())
                .or_default()
                .insert(&route.path, target),
        }
    }

    /// The target owning `route` exactly (same host, form and path), if any.
    pub fn owner(&self, route: &Route) -> Option<&T> {
        match &route.host {
            None => self.any.owner(&route.path),
            Some(host) => self.hosts.get(host)?.owner(&route.path),
        }
    }

    /// The most specific match for a request for `path` on `host` (as
    /// [`stratus_manifest::request_host`] gives it): the host's own routes
    /// first, then the routes of every host — of those, for a host that
    /// routes name, only targets `same_tenant` as the host's own. A custom
    /// domain is its tenant's: another tenant's catch-all must not answer
    /// (and see the cookies of) requests to it.
    pub fn lookup(
        &self,
        host: Option<&str>,
        path: &str,
        same_tenant: impl Fn(&T, &T) -> bool,
    ) -> Option<&T> {
        let Some(own) = host.and_then(|h| self.hosts.get(h)) else {
            return self.any.lookup(path, |_| true);
        };
        if let Some(hit) = own.lookup(path, |_| true) {
            return Some(hit);
        }
        let owner = own.exact.values().chain(own.prefix.values()).next()?;
        self.any.lookup(path, |t| same_tenant(owner, t))
    }

    /// Whether any route names a host: if none does, the request's host
    /// need not be read.
    pub fn has_hosts(&self) -> bool {
        !self.hosts.is_empty()
    }

    /// A target of some route naming `host`, if any route names it.
    pub fn on_host(&self, host: &str) -> Option<&T> {
        let table = self.hosts.get(host)?;
        table.exact.values().chain(table.prefix.values()).next()
    }

    pub fn len(&self) -> usize {
        self.any.len() + self.hosts.values().map(PathTable::len).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(routes: &[&str]) -> RouteTable<String> {
        let mut t = RouteTable::default();
        for r in routes {
            let route = Route::parse(r).unwrap();
            assert!(t.insert(&route, r.to_string()).is_none());
        }
        t
    }

    /// Every target one tenant's.
    fn one<T>(_: &T, _: &T) -> bool {
        true
    }

    #[test]
    fn a_host_a_tenant_holds_falls_back_only_to_its_routes() {
        let mut t = RouteTable::default();
        for (route, target) in [
            ("api.test/orders/...", "a:orders"),
            ("/x/...", "a:x"),
            ("/...", "b:catch-all"),
        ] {
            t.insert(&Route::parse(route).unwrap(), target);
        }
        let same = |a: &&str, b: &&str| a[..1] == b[..1];
        let at = |h, p| t.lookup(h, p, same).copied();
        assert_eq!(at(Some("api.test"), "/orders/1"), Some("a:orders"));
        assert_eq!(at(Some("api.test"), "/x/y"), Some("a:x"));
        assert_eq!(at(Some("api.test"), "/z"), None, "not b's catch-all");
        assert_eq!(at(Some("www.test"), "/z"), Some("b:catch-all"));
        assert_eq!(at(None, "/x/y"), Some("a:x"));
    }

    #[test]
    fn longest_match_wins_and_exact_beats_prefix() {
        let t = table(&["/...", "/a/...", "/a/b/...", "/a/b", "/x"]);
        let at = |p| t.lookup(None, p, one).map(String::as_str);
        assert_eq!(at("/a/b"), Some("/a/b"));
        assert_eq!(at("/a/b/"), Some("/a/b/..."));
        assert_eq!(at("/a/b/c/d"), Some("/a/b/..."));
        assert_eq!(at("/a/bc"), Some("/a/..."));
        assert_eq!(at("/a"), Some("/a/..."));
        assert_eq!(at("/x"), Some("/x"));
        assert_eq!(at("/x/y"), Some("/..."));
        assert_eq!(at("/"), Some("/..."));
    }

    #[test]
    fn without_a_catch_all_unknown_paths_miss() {
        let t = table(&["/a/...", "/exact"]);
        assert_eq!(t.lookup(None, "/b", one), None);
        assert_eq!(t.lookup(None, "/exact/more", one), None);
        assert_eq!(t.lookup(None, "/ab", one), None);
        assert_eq!(t.lookup(None, "/a", one), Some(&"/a/...".to_string()));
    }

    #[test]
    fn a_hosts_own_routes_come_first_then_every_hosts() {
        let t = table(&["/...", "/a/b/...", "api.test/...", "api.test/a/x"]);
        let at = |h, p| t.lookup(h, p, one).map(String::as_str);
        assert_eq!(at(Some("api.test"), "/a/b/c"), Some("api.test/..."));
        assert_eq!(at(Some("api.test"), "/a/x"), Some("api.test/a/x"));
        assert_eq!(at(Some("www.test"), "/a/b/c"), Some("/a/b/..."));
        assert_eq!(at(None, "/a/x"), Some("/..."));
        let only = table(&["api.test/orders/..."]);
        assert_eq!(only.lookup(Some("api.test"), "/other", one), None);
        assert_eq!(only.lookup(Some("www.test"), "/orders", one), None);
        assert!(only.has_hosts() && !t.is_empty());
    }

    mod props {
        use std::collections::HashMap;

        use proptest::prelude::*;

        use super::*;

        /// Routes and paths over two letters, so they often share prefixes,
        /// on one of two hosts or on every host.
        fn route() -> impl Strategy<Value = Route> {
            (
                prop::collection::vec("[ab]{1,2}", 0..4),
                any::<bool>(),
                prop::option::of(host()),
            )
                .prop_map(|(segments, prefix, host)| {
                    let path = match (prefix, segments.is_empty()) {
                        (true, _) => {
                            RoutePath::Prefix(segments.iter().map(|s| format!("/{s}")).collect())
                        }
                        (false, true) => RoutePath::Exact("/".into()),
                        (false, false) => RoutePath::Exact(format!("/{}", segments.join("/"))),
                    };
                    Route { host, path }
                })
        }

        fn host() -> impl Strategy<Value = String> {
            "[xy]\\.test"
        }

        fn path() -> impl Strategy<Value = String> {
            "(/[ab]{0,2}){0,5}/?"
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

            /// The table answers as a scan over every route would: the
            /// matching route of the greatest specificity (longest; exact
            /// before prefix). Inserting returns the previous owner, as a
            /// map keyed by the route does.
            #[test]
            fn lookup_is_the_longest_match_of_a_scan(
                routes in prop::collection::vec(route(), 0..12),
                paths in prop::collection::vec(path(), 1..8),
                host in prop::option::of(host()),
            ) {
                let mut table = RouteTable::default();
                let mut model: HashMap<Route, usize> = HashMap::new();
                for (i, route) in routes.iter().enumerate() {
                    prop_assert_eq!(table.insert(route, i), model.insert(route.clone(), i));
                    prop_assert_eq!(table.owner(route), Some(&i));
                }
                prop_assert_eq!(table.len(), model.len());
                for path in &paths {
                    let scanned = model
                        .iter()
                        .filter(|(route, _)| route.matches(host.as_deref(), path))
                        .max_by_key(|(route, _)| route.specificity())
                        .map(|(_, owner)| owner);
                    prop_assert_eq!(table.lookup(host.as_deref(), path, one), scanned, "{}", path);
                }
            }
        }
    }

    #[test]
    fn a_route_claimed_twice_returns_the_first_owner() {
        let mut t = table(&["/a/..."]);
        let again = Route::parse("/a/...").unwrap();
        assert_eq!(
            t.insert(&again, "second".into()),
            Some("/a/...".to_string())
        );
        // Exact and prefix forms of the same path are different routes.
        assert!(
            t.insert(&Route::parse("/a").unwrap(), "exact".into())
                .is_none()
        );
        // So are the same path on a host and on every host.
        assert!(
            t.insert(&Route::parse("a.test/a/...").unwrap(), "host".into())
                .is_none()
        );
    }
}
