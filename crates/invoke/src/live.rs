//! The set of functions currently serving: what one atomic swap replaces.

use std::collections::HashMap;
use std::sync::Arc;

use stratus_manifest::{Namespace, Route, TriggerSpec, split_key};
use stratus_runtime::Function;

use crate::canary::CanaryRoute;
use crate::routes::RouteTable;

/// One function of an app's live version, with what routing needs.
#[derive(Debug)]
pub struct LiveFunction {
    pub app: String,
    pub name: String,
    pub version: u32,
    pub routes: Vec<Route>,
    /// Largest request body accepted (manifest `max_body`).
    pub max_body: u64,
    /// Invocations of this function that may run at once (manifest
    /// `max_concurrency`). Shared by successive versions of the function so
    /// a deploy does not reset the count while old requests still run.
    pub slots: Arc<tokio::sync::Semaphore>,
    pub max_concurrency: u32,
    /// What its invocations did, for `/metrics`; shared by successive
    /// versions too, so a deploy does not reset a counter.
    pub series: Arc<crate::FunctionSeries>,
    /// What this version of the app answered (requests, failures,
    /// durations), shared by the version's functions: what a canary is
    /// judged on against the stable version.
    pub outcomes: Arc<crate::VersionOutcomes>,
    /// Event sources it consumes (manifest `triggers`).
    pub triggers: Vec<TriggerSpec>,
    /// Set for a function deployed from a `spin.toml`: the gateway gives
    /// it the request headers Spin does.
    pub spin: Option<stratus_manifest::SpinSpec>,
    pub function: Function,
}

impl LiveFunction {
    /// Invocations of it running now, on any of its versions.
    pub fn in_flight(&self) -> u32 {
        let available = u32::try_from(self.slots.available_permits()).unwrap_or(u32::MAX);
        self.max_concurrency.saturating_sub(available)
    }
}

/// Every live function, indexed by route and by name.
#[derive(Debug, Default, Clone)]
pub struct LiveSet {
    routes: RouteTable<Arc<LiveFunction>>,
    by_name: HashMap<String, Vec<Arc<LiveFunction>>>,
    /// app name -> live version
    apps: HashMap<String, u32>,
    /// app name -> the canary serving a share of its requests. Its
    /// functions are not among `functions()`: events, triggers, metrics
    /// and lookups by name see the stable version only.
    canaries: HashMap<String, Arc<CanaryRoute>>,
}

/// Two functions of different apps claiming the same route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConflict {
    pub route: Box<str>,
    pub existing_app: Box<str>,
    pub existing_function: Box<str>,
    pub new_app: Box<str>,
    pub new_function: Box<str>,
    /// The route is free, but its host is served by another namespace's
    /// app: a host belongs to one namespace.
    pub host_taken: bool,
}

impl std::fmt::Display for RouteConflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host_taken {
            return write!(
                f,
                "route \"{}\" of function \"{}\" in app \"{}\" names a host that an app of another namespace serves; a host belongs to one namespace",
                self.route, self.new_function, self.new_app
            );
        }
        write!(
            f,
            "route \"{}\" of function \"{}\" in app \"{}\" is already served",
            self.route, self.new_function, self.new_app
        )?;
        // Another namespace's apps are not named to this one: the route
        // is taken, whose it is is theirs to know.
        if Namespace::of_key(&self.existing_app) == Namespace::of_key(&self.new_app) {
            write!(
                f,
                " by function \"{}\" of app \"{}\"",
                self.existing_function, self.existing_app
            )
        } else {
            f.write_str(" by an app of another namespace")
        }
    }
}

impl LiveSet {
    /// Builds a live set from whole app versions. Fails on the first route
    /// claimed twice, naming both claimants.
    pub fn build(
        functions: impl IntoIterator<Item = Arc<LiveFunction>>,
    ) -> Result<LiveSet, RouteConflict> {
        let mut set = LiveSet::default();
        for function in functions {
            set.add(function)?;
        }
        Ok(set)
    }

    fn add(&mut self, function: Arc<LiveFunction>) -> Result<(), RouteConflict> {
        let conflict = |existing: &LiveFunction, route: &Route, host_taken| RouteConflict {
            route: route.to_string().into(),
            existing_app: existing.app.as_str().into(),
            existing_function: existing.name.as_str().into(),
            new_app: function.app.as_str().into(),
            new_function: function.name.as_str().into(),
            host_taken,
        };
        let namespace = Namespace::of_key(&function.app);
        for route in &function.routes {
            if let Some(host) = &route.host
                && let Some(existing) = self.routes.on_host(host)
                && Namespace::of_key(&existing.app) != namespace
            {
                return Err(conflict(existing, route, true));
            }
            if let Some(existing) = self.routes.insert(route, function.clone()) {
                return Err(conflict(&existing, route, false));
            }
        }
        self.apps.insert(function.app.clone(), function.version);
        self.by_name
            .entry(function.name.clone())
            .or_default()
            .push(function);
        Ok(())
    }

    /// The same set with `app`'s functions replaced by `functions` (or
    /// removed when `functions` is empty).
    pub fn with_app(
        &self,
        app: &str,
        functions: impl IntoIterator<Item = Arc<LiveFunction>>,
    ) -> Result<LiveSet, RouteConflict> {
        let others = self.functions().filter(|f| f.app != app).cloned();
        let mut set = LiveSet::build(others.chain(functions))?;
        set.canaries = self.canaries.clone();
        set.canaries.remove(app);
        Ok(set)
    }

