//! The node: store, runtime and invoker, and the operations that keep them
//! in step (start-up, activation, deletion).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use stratus_invoke::{Invoker, LiveFunction};
use stratus_manifest::{FunctionSpec, Namespace, split_key};
use stratus_runtime::Runtime;
use stratus_storage::{
    AppRecord, AppStore, AppStoreError, ArtifactStore, FunctionRecord, VersionRecord,
};

use crate::error::ControlError;

/// Counters the admin API exposes as metrics.
#[derive(Debug, Default)]
pub struct NodeStats {
    /// Components compiled to native code (deploys of new bytes, or a
    /// start-up that found no cached artifact).
    pub compiled: AtomicU64,
    /// Components whose native code was loaded from the on-disk cache.
    pub loaded_from_cache: AtomicU64,
    pub deploys: AtomicU64,
    pub activations: AtomicU64,
}

/// One node's control plane. Shared behind an `Arc` by the admin API.
pub struct Node {
    /// What was deployed: apps, versions, which is live.
    pub(crate) apps: Arc<dyn AppStore>,
    /// The components' bytes, by hash. Kept in step with `apps` by
    /// `stored.rs` alone.
    pub(crate) artifacts: Arc<dyn ArtifactStore>,
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) invoker: Arc<Invoker>,
    /// Serializes changes to the live set (deploy, activate, delete) so two
    /// of them never build on the same old set.
    pub(crate) deploy_lock: tokio::sync::Mutex<()>,
    pub(crate) stats: NodeStats,
    pub(crate) ready: AtomicBool,
    /// Apps whose stored live version could not be loaded at start-up, with
    /// why; reported by `/readyz` so an operator sees them.
    problems: std::sync::Mutex<Vec<String>>,
    /// What granted capabilities are served from.
    pub(crate) backends: CapabilityBackends,
    /// For a node following a shared store: the creation time of each app
    /// as last followed (`follow.rs`).
    pub(crate) followed: std::sync::Mutex<std::collections::HashMap<String, i64>>,
    /// Namespaces' quotas, checked at deploy (`quotas.rs`); none: no quotas.
    pub(crate) namespaces: Option<Arc<dyn stratus_storage::NamespaceStore>>,
    /// Where each canary's current step began on this node (`canary.rs`).
    pub(crate) canary_steps:
        std::sync::Mutex<std::collections::HashMap<String, crate::canary::StepStart>>,
    /// Where the node's own decisions (a canary rolled back or promoted)
    /// are recorded beside the API's changes; none: only in the log.
    pub(crate) audit: Option<Arc<dyn stratus_storage::AuditLog>>,
    /// Deploys being compiled or committed, for clients waiting on them.
    pub(crate) deploys: Arc<crate::progress::InProgress>,
}

/// The node-wide services behind the capabilities functions are granted:
/// where key-value buckets live and where secrets are read from. A node
/// without one refuses, at run time, the calls that would need it.
#[derive(Clone, Default)]
pub struct CapabilityBackends {
    pub keyvalue: Option<Arc<dyn stratus_runtime::KeyValueBackend>>,
    pub secrets: Option<Arc<dyn stratus_runtime::SecretSource>>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("runtime", &self.runtime)
            .field("invoker", &self.invoker)
            .field("stats", &self.stats)
            .field("ready", &self.ready)
            .field("backends", &self.backends)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for CapabilityBackends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CapabilityBackends")
            .field("keyvalue", &self.keyvalue.as_ref().map(|kv| kv.kind()))
            .field("secrets", &self.secrets.is_some())
            .finish()
    }
}

