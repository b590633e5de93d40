//! Compiling components once and keeping the native code on disk.
//!
//! Compilation is the expensive step (hundreds of milliseconds for a small
//! component, seconds for a Python or JavaScript one), so it happens at
//! deploy and its result is cached under
//! `<cache_dir>/<engine hash>/<component sha256>.cwasm`. The engine hash is
//! part of the path because an artifact only loads on an engine with the
//! same version and settings; after an upgrade the old directory is simply
//! not looked at and components are compiled again. The two tiers' engines
//! differ in their settings, so each tier's artifacts have a directory of
//! their own, and a load takes the optimized one when it is there.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::capabilities::Grants;
use crate::engine::{Compiler, Runtime};
use crate::error::{RuntimeError, ValidationError};
use crate::host::InstanceState;
use crate::tier::{Job, Tier};
use crate::validate;

/// A component compiled, checked and pre-instantiated: ready to serve.
pub struct PreparedComponent {
    /// Swapped once, from baseline to optimized code.
    code: ArcSwap<Code>,
    sha256: String,
    /// Every import of the component, to check a function's grants against.
    imports: Vec<String>,
}

impl std::fmt::Debug for PreparedComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedComponent")
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

/// Native code of one tier, pre-instantiated: a store for it must be of
/// the same engine.
pub(crate) struct Code {
    pub(crate) pre: ProxyPre<InstanceState>,
    pub(crate) engine: Engine,
    pub(crate) tier: Tier,
}

impl PreparedComponent {
    /// The code requests instantiate now.
    pub(crate) fn code(&self) -> Arc<Code> {
        self.code.load_full()
    }

    /// Which compiler produced the code it serves with now.
    pub fn tier(&self) -> Tier {
        self.code.load().tier
    }

    /// Replaces the code; requests running keep the code they started on.
    pub(crate) fn switch(&self, code: Code) {
        self.code.store(Arc::new(code));
    }

    /// The SHA-256 of the component's bytes (hex).
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Every import of the component, as it names them
    /// (`wasi:http/outgoing-handler@0.2.3`).
    pub fn imports(&self) -> &[String] {
        &self.imports
    }

    /// Refuses the component for a function with `grants` if it imports a
    /// capability the function was not granted.
    pub fn check_grants(&self, grants: &Grants) -> Result<(), ValidationError> {
        crate::capabilities::check_grants(&self.imports, grants)
    }
}

/// Where the time of preparing a component went.
#[derive(Debug, Clone, Copy, Default)]
pub struct CompileTimings {
    /// Checking the bytes, the exports and the imports.
    pub validate: Duration,
    /// Compiling to native code (zero when the cache had it).
    pub compile: Duration,
    /// Whether the native code came from the on-disk cache.
    pub from_cache: bool,
}

impl CompileTimings {
    fn shared() -> Self {
        CompileTimings {
            validate: Duration::ZERO,
            compile: Duration::ZERO,
            from_cache: true,
        }
    }
}

impl Runtime {
    /// Prepares a component from its bytes: validates it, compiles it (or
    /// loads the cached artifact) and pre-instantiates it against the node's
    /// host interfaces. This is the deploy path. Without optimized code in
    /// the cache, a tiered node compiles baseline code and queues the
    /// optimized compile.
    pub fn prepare(
        &self,
        sha256: &str,
        bytes: &[u8],
    ) -> Result<(Arc<PreparedComponent>, CompileTimings), RuntimeError> {
        if let Some(shared) = self.already_loaded(sha256) {
            return Ok((shared, CompileTimings::shared()));
        }
        let started = Instant::now();
        let bytes = &*crate::adapt::to_component(bytes)?;
        validate::check_limits(bytes, &self.slot_limits())?;
        validate::check_code_size(bytes, &self.config.compile)?;
        let validated = started.elapsed();

        let compile_started = Instant::now();
        let (compiler, component, from_cache) = self.best_code(sha256, bytes)?;
        let mut timings = CompileTimings {
            validate: validated,
            compile: compile_started.elapsed(),
            from_cache,
        };

        let check_started = Instant::now();
        let prepared = self
            .pre_instantiate(compiler, sha256, &component)
            .inspect_err(|_| {
                // A refused component leaves no compiled code behind.
                if !timings.from_cache {
                    self.forget(sha256);
                }
            })?;
        timings.validate += check_started.elapsed();
        if compiler.tier == Tier::Baseline {
            self.spool_and_queue_tier_up(&prepared, bytes);
        }
        Ok((prepared, timings))
    }

