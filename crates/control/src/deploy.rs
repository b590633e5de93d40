//! Turning an upload (manifest + component bytes) into a new live version.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use stratus_invoke::LiveFunction;
use stratus_manifest::{FunctionSpec, Manifest, Namespace};
use stratus_runtime::{
    ConfigGrant, Function, FunctionIdentity, FunctionLimits, FunctionOptions, Grants,
    KeyValueGrant, OutboundLimits, PreparedComponent,
};
use tokio::sync::Semaphore;

use crate::error::ControlError;
use crate::gains::{Capabilities, Gains, gains};
use crate::node::Node;
use crate::progress::DeployInProgress;
use crate::stored::FunctionUpload;

/// What a client sends to deploy: the manifest text and the bytes of each
/// component, keyed by the manifest's `component` value.
#[derive(Debug, Default)]
pub struct Upload {
    /// The namespace the app is deployed into; the manifest names only
    /// the app.
    pub namespace: Namespace,
    pub manifest: String,
    pub components: BTreeMap<String, Bytes>,
}

/// What a deploy must hold to go ahead, and how it goes live.
#[derive(Debug, Clone, Default)]
pub struct DeployPolicy {
    /// Refuse the version if it gains any capability over the live one
    /// (see [`crate::gains`]): a pipeline's guard against a change that
    /// widens what a function may reach without anyone deciding it.
    pub require_no_new_capabilities: bool,
    /// Serve the version as a canary beside the live one rather than
    /// making it live (see [`crate::canary`]).
    pub canary: Option<crate::CanaryPlan>,
    /// Who deploys (a token's name), for the rollout history.
    pub by: String,
}

/// The outcome of a deploy, for the CLI to print and CI to parse.
#[derive(Debug, Clone, Serialize)]
pub struct DeployReport {
    /// The app's key: its name, or `<namespace>/<name>` outside `default`.
    pub app: String,
    pub namespace: String,
    pub version: u32,
    pub functions: Vec<DeployedFunction>,
    pub timings: DeployTimings,
    /// What the version may do that the version live before it could not.
    pub gained: Gains,
    /// Its share of requests when it was deployed as a canary (it is then
    /// not the live version).
    pub canary_percent: Option<u8>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeployedFunction {
    pub name: String,
    pub sha256: String,
    pub size: u64,
    pub routes: Vec<String>,
    /// False when identical bytes were already stored (deduplicated).
    pub stored_new: bool,
    /// True when the compiled code came from the cache.
    pub compiled_from_cache: bool,
    /// The code it serves with now: `baseline` until its optimized code
    /// is compiled in the background, then `optimized`.
    pub tier: &'static str,
}

/// Milliseconds spent in each deploy phase on the node.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct DeployTimings {
    pub validate_ms: f64,
    pub compile_ms: f64,
    pub commit_ms: f64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Compiled code this deploy wrote to the cache: removed when dropped
/// unless kept, so a deploy refused after compiling (an ungranted import, a
/// route conflict, a failed commit) leaves no artifact behind.
struct FreshArtifacts {
    runtime: Arc<stratus_runtime::Runtime>,
    shas: Vec<String>,
}

impl FreshArtifacts {
    /// The deploy went live: its compiled code stays.
    fn keep(mut self) {
        self.shas.clear();
    }
}

impl Drop for FreshArtifacts {
    fn drop(&mut self) {
        for sha in &self.shas {
            self.runtime.forget(sha);
        }
    }
}

/// A function whose component is compiled and ready, not yet live.
pub(crate) struct Prepared {
    pub spec: FunctionSpec,
    pub component: Arc<PreparedComponent>,
}

impl Node {
    /// The deploys being compiled or committed whose app `visible` lets
    /// through (a namespace's own), oldest first.
    pub fn deploys_in_progress(&self, visible: impl Fn(&str) -> bool) -> Vec<DeployInProgress> {
        self.deploys.list(visible)
    }

    /// Validates, compiles, stores and activates a new version of an app.
    /// Nothing is stored and nothing changes in serving unless every step
    /// succeeds.
    pub async fn deploy(&self, upload: Upload) -> Result<DeployReport, ControlError> {
        self.deploy_with(upload, DeployPolicy::default()).await
    }