impl Node {
    pub fn new(
        apps: Arc<dyn AppStore>,
        artifacts: Arc<dyn ArtifactStore>,
        runtime: Arc<Runtime>,
        invoker: Arc<Invoker>,
    ) -> Node {
        Node {
            apps,
            artifacts,
            runtime,
            invoker,
            deploy_lock: tokio::sync::Mutex::new(()),
            stats: NodeStats::default(),
            ready: AtomicBool::new(false),
            problems: std::sync::Mutex::default(),
            backends: CapabilityBackends::default(),
            followed: std::sync::Mutex::default(),
            namespaces: None,
            canary_steps: std::sync::Mutex::default(),
            audit: None,
            deploys: Arc::default(),
        }
    }

    /// Serves granted capabilities from `backends`. Set before the stored
    /// apps are loaded, so every function sees them.
    pub fn with_backends(mut self, backends: CapabilityBackends) -> Node {
        self.backends = backends;
        self
    }

    /// Records the node's own decisions in `audit`.
    pub fn with_audit(mut self, audit: Arc<dyn stratus_storage::AuditLog>) -> Node {
        self.audit = Some(audit);
        self
    }

    pub fn invoker(&self) -> &Arc<Invoker> {
        &self.invoker
    }

    /// The key-value store functions' buckets live in, if the node has one.
    pub fn keyvalue(&self) -> Option<&Arc<dyn stratus_runtime::KeyValueBackend>> {
        self.backends.keyvalue.as_ref()
    }

    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    pub fn stats(&self) -> &NodeStats {
        &self.stats
    }

    /// True once the live versions stored at start-up are serving.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Start-up: loads every app's live version (from the compile cache when
    /// possible) and makes it serve. An app that cannot be loaded is logged
    /// and skipped so one bad app does not keep the others down.
    pub async fn load_live(&self) -> Result<usize, ControlError> {
        let live = self.apps.live_functions().await?;
        let mut by_app: BTreeMap<(String, u32), Vec<FunctionRecord>> = BTreeMap::new();
        for f in live {
            by_app
                .entry((f.app, f.version))
                .or_default()
                .push(f.function);
        }
        let _serialized = self.deploy_lock.lock().await;
        let mut loaded = 0;
        for ((app, version), records) in by_app {
            match self.load_version(&app, version, records).await {
                Ok(functions) => match self.invoker.live().with_app(&app, functions) {
                    Ok(set) => {
                        self.invoker.activate(set);
                        loaded += 1;
                    }
                    Err(conflict) => self.report_problem(&app, &conflict.to_string()),
                },
                Err(e) => self.report_problem(&app, &e.to_string()),
            }
        }
        // Then the canaries beside them.
        for app in self.apps.list_apps().await? {
            if let Some(canary) = &app.traffic.canary
                && let Err(e) = self.follow_canary(&app.name, Some(canary)).await
            {
                self.report_problem(&app.name, &format!("its canary is not serving: {e}"));
            }
        }
        self.ready.store(true, Ordering::Relaxed);
        Ok(loaded)
    }

    /// Problems that keep stored apps from serving (empty when all is well).
    pub fn problems(&self) -> Vec<String> {
        self.problems.lock().map(|p| p.clone()).unwrap_or_default()
    }

    fn report_problem(&self, app: &str, problem: &str) {
        tracing::error!(app, "not serving app: {problem}");
        if let Ok(mut problems) = self.problems.lock() {
            problems.push(format!("app \"{app}\" is not serving: {problem}"));
        }
    }

    /// Scale to zero: every `ttl / 4` (bounded to 50 ms .. 10 s), drops the
    /// compiled code of functions idle for `ttl`. Runs until the node is
    /// dropped.
    pub fn spawn_evictor(self: &Arc<Self>, ttl: Duration) {
        let period = (ttl / 4).clamp(Duration::from_millis(50), Duration::from_secs(10));
        self.spawn_every(period, move |node| async move {
            let live = node.invoker.live();
            for f in live.functions().chain(live.canary_functions()) {
                if f.function.evict_if_idle(ttl) {
                    tracing::debug!(app = %f.app, function = %f.name, "idle: compiled code dropped");
                }
            }
        });
    }

