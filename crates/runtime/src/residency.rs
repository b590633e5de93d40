//! Scale to zero: a function's compiled code stays in memory only while it
//! is used.
//!
//! After a deploy the code is resident; a function idle for longer than the
//! node's TTL has it dropped ([`Resident::evict_if_idle`]), and the next
//! request loads it again from the precompiled artifact on disk — a cold
//! start, counted apart from warm ones. `min_warm` functions are never
//! evicted. Requests in flight hold their own reference, so eviction never
//! disturbs them.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use crate::compile::PreparedComponent;
use crate::engine::Runtime;
use crate::error::InvokeError;

/// Counters of how requests found their function's code.
#[derive(Debug, Default)]
pub struct ResidencyStats {
    /// Requests whose function's code had to be loaded first.
    pub cold_starts: AtomicU64,
    /// Requests whose function's code was in memory.
    pub warm_starts: AtomicU64,
    /// Times a function's idle code was dropped.
    pub evictions: AtomicU64,
    /// Requests served by an instance an earlier request used (`reuse`).
    pub reused: AtomicU64,
    /// Times an instance was kept idle for reuse after a request.
    pub reused_kept: AtomicU64,
}

/// The compiled code of one function, present or evicted.
pub(crate) struct Resident {
    code: ArcSwapOption<PreparedComponent>,
    sha256: String,
    /// The component's bytes, compiled again if the artifact is gone.
    source: PathBuf,
    keep_warm: bool,
    /// Milliseconds since `started` at the last use.
    last_used: AtomicU64,
    started: Instant,
    /// One reload at a time; others wait for it rather than repeat it.
    reloading: tokio::sync::Mutex<()>,
}

impl Resident {
    pub(crate) fn new(code: Arc<PreparedComponent>, source: PathBuf, keep_warm: bool) -> Resident {
        Resident {
            sha256: code.sha256().to_string(),
            code: ArcSwapOption::new(Some(code)),
            source,
            keep_warm,
            last_used: AtomicU64::new(0),
            started: Instant::now(),
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn sha256(&self) -> &str {
        &self.sha256
    }

    pub(crate) fn is_resident(&self) -> bool {
        self.code.load().is_some()
    }

    /// The tier of the code in memory; `None` when scaled to zero.
    pub(crate) fn tier(&self) -> Option<crate::Tier> {
        self.code.load().as_ref().map(|code| code.tier())
    }

    pub(crate) fn keeps_warm(&self) -> bool {
        self.keep_warm
    }

    /// Since the last request began, or since the function was loaded.
    pub(crate) fn idle_for(&self) -> Duration {
        let now = self.started.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_used.load(Ordering::Relaxed)))
    }

    fn touch(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        self.last_used.store(now, Ordering::Relaxed);
    }

    /// The code, loading it first when it was evicted.
    pub(crate) async fn get(
        &self,
        runtime: &Arc<Runtime>,
    ) -> Result<(Arc<PreparedComponent>, bool), InvokeError> {
        self.touch();
        if let Some(code) = self.warm(runtime) {
            return Ok((code, false));
        }
        let _one_at_a_time = self.reloading.lock().await;
        // Another request may have reloaded it while this one waited.
        if let Some(code) = self.warm(runtime) {
            return Ok((code, false));
        }
        let (runtime_ref, sha256, source) =
            (runtime.clone(), self.sha256.clone(), self.source.clone());
        let loaded = tokio::task::spawn_blocking(move || runtime_ref.load(&sha256, &source))
            .await
            .map_err(|e| InvokeError::Internal(format!("reloading the function's code: {e}")))?
            .map_err(|e| InvokeError::Internal(format!("reloading the function's code: {e}")))?;
        let code = loaded.0;
        self.code.store(Some(code.clone()));
        runtime
            .residency
            .cold_starts
            .fetch_add(1, Ordering::Relaxed);
        Ok((code, true))
    }

    /// Marks the function as used without fetching its code (a reused
    /// instance needs none), counted as a warm start.
    pub(crate) fn touch_warm(&self, runtime: &Runtime) {
        self.touch();
        runtime
            .residency
            .warm_starts
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The resident code, counted as a warm start.
    fn warm(&self, runtime: &Runtime) -> Option<Arc<PreparedComponent>> {
        let code = self.code.load_full()?;
        runtime
            .residency
            .warm_starts
            .fetch_add(1, Ordering::Relaxed);
        Some(code)
    }

    /// Drops the code if unused for `ttl` (and not `min_warm`).
    pub(crate) fn evict_if_idle(&self, runtime: &Runtime, ttl: Duration) -> bool {
        if self.keep_warm || !self.is_resident() {
            return false;
        }
        let now = self.started.elapsed().as_millis() as u64;
        let idle = now.saturating_sub(self.last_used.load(Ordering::Relaxed));
        if idle < ttl.as_millis() as u64 {
            return false;
        }
        self.code.store(None);
        runtime.residency.evictions.fetch_add(1, Ordering::Relaxed);
        true
    }
}