    /// [`deploy`](Self::deploy), refused before anything is stored when
    /// the version breaks `policy`.
    pub async fn deploy_with(
        &self,
        upload: Upload,
        policy: DeployPolicy,
    ) -> Result<DeployReport, ControlError> {
        // A plan that cannot run is refused before anything is compiled.
        if let Some(plan) = &policy.canary {
            plan.check()?;
        }
        // Parsing and checking are linear in a manifest of at most
        // MAX_MANIFEST_SIZE, yet still CPU work that a client decides on:
        // like compiling, it runs on the blocking pool, not on the async
        // workers that serve requests.
        let upload = Arc::new(upload);
        let max_memory = self.runtime.config().max_memory;
        let checked = upload.clone();
        let manifest = tokio::task::spawn_blocking(move || {
            let manifest = Manifest::parse(&checked.manifest, "stratus.toml")?;
            check_upload_matches(&manifest, &checked)?;
            check_limits(&manifest, max_memory)?;
            Ok::<_, ControlError>(manifest)
        })
        .await
        .map_err(ControlError::internal)??;
        let app = upload
            .namespace
            .app_key(&manifest.app.name)
            .map_err(|e| ControlError::Upload(e.to_string()))?;

        // Shown in `GET /v1/deploys` until this returns, whichever way.
        let shown = self.deploys.start(
            &app,
            manifest.functions.iter().map(|spec| {
                let size = upload
                    .components
                    .get(&spec.component)
                    .map_or(0, |b| b.len());
                (spec.name.clone(), size as u64)
            }),
        );
        let shown = Arc::new(shown);
        let progress = shown.clone();
        // Compiling is CPU-bound work of up to seconds: keep it off the
        // async workers that serve requests.
        let runtime = self.runtime.clone();
        let functions = manifest.functions.clone();
        let uploaded = upload.clone();
        let grants: Vec<Grants> = functions.iter().map(|s| self.grants(&app, s)).collect();
        let compiled = tokio::task::spawn_blocking(move || {
            let mut fresh = FreshArtifacts {
                runtime: runtime.clone(),
                shas: Vec::new(),
            };
            let mut out = Vec::new();
            let mut validate = Duration::ZERO;
            let mut compile = Duration::ZERO;
            for (index, (spec, grants)) in functions.into_iter().zip(grants).enumerate() {
                let bytes = uploaded.components.get(&spec.component).ok_or_else(|| {
                    ControlError::Upload(format!(
                        "component \"{}\" was not uploaded",
                        spec.component
                    ))
                })?;
                let sha256 = stratus_storage::sha256_hex(bytes);
                progress.compiling(index);
                let (component, timings) =
                    runtime
                        .prepare(&sha256, bytes)
                        .map_err(|source| ControlError::Component {
                            function: spec.name.clone(),
                            component: spec.component.clone(),
                            source,
                        })?;
                component
                    .check_grants(&grants)
                    .map_err(|e| ControlError::Component {
                        function: spec.name.clone(),
                        component: spec.component.clone(),
                        source: e.into(),
                    })?;
                validate += timings.validate;
                compile += timings.compile;
                progress.ready(index, component.tier(), timings.from_cache);
                if !timings.from_cache {
                    fresh.shas.push(sha256);
                }
                out.push((Prepared { spec, component }, timings.from_cache));
            }
            Ok::<_, ControlError>((out, validate, compile, fresh))
        })
        .await
        .map_err(ControlError::internal)??;
        let (prepared, validate, compile, fresh) = compiled;
        self.count_compiles(prepared.iter().map(|(_, cached)| *cached));

        let serialized = self.deploy_lock.lock().await;
        let commit_started = Instant::now();
        self.check_quotas(&upload.namespace, &app, &manifest)
            .await?;
        // Under the lock: against the version live when this one goes live.
        let known: HashMap<&str, &[String]> = prepared
            .iter()
            .map(|(p, _)| (p.component.sha256(), p.component.imports()))
            .collect();
        let live = self.live_capabilities(&app, &known).await?;
        let old: Vec<Capabilities<'_>> = live
            .iter()
            .map(|(spec, imports)| Capabilities { spec, imports })
            .collect();
        let new: Vec<Capabilities<'_>> = prepared
            .iter()
            .map(|(p, _)| Capabilities {
                spec: &p.spec,
                imports: p.component.imports(),
            })
            .collect();
        let gained = gains(&old, &new);
        if policy.require_no_new_capabilities && !gained.is_empty() {
            return Err(ControlError::CapabilitiesGained { app, gains: gained });
        }
        // A canary is judged against the live version: there must be one.
        let record = match &policy.canary {
            Some(_) => match self.app(&app).await {
                Ok(record) if record.live_version.is_some() => Some(record),
                Ok(_) | Err(ControlError::AppNotFound(_)) => {
                    return Err(ControlError::Traffic(format!(
                        "app \"{app}\" has no live version to run a canary beside; deploy it without a canary first"
                    )));
                }
                Err(e) => return Err(e),
            },
            None => None,
        };
        // The version number and the components' files are only known
        // after the commit, so build the live set with placeholders first
        // purely to detect route conflicts before anything is written (this
        // set never serves).
        let probe: Vec<_> = prepared
            .iter()
            .map(|(p, _)| {
                let outcomes = Arc::default();
                self.live_function(
                    &app,
                    0,
                    &p.spec,
                    p.component.clone(),
                    PathBuf::new(),
                    &outcomes,
                )
            })
            .collect();
        self.invoker
            .live()
            .with_app(&app, probe)
            .map_err(ControlError::RouteConflict)?;

        let mut uploads = Vec::with_capacity(prepared.len());
        for (p, _) in &prepared {
            let Some(bytes) = upload.components.get(&p.spec.component) else {
                return Err(ControlError::Upload(format!(
                    "component \"{}\" was not uploaded",
                    p.spec.component
                )));
            };
            uploads.push(FunctionUpload {
                name: p.spec.name.clone(),
                spec: serde_json::to_value(&p.spec).map_err(ControlError::internal)?,
                bytes: bytes.clone(),
            });
        }
        let sizes: Vec<u64> = uploads.iter().map(|u| u.bytes.len() as u64).collect();
        let stored = self
            .store_version(
                &serialized,
                &app,
                &upload.manifest,
                uploads,
                policy.canary.is_none(),
            )
            .await?;
        let version = stored.number;
        let report_functions = prepared
            .iter()
            .zip(&stored.blobs)
            .zip(sizes)
            .map(|(((p, cached), blob), size)| DeployedFunction {
                name: p.spec.name.clone(),
                sha256: blob.sha256.clone(),
                size,
                routes: p.spec.routes.iter().map(ToString::to_string).collect(),
                stored_new: blob.created,
                compiled_from_cache: *cached,
                tier: p.component.tier().name(),
            })
            .collect();

        let outcomes = self.outcomes_for(&app, version);
        let live: Vec<_> = prepared
            .into_iter()
            .zip(stored.sources)
            .map(|((p, _), source)| {
                self.live_function(&app, version, &p.spec, p.component, source, &outcomes)
            })
            .collect();
        match (&policy.canary, record) {
            (Some(plan), Some(record)) => {
                let canary = plan.canary(version);
                self.start_canary(&app, &record, live, canary, &policy.by)
                    .await?;
                tracing::info!(app = %app, version, percent = plan.percent, "deployed as a canary");
            }
            _ => {
                let set = self
                    .invoker
                    .live()
                    .with_app(&app, live)
                    .map_err(ControlError::RouteConflict)?;
                self.invoker.activate(set);
                tracing::info!(app = %app, version, "deployed and activated");
            }
        }
        fresh.keep();
        self.stats
            .deploys
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);