    /// The optimized code if the cache has it; otherwise baseline code,
    /// cached or compiled now; otherwise (not tiered, or a component the
    /// baseline compiler does not take) optimized code compiled now.
    fn best_code(
        &self,
        sha256: &str,
        bytes: &[u8],
    ) -> Result<(&Compiler, Component, bool), RuntimeError> {
        let optimized = &*self.optimized;
        if let Some(component) = self.load_artifact(optimized, sha256) {
            return Ok((optimized, component, true));
        }
        if let Some(baseline) = &self.baseline {
            if let Some(component) = self.load_artifact(baseline, sha256) {
                return Ok((baseline, component, true));
            }
            match self.compile_to(baseline, sha256, bytes) {
                Ok(component) => {
                    self.tier_up.count_baseline_compile();
                    return Ok((baseline, component, false));
                }
                // Past the bound with the fast compiler: the slow one
                // would be too.
                Err(e @ RuntimeError::Invalid(ValidationError::CompileTimeout(_))) => {
                    return Err(e);
                }
                // Winch refuses some proposals Cranelift takes (tail
                // calls, relaxed SIMD); an invalid component is refused
                // by Cranelift in the same words.
                Err(e) => tracing::debug!(
                    sha256,
                    "the baseline compiler refused the component; compiling optimized code: {e}"
                ),
            }
        }
        let component = self.compile_to(optimized, sha256, bytes)?;
        Ok((optimized, component, false))
    }

    /// Loads a component that was deployed before: from the cache when an
    /// artifact is there (the optimized one first), otherwise by compiling
    /// the bytes stored in `source` again. This is the start-up path, and
    /// the path back from scale to zero.
    pub fn load(
        &self,
        sha256: &str,
        source: &Path,
    ) -> Result<(Arc<PreparedComponent>, CompileTimings), RuntimeError> {
        if let Some(shared) = self.already_loaded(sha256) {
            return Ok((shared, CompileTimings::shared()));
        }
        for compiler in [Some(&*self.optimized), self.baseline.as_ref()]
            .into_iter()
            .flatten()
        {
            let Some(component) = self.load_artifact(compiler, sha256) else {
                continue;
            };
            let started = Instant::now();
            let prepared = self.pre_instantiate(compiler, sha256, &component)?;
            if compiler.tier == Tier::Baseline {
                self.queue_tier_up(&prepared, source.to_path_buf(), false);
            }
            let timings = CompileTimings {
                validate: started.elapsed(),
                compile: Duration::ZERO,
                from_cache: true,
            };
            return Ok((prepared, timings));
        }
        let bytes = std::fs::read(source).map_err(|e| RuntimeError::Io {
            action: "read component",
            path: source.to_path_buf(),
            source: e,
        })?;
        self.prepare(sha256, &bytes)
    }