    /// Runs `round` every `period` (a late round delays the next rather
    /// than bunching them) until the node is dropped: the task holds the
    /// node only while a round runs.
    pub(crate) fn spawn_every<R, F>(self: &Arc<Self>, period: Duration, round: R)
    where
        R: Fn(Arc<Node>) -> F + Send + 'static,
        F: std::future::Future<Output = ()> + Send,
    {
        let node = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(node) = node.upgrade() else { break };
                round(node).await;
            }
        });
    }

    /// Makes `version` of `app` live; with `None`, the version before the
    /// live one (a rollback). Returns the version now live.
    pub async fn activate(&self, app: &str, version: Option<u32>) -> Result<u32, ControlError> {
        let _serialized = self.deploy_lock.lock().await;
        let versions = self.versions(app).await?;
        let target = match version {
            Some(v) => v,
            None => {
                let live = versions.iter().find(|v| v.live).map(|v| v.number);
                versions
                    .iter()
                    .map(|v| v.number)
                    .filter(|n| live.is_none_or(|live| *n < live))
                    .max()
                    .ok_or_else(|| ControlError::NoEarlierVersion(app.to_string()))?
            }
        };
        let record = versions
            .into_iter()
            .find(|v| v.number == target)
            .ok_or_else(|| ControlError::VersionNotFound {
                app: app.to_string(),
                version: target,
            })?;
        let functions = self.load_version(app, target, record.functions).await?;
        let set = self
            .invoker
            .live()
            .with_app(app, functions)
            .map_err(ControlError::RouteConflict)?;
        // A canary ends with a choice made by hand; its history says so.
        let record = self.app(app).await?;
        match record.traffic.canary.clone() {
            Some(canary) => {
                let mut traffic = record.traffic;
                traffic.canary = None;
                let action = if canary.version == target {
                    stratus_storage::RolloutAction::Promoted
                } else {
                    stratus_storage::RolloutAction::Ended
                };
                traffic.record(stratus_storage::RolloutEvent {
                    at: stratus_storage::now_ms(),
                    action,
                    stable: record.live_version.unwrap_or_default(),
                    canary: canary.version,
                    percent: 0,
                    by: String::new(),
                    reason: format!("version {target} activated by hand"),
                });
                self.apps.set_traffic(app, Some(target), traffic).await
            }
            None => self.apps.set_live(app, target).await,
        }
        .map_err(|e| not_found(e, app))?;
        self.invoker.activate(set);
        self.stats.activations.fetch_add(1, Ordering::Relaxed);
        tracing::info!(app, version = target, "activated");
        Ok(target)
    }

    /// Makes `functions` the app's live functions (none: it stops
    /// serving) in one atomic swap of the live set.
    pub(crate) fn swap_app(
        &self,
        app: &str,
        functions: Vec<Arc<LiveFunction>>,
    ) -> Result<(), ControlError> {
        let stopped = functions.is_empty();
        let set = self
            .invoker
            .live()
            .with_app(app, functions)
            .map_err(ControlError::RouteConflict)?;
        self.invoker.activate(set);
        // An app that stops serving leaves no canary window behind.
        if stopped && let Ok(mut starts) = self.canary_steps.lock() {
            starts.remove(app);
        }
        Ok(())
    }

    /// Stops serving an app and deletes it with all its versions.
    pub async fn delete_app(&self, app: &str) -> Result<(), ControlError> {
        let serialized = self.deploy_lock.lock().await;
        self.delete_stored_app(&serialized, app).await?;
        self.swap_app(app, Vec::new())?;
        tracing::info!(app, "deleted");
        Ok(())
    }

    pub async fn apps(&self) -> Result<Vec<AppRecord>, ControlError> {
        Ok(self.apps.list_apps().await?)
    }

    pub async fn app(&self, app: &str) -> Result<AppRecord, ControlError> {
        self.apps
            .app(app)
            .await
            .map_err(|e| not_found(e, app))?
            .ok_or_else(|| ControlError::AppNotFound(app.to_string()))
    }

    pub async fn versions(&self, app: &str) -> Result<Vec<VersionRecord>, ControlError> {
        self.apps
            .list_versions(app)
            .await
            .map_err(|e| not_found(e, app))
    }

    /// Finds a live function of `namespace` by name, or by `app/function`
    /// when the name is used by several of its apps. Another namespace's
    /// functions are not found.
    pub fn find_function(
        &self,
        namespace: &Namespace,
        name: &str,
    ) -> Result<Arc<LiveFunction>, ControlError> {
        let live = self.invoker.live();
        let (app, function) = match name.split_once('/') {
            Some((app, function)) => match namespace.app_key(app) {
                Ok(key) => (Some(key), function),
                Err(_) => return Err(ControlError::FunctionNotFound(name.to_string())),
            },
            None => (None, name),
        };
        let candidates: Vec<_> = live
            .by_name(function)
            .iter()
            .filter(|f| namespace.owns(&f.app))
            .filter(|f| app.as_ref().is_none_or(|a| &f.app == a))
            .cloned()
            .collect();
        match candidates.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(ControlError::FunctionNotFound(name.to_string())),
            many => Err(ControlError::AmbiguousFunction {
                name: name.to_string(),
                // Named as the caller names them: within the namespace.
                apps: many
                    .iter()
                    .map(|f| split_key(&f.app).1.to_owned())
                    .collect(),
            }),
        }
    }

    /// Prepares every function of a stored version for serving.
    pub(crate) async fn load_version(
        &self,
        app: &str,
        version: u32,
        records: Vec<FunctionRecord>,
    ) -> Result<Vec<Arc<LiveFunction>>, ControlError> {
        // The files functions reload their code from after scaling to zero.
        let mut sources = Vec::with_capacity(records.len());
        for record in &records {
            sources.push(self.artifacts.local_path(&record.component_sha256).await?);
        }
        let runtime = self.runtime.clone();
        // The bytes are read only when no compiled code is cached, from the
        // local file the artifact store keeps them in, on the blocking
        // thread the load runs on.
        let files = sources.clone();
        let prepared = blocking(move || {
            records
                .into_iter()
                .zip(files)
                .map(|(record, file)| {
                    let spec: FunctionSpec =
                        serde_json::from_value(record.spec.clone()).map_err(|e| {
                            ControlError::Internal(format!(
                                "stored spec of function \"{}\" is unreadable: {e}",
                                record.name
                            ))
                        })?;
                    let (component, timings) = runtime
                        .load(&record.component_sha256, &file)
                        .map_err(|source| ControlError::Component {
                            function: record.name.clone(),
                            component: spec.component.clone(),
                            source,
                        })?;
                    Ok::<_, ControlError>((spec, component, timings.from_cache))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await??;
        self.count_compiles(prepared.iter().map(|(_, _, cached)| *cached));
        let outcomes = self.outcomes_for(app, version);
        Ok(prepared
            .into_iter()
            .zip(sources)
            .map(|((spec, component, _), source)| {
                self.live_function(app, version, &spec, component, source, &outcomes)
            })
            .collect())
    }

    pub(crate) fn count_compiles(&self, from_cache: impl Iterator<Item = bool>) {
        for cached in from_cache {
            let counter = if cached {
                &self.stats.loaded_from_cache
            } else {
                &self.stats.compiled
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Runs blocking compile work off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ControlError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ControlError::internal)
}

/// The app store's not-found errors become the control plane's, so the
/// admin API answers 404 rather than 500.
pub(crate) fn not_found(e: AppStoreError, app: &str) -> ControlError {
    match e {
        AppStoreError::AppNotFound(_) => ControlError::AppNotFound(app.to_string()),
        AppStoreError::VersionNotFound { number, .. } => ControlError::VersionNotFound {
            app: app.to_string(),
            version: number,
        },
        other => ControlError::Apps(other),
    }
}