        Ok(DeployReport {
            app,
            namespace: upload.namespace.to_string(),
            version,
            functions: report_functions,
            timings: DeployTimings {
                validate_ms: ms(validate),
                compile_ms: ms(compile),
                commit_ms: ms(commit_started.elapsed()),
            },
            gained,
            canary_percent: policy.canary.as_ref().map(|c| c.percent),
        })
    }

    /// The live version's functions of `app` (none for a new app): each
    /// one's manifest table and its component's imports — taken from
    /// `known` (the new version's components, by digest) when the code did
    /// not change, which is the common redeploy, else read from the compile
    /// cache (the component was compiled when it was deployed).
    async fn live_capabilities(
        &self,
        app: &str,
        known: &HashMap<&str, &[String]>,
    ) -> Result<Vec<(FunctionSpec, Vec<String>)>, ControlError> {
        let versions = match self.versions(app).await {
            Ok(versions) => versions,
            Err(ControlError::AppNotFound(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let Some(live) = versions.into_iter().find(|v| v.live) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(live.functions.len());
        for record in live.functions {
            // Stored by this node from a validated manifest; one that no
            // longer reads is compared as a new function.
            let Ok(spec) = serde_json::from_value::<FunctionSpec>(record.spec) else {
                continue;
            };
            if let Some(imports) = known.get(record.component_sha256.as_str()) {
                out.push((spec, imports.to_vec()));
                continue;
            }
            let bytes = self.artifacts.read(&record.component_sha256).await?;
            let runtime = self.runtime.clone();
            let sha = record.component_sha256.clone();
            let imports = tokio::task::spawn_blocking(move || {
                runtime
                    .prepare(&sha, &bytes)
                    .map(|(component, _)| component.imports().to_vec())
            })
            .await
            .map_err(ControlError::internal)?
            .unwrap_or_default();
            out.push((spec, imports));
        }
        Ok(out)
    }

    /// Builds the live form of one function of one version, whose
    /// component's bytes are in the file `source` (read again to reload
    /// the function after it scaled to zero).
    pub(crate) fn live_function(
        &self,
        app: &str,
        version: u32,
        spec: &FunctionSpec,
        component: Arc<PreparedComponent>,
        source: PathBuf,
        outcomes: &Arc<stratus_invoke::VersionOutcomes>,
    ) -> Arc<LiveFunction> {
        let limits = FunctionLimits {
            memory: spec.memory.0,
            timeout: spec.timeout,
            outbound: OutboundLimits {
                max_requests: spec.max_outbound_requests,
                max_bytes: spec.max_outbound_bytes.0,
                timeout: spec.outbound_timeout,
            },
        };
        let env = spec
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // Successive versions share one concurrency count, so requests still
        // running on the old version count against the new one's limit.
        let live = self.invoker.live();
        let previous = live.function(app, &spec.name);
        let slots = previous
            .as_ref()
            .filter(|live| live.max_concurrency == spec.max_concurrency)
            .map(|live| live.slots.clone())
            .unwrap_or_else(|| Arc::new(Semaphore::new(spec.max_concurrency as usize)));
        let series = previous.map(|live| live.series.clone()).unwrap_or_default();
        Arc::new(LiveFunction {
            app: app.to_string(),
            name: spec.name.clone(),
            version,
            routes: spec.routes.clone(),
            max_body: spec.max_body.0,
            slots,
            max_concurrency: spec.max_concurrency,
            series,
            outcomes: outcomes.clone(),
            triggers: spec.triggers.clone(),
            spin: spec.spin.clone(),
            function: Function::new(
                self.runtime.clone(),
                component.clone(),
                FunctionOptions {
                    identity: FunctionIdentity::new(app, spec.name.as_str()).with_version(version),
                    allowed_outbound: spec.allowed_outbound.clone(),
                    grants: self.grants(app, spec),
                    limits,
                    env,
                    min_warm: spec.min_warm,
                    reuse: spec.reuse,
                    source,
                },
            ),
        })
    }

    /// The capabilities `spec` grants, served from the node's backends.
    fn grants(&self, app: &str, spec: &FunctionSpec) -> Grants {
        Grants {
            keyvalue: KeyValueGrant {
                app: app.to_string(),
                buckets: spec.keyvalue.clone(),
                backend: self.backends.keyvalue.clone(),
            },
            config: ConfigGrant {
                app: app.to_string(),
                values: spec.config.clone(),
                secrets: spec.secrets.clone(),
                source: self.backends.secrets.clone(),
            },
        }
    }
}

/// Every function must fit the node's memory limit (`max` bytes).
fn check_limits(manifest: &Manifest, max: u64) -> Result<(), ControlError> {
    for f in &manifest.functions {
        if f.memory.0 > max {
            return Err(ControlError::Limit {
                function: f.name.clone(),
                message: format!(
                    "memory {} MiB is more than this node allows ({} MiB)",
                    f.memory.0 >> 20,
                    max >> 20
                ),
            });
        }
    }
    Ok(())
}

/// Every function's component must be in the upload, and nothing else.
fn check_upload_matches(manifest: &Manifest, upload: &Upload) -> Result<(), ControlError> {
    for f in &manifest.functions {
        if !upload.components.contains_key(&f.component) {
            return Err(ControlError::Upload(format!(
                "function \"{}\": its component \"{}\" (the `component` key) was not uploaded",
                f.name, f.component
            )));
        }
    }
    // A set: an upload may have many parts, and a manifest many functions.
    let named: HashSet<&str> = manifest
        .functions
        .iter()
        .map(|f| f.component.as_str())
        .collect();
    if let Some(extra) = upload
        .components
        .keys()
        .find(|k| !named.contains(&k.as_str()))
    {
        return Err(ControlError::Upload(format!(
            "the upload contains component \"{extra}\", which no function in the manifest names"
        )));
    }
    Ok(())
}
