//! Longest-match routing over exact (`/x`) and prefix (`/x/...`) routes.
//!
//! Lookups cost one hash probe per path segment rather than a scan over all
//! routes, so a node with thousands of functions routes as fast as one with
//! two.

use std::collections::HashMap;

use stratus_manifest::Route;

/// A routing table from routes to targets (live functions in the node);
/// rebuilt, not mutated, on every activation.
#[derive(Debug, Clone)]
pub struct RouteTable<T> {
    exact: HashMap<String, T>,
    /// Keyed by the prefix without its `/...` suffix; `""` is the catch-all.
    prefix: HashMap<String, T>,
}

impl<T> Default for RouteTable<T> {
    fn default() -> Self {
        RouteTable {
            exact: HashMap::new(),
            prefix: HashMap::new(),
        }
    }
}

impl<T> RouteTable<T> {
    /// Adds a route; returns the target that already held it, if any.
    pub fn insert(&mut self, route: &Route, target: T) -> Option<T> {
        match route {
            Route::Exact(path) => self.exact.insert(path.clone(), target),
            Route::Prefix(prefix) => self.prefix.insert(prefix.clone(), target),
        }
    }

    /// The target owning `route` exactly (same form and path), if any.
    pub fn owner(&self, route: &Route) -> Option<&T> {
        match route {
            Route::Exact(path) => self.exact.get(path),
            Route::Prefix(prefix) => self.prefix.get(prefix),
        }
    }

    /// The most specific match for a request path: an exact route for the
    /// path itself, else the longest prefix route covering it.
    pub fn lookup(&self, path: &str) -> Option<&T> {
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

    #[test]
    fn longest_match_wins_and_exact_beats_prefix() {
        let t = table(&["/...", "/a/...", "/a/b/...", "/a/b", "/x"]);
        let at = |p| t.lookup(p).map(String::as_str);
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
        assert_eq!(t.lookup("/b"), None);
        assert_eq!(t.lookup("/exact/more"), None);
        assert_eq!(t.lookup("/ab"), None);
        assert_eq!(t.lookup("/a"), Some(&"/a/...".to_string()));
    }

    mod props {
        use std::collections::HashMap;

        use proptest::prelude::*;

        use super::*;

        /// Routes and paths over two letters, so they often share prefixes.
        fn route() -> impl Strategy<Value = Route> {
            (prop::collection::vec("[ab]{1,2}", 0..4), any::<bool>()).prop_map(
                |(segments, prefix)| match (prefix, segments.is_empty()) {
                    (true, _) => Route::Prefix(segments.iter().map(|s| format!("/{s}")).collect()),
                    (false, true) => Route::Exact("/".into()),
                    (false, false) => Route::Exact(format!("/{}", segments.join("/"))),
                },
            )
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
                        .filter(|(route, _)| route.matches(path))
                        .max_by_key(|(route, _)| route.specificity())
                        .map(|(_, owner)| owner);
                    prop_assert_eq!(table.lookup(path), scanned, "{}", path);
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
    }
}