    /// Removes the cached native code (of both tiers) of a component that
    /// is no longer deployed, and cancels its optimized compile. Best
    /// effort: a leftover artifact is only wasted disk.
    pub fn forget(&self, sha256: &str) {
        self.tier_up.forget(sha256, || {
            let artifacts = self.compilers().map(|c| self.artifact_path(c, sha256));
            for path in artifacts.chain([self.spool_path(sha256)]) {
                if let Err(e) = std::fs::remove_file(&path)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    tracing::warn!(path = %path.display(), "cannot remove compiled artifact: {e}");
                }
            }
        });
    }

    /// Compiles queued or running in the background, of components still
    /// deployed.
    pub fn tier_up_waiting(&self) -> usize {
        self.tier_up.waiting()
    }

    /// Queues the optimized compile of a component deployed from `bytes`,
    /// which are spooled next to the cache first: the queue holds paths,
    /// not megabytes. A spool that cannot be written leaves the component
    /// on its baseline code (a disk that cannot take it could not take the
    /// optimized artifact either).
    fn spool_and_queue_tier_up(&self, prepared: &Arc<PreparedComponent>, bytes: &[u8]) {
        let spool = self.spool_path(&prepared.sha256);
        match write_atomically(&spool, bytes) {
            Ok(()) => self.queue_tier_up(prepared, spool, true),
            Err(e) => {
                self.tier_up.count_failure();
                tracing::warn!(sha256 = %prepared.sha256, "the component keeps its baseline code: {e}");
            }
        }
    }

    fn queue_tier_up(&self, prepared: &Arc<PreparedComponent>, source: PathBuf, spooled: bool) {
        self.tier_up.submit(Job {
            sha256: prepared.sha256.clone(),
            source,
            spooled,
            artifact: self.artifact_path(&self.optimized, &prepared.sha256),
            compiler: self.optimized.clone(),
            target: Arc::downgrade(prepared),
        });
    }

    /// Where a deploy leaves a component's bytes for its optimized compile.
    fn spool_path(&self, sha256: &str) -> PathBuf {
        self.config
            .cache_dir
            .join(&self.optimized.hash)
            .join(format!("{sha256}.wasm"))
    }

    fn artifact_path(&self, compiler: &Compiler, sha256: &str) -> PathBuf {
        self.config
            .cache_dir
            .join(&compiler.hash)
            .join(format!("{sha256}.cwasm"))
    }

    fn load_artifact(&self, compiler: &Compiler, sha256: &str) -> Option<Component> {
        let path = self.artifact_path(compiler, sha256);
        if !path.exists() {
            return None;
        }
        match compiler.deserialize(&path) {
            Ok(component) => Some(component),
            Err(e) => {
                // A torn or foreign file: compile again rather than fail.
                tracing::warn!(path = %path.display(), "ignoring unusable compiled artifact: {e:#}");
                None
            }
        }
    }

    fn compile_to(
        &self,
        compiler: &Compiler,
        sha256: &str,
        bytes: &[u8],
    ) -> Result<Component, RuntimeError> {
        let artifact = self.artifact_path(compiler, sha256);
        let native = self.compile_bounded(&compiler.engine, bytes)?;
        write_atomically(&artifact, &native)?;
        compiler.deserialize(&artifact).map_err(|e| {
            // Not left for the next deploy of the same bytes to trip over.
            let _ = std::fs::remove_file(&artifact);
            if e.chain().any(|cause| cause.is::<std::io::Error>()) {
                RuntimeError::Io {
                    action: "load the compiled artifact",
                    path: artifact.clone(),
                    source: std::io::Error::other(format!("{e:#}")),
                }
            } else {
                // Compiled code of this engine loads unless the component
                // needs more than a pool slot holds (instance size, core
                // instances): the component's limit, not the node's fault.
                ValidationError::DoesNotFit(format!("{e:#}")).into()
            }
        })
    }

    /// Whether a compile is running, including one a deploy gave up
    /// waiting for.
    pub fn is_compiling(&self) -> bool {
        self.compiling.try_lock().is_err()
    }

    /// Compiles on the deploy pool, one component at a time, and waits
    /// at most the compile timeout for it (and as long again for a compile
    /// before it). A compile past the timeout cannot be stopped: it runs to
    /// its end and its result is dropped, never written to the cache.
    fn compile_bounded(&self, engine: &Engine, bytes: &[u8]) -> Result<Vec<u8>, RuntimeError> {
        let timeout = self.config.compile.timeout;
        let (tx, rx) = std::sync::mpsc::channel();
        let (engine, lock, pool) = (
            engine.clone(),
            self.compiling.clone(),
            self.compile_pool.clone(),
        );
        let bytes = bytes.to_vec();
        std::thread::Builder::new()
            .name("stratus-compile".into())
            .spawn(move || {
                let _one_at_a_time = lock.lock().unwrap_or_else(PoisonError::into_inner);
                if tx.send(None).is_err() {
                    return; // the deploy gave up waiting
                }
                let native = pool.install(|| engine.precompile_component(&bytes));
                let _ = tx.send(Some(native));
            })
            .map_err(|source| RuntimeError::Io {
                action: "start a compiler thread for",
                path: PathBuf::from("the component"),
                source,
            })?;
        let too_slow = || RuntimeError::from(ValidationError::CompileTimeout(timeout));
        // First the turn (after any compile before it), then the compile.
        rx.recv_timeout(timeout).map_err(|_| too_slow())?;
        match rx.recv_timeout(timeout) {
            Ok(Some(Ok(native))) => Ok(native),
            Ok(Some(Err(e))) => Err(refusal(format!("{e:#}")).into()),
            Ok(None) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(too_slow()),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(RuntimeError::Config(
                "the compiler thread stopped without an answer".into(),
            )),
        }
    }

    fn pre_instantiate(
        &self,
        compiler: &Compiler,
        sha256: &str,
        component: &Component,
    ) -> Result<Arc<PreparedComponent>, RuntimeError> {
        validate::check_world(&compiler.engine, component)?;
        let code = compiler.code(component)?;
        let imports = component
            .component_type()
            .imports(&compiler.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let prepared = Arc::new(PreparedComponent {
            code: ArcSwap::from_pointee(code),
            sha256: sha256.to_string(),
            imports,
        });
        let mut loaded = self.lock_loaded();
        loaded.retain(|_, weak| weak.strong_count() > 0);
        loaded.insert(sha256.to_string(), Arc::downgrade(&prepared));
        Ok(prepared)
    }

    /// The component with this hash if some function holds it already:
    /// functions deployed from the same bytes share one copy of the native
    /// code (and its memory images) instead of mapping it once each.
    fn already_loaded(&self, sha256: &str) -> Option<Arc<PreparedComponent>> {
        self.lock_loaded().get(sha256).and_then(Weak::upgrade)
    }

    fn lock_loaded(&self) -> MutexGuard<'_, HashMap<String, Weak<PreparedComponent>>> {
        // Only map lookups and inserts happen under the lock.
        self.loaded.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Compiler {
    fn deserialize(&self, path: &Path) -> wasmtime::Result<Component> {
        // SAFETY: the cache directory is private to the node and only ever
        // holds artifacts this engine configuration wrote (the path contains
        // the engine hash); wasmtime additionally checks the artifact header
        // for version and settings compatibility.
        #[allow(unsafe_code)]
        unsafe {
            Component::deserialize_file(&self.engine, path)
        }
    }

    /// The component's code pre-instantiated against this engine's linker.
    fn code(&self, component: &Component) -> Result<Code, RuntimeError> {
        let instance_pre = self
            .linker
            .instantiate_pre(component)
            .map_err(|e| ValidationError::Link(format!("{e:#}")))?;
        let pre =
            ProxyPre::new(instance_pre).map_err(|e| ValidationError::Link(format!("{e:#}")))?;
        Ok(Code {
            pre,
            engine: self.engine.clone(),
            tier: self.tier,
        })
    }

    /// Loads an artifact this compiler wrote and pre-instantiates it (the
    /// component was checked when its first code was).
    pub(crate) fn load_code(&self, artifact: &Path) -> Result<Code, RuntimeError> {
        let component = self.deserialize(artifact).map_err(|e| RuntimeError::Io {
            action: "load the compiled artifact",
            path: artifact.to_path_buf(),
            source: std::io::Error::other(format!("{e:#}")),
        })?;
        self.code(&component)
    }
}

/// Temp file + rename, so a crash mid-write never leaves a truncated
/// artifact under the final name.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), RuntimeError> {
    let io = |action, source| RuntimeError::Io {
        action,
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io("create the cache directory for", e))?;
    // Unique per write, so two deploys of one new component never write
    // into each other's temp file.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io("write", e)
    })?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io("rename into place", e)
    })
}

/// Why the compiler refused a component, for the user who uploaded it. The
/// engine does not enable component-model async (WASI 0.3), and its parser
/// words that refusal as a missing feature; said so, it is an answer.
fn refusal(error: String) -> ValidationError {
    // wasmparser's words for `stream`, `future`, async options and
    // builtins, and `error-context`, which WASI 0.3 brings with them.
    if error.contains("component model async") || error.contains("component model error-context") {
        ValidationError::ComponentModelAsync(error)
    } else {
        ValidationError::Malformed(error)
    }
}