    /// The same set with `canary` serving a share of `app`'s requests (or
    /// none). Fails when one of the canary's routes is another app's: it
    /// will serve every route of its version once promoted.
    pub fn with_canary(
        &self,
        app: &str,
        canary: Option<CanaryRoute>,
    ) -> Result<LiveSet, RouteConflict> {
        let mut set = self.clone();
        match canary {
            Some(canary) => {
                self.with_app(app, canary.functions().iter().cloned())?;
                set.canaries.insert(app.to_owned(), Arc::new(canary));
            }
            None => {
                set.canaries.remove(app);
            }
        }
        Ok(set)
    }

    /// The canary of `app`, if one runs.
    pub fn canary(&self, app: &str) -> Option<&Arc<CanaryRoute>> {
        self.canaries.get(app)
    }

    /// Every canary, by app.
    pub fn canaries(&self) -> impl Iterator<Item = (&String, &Arc<CanaryRoute>)> {
        self.canaries.iter()
    }

    /// Every canary's functions (not among [`functions`](Self::functions)).
    pub fn canary_functions(&self) -> impl Iterator<Item = &Arc<LiveFunction>> {
        self.canaries.values().flat_map(|c| c.functions().iter())
    }

    /// Which version serves a request that routed to `function`: its
    /// app's canary takes its share (where the canary's version routes
    /// the path too), the stable version the rest.
    pub fn split<'a>(
        &'a self,
        function: &'a Arc<LiveFunction>,
        host: Option<&str>,
        path: &str,
        headers: &http::HeaderMap,
    ) -> &'a Arc<LiveFunction> {
        match self.canaries.get(&function.app) {
            Some(canary) if canary.takes(headers) => canary.route(host, path).unwrap_or(function),
            _ => function,
        }
    }

    /// The function `name` of `app` in `version` when that is the app's
    /// canary and has it, else the live one: a call made by a canary's
    /// function stays in the canary.
    pub fn function_in(&self, app: &str, name: &str, version: u32) -> Option<&Arc<LiveFunction>> {
        self.canaries
            .get(app)
            .filter(|c| c.version == version)
            .and_then(|c| c.function(name))
            .or_else(|| self.function(app, name))
    }

    /// Every live function.
    pub fn functions(&self) -> impl Iterator<Item = &Arc<LiveFunction>> {
        self.by_name.values().flatten()
    }

    /// The function serving a request for `path` on `host` (as
    /// [`stratus_manifest::request_host`] gives it), by the most specific
    /// route: the host's own first, then the longest path — for a host a
    /// namespace's routes name, only that namespace's.
    pub fn route(&self, host: Option<&str>, path: &str) -> Option<&Arc<LiveFunction>> {
        self.routes.lookup(host, path, |a, b| {
            split_key(&a.app).0 == split_key(&b.app).0
        })
    }

    /// The live function `name` of `app`, if any.
    pub fn function(&self, app: &str, name: &str) -> Option<&Arc<LiveFunction>> {
        self.by_name(name).iter().find(|f| f.app == app)
    }

    /// The live functions of `app` with a trigger on its queue `queue` that
    /// takes events from `publisher`, and that trigger's `max_attempts`.
    /// Queues belong to their app: a trigger takes its own app's events,
    /// and another app's only when its `from` lists that app.
    pub fn consumers(
        &self,
        app: &str,
        queue: &str,
        publisher: &str,
    ) -> Vec<(Arc<LiveFunction>, u32)> {
        self.functions()
            .filter(|f| f.app == app)
            .filter_map(|f| {
                f.triggers.iter().find_map(|t| match t {
                    TriggerSpec::Queue {
                        queue: q,
                        from,
                        max_attempts,
                    } if q == queue && (publisher == app || granted(app, from, publisher)) => {
                        Some((f.clone(), *max_attempts))
                    }
                    _ => None,
                })
            })
            .collect()
    }

    /// Live functions with this name (one per app that has it).
    pub fn by_name(&self, name: &str) -> &[Arc<LiveFunction>] {
        self.by_name.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The live version of an app, if it has one.
    pub fn app_version(&self, app: &str) -> Option<u32> {
        self.apps.get(app).copied()
    }

    pub fn routes(&self) -> &RouteTable<Arc<LiveFunction>> {
        &self.routes
    }
}

/// Whether a queue trigger of app `app` whose `from` lists `from` takes
/// events from the app keyed `publisher`. `from` names apps of the
/// consumer's own namespace: another namespace cannot be granted.
fn granted(app: &str, from: &[String], publisher: &str) -> bool {
    let namespace = Namespace::of_key(app);
    from.iter()
        .any(|a| namespace.app_key(a).is_ok_and(|key| key == publisher))
}

#[cfg(test)]
mod tests {
    use super::granted;

    #[test]
    fn from_names_apps_of_the_consumers_own_namespace() {
        let from = ["billing".to_owned()];
        assert!(granted("shop", &from, "billing"));
        assert!(granted("team-a/shop", &from, "team-a/billing"));
        // The same name in another namespace is another app.
        assert!(!granted("team-a/shop", &from, "billing"));
        assert!(!granted("team-a/shop", &from, "team-b/billing"));
        assert!(!granted("shop", &from, "team-a/billing"));
        // An entry cannot name another namespace's app.
        let reach = ["team-b/billing".to_owned()];
        assert!(!granted("team-a/shop", &reach, "team-b/billing"));
    }
}
