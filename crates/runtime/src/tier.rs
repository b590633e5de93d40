//! Tiered compilation: a new component serves as soon as Winch has compiled
//! it, and Cranelift's optimized code replaces that code in the background.
//!
//! Cranelift takes seconds on a large component (≈ 14 s for an 18 MB
//! componentize-py function on one core) where Winch takes a fraction
//! (≈ 2.3 s), and its code runs up to 1.8× faster. So a deploy compiles the
//! baseline code, serves with it, and queues the optimized compile here; when
//! it is done the component's code is swapped in one atomic store: a request
//! already running finishes on the code it started with, the next one runs
//! the new code, and no request waits for the switch.
//!
//! The queue is one thread compiling on a rayon pool of its own (one
//! thread, at the lowest priority: see `compile_threads.rs`), so a tier-up
//! never holds up a deploy's baseline compile, which runs on the deploy
//! pool, and never takes more than one core, and only a core the requests
//! being served leave idle. A component undeployed (its artifacts forgotten)
//! before its turn, or while it compiles, is not compiled, or its result is
//! not written. One scaled to zero before its turn is skipped (its next
//! load finds only baseline code and queues it again); one scaled to zero
//! while it compiles is still cached, and its next load finds the
//! optimized code.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Instant;

use crate::compile::PreparedComponent;
use crate::compile_threads::{self, Priority};
use crate::engine::Compiler;
use crate::error::RuntimeError;

/// Which compiler produced the code a function runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    /// Winch: compiled fast, served while the optimized code compiles.
    Baseline,
    /// Cranelift: what every function ends on.
    Optimized,
}

impl Tier {
    /// The tier's name in the API, the CLI and `/metrics`.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Baseline => "baseline",
            Tier::Optimized => "optimized",
        }
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Counters of the tiers, node-wide.
#[derive(Debug, Default)]
pub struct TierStats {
    /// Components compiled with the baseline compiler at deploy or load.
    pub baseline_compiles: AtomicU64,
    /// Components whose optimized code replaced their baseline code.
    pub tier_ups: AtomicU64,
    /// Optimized compiles that failed, or could not be queued (the
    /// component keeps its baseline code until it is loaded again).
    pub tier_up_failures: AtomicU64,
}

/// One optimized compile to do.
pub(crate) struct Job {
    pub(crate) sha256: String,
    /// The component's bytes: the artifact store's copy (after a restart
    /// or scale to zero), or a copy the deploy spooled next to the cache,
    /// so a queue of large components holds no bytes in memory.
    pub(crate) source: PathBuf,
    /// Whether `source` is a spool copy, removed once the job is done.
    pub(crate) spooled: bool,
    /// Where the optimized artifact goes.
    pub(crate) artifact: PathBuf,
    pub(crate) compiler: Arc<Compiler>,
    /// The component to switch, if it is still in memory.
    pub(crate) target: Weak<PreparedComponent>,
}

/// Components with a compile queued or running, each with the number of
/// the job that owns it: a component forgotten and deployed again while its
/// first job waits gets a new job, and the first one, finding another
/// number, neither writes nor removes anything.
type Pending = Mutex<HashMap<String, u64>>;

/// The background compile queue.
pub(crate) struct TierUp {
    queue: std::sync::mpsc::Sender<(u64, Job)>,
    /// `forget` removes a component, which cancels its job; held while an
    /// artifact is written, so a forgotten component's artifact is never
    /// written after it was removed.
    pending: Arc<Pending>,
    jobs: AtomicU64,
    stats: Arc<TierStats>,
}

impl TierUp {
    pub(crate) fn start() -> Result<TierUp, RuntimeError> {
        let (queue, jobs) = std::sync::mpsc::channel::<(u64, Job)>();
        let pending: Arc<Pending> = Arc::default();
        let stats: Arc<TierStats> = Arc::default();
        let pool = compile_threads::pool("stratus-tier-up", 1, Priority::Background)?;
        let (worker_pending, worker_stats) = (pending.clone(), stats.clone());
        std::thread::Builder::new()
            .name("stratus-tier-up".into())
            .spawn(move || {
                // Ends when the runtime, and with it the sender, is dropped.
                for (number, job) in jobs {
                    pool.install(|| run(number, job, &worker_pending, &worker_stats));
                }
            })
            .map_err(|e| RuntimeError::Config(format!("cannot start the tier-up thread: {e}")))?;
        Ok(TierUp {
            queue,
            pending,
            jobs: AtomicU64::new(0),
            stats,
        })
    }

    pub(crate) fn stats(&self) -> &TierStats {
        &self.stats
    }

    /// Compiles queued or running, of components still deployed.
    pub(crate) fn waiting(&self) -> usize {
        lock(&self.pending).len()
    }

    pub(crate) fn count_baseline_compile(&self) {
        self.stats.baseline_compiles.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_failure(&self) {
        self.stats.tier_up_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Queues the optimized compile of a component, unless one is queued.
    pub(crate) fn submit(&self, job: Job) {
        let number = self.jobs.fetch_add(1, Ordering::Relaxed);
        {
            let mut pending = lock(&self.pending);
            if pending.contains_key(&job.sha256) {
                return;
            }
            pending.insert(job.sha256.clone(), number);
        }
        let sha256 = job.sha256.clone();
        if self.queue.send((number, job)).is_err() {
            lock(&self.pending).remove(&sha256);
        }
    }

    /// Cancels a component's queued or running compile, and runs `remove`
    /// (which deletes its artifacts and spool) while no compile can write.
    pub(crate) fn forget(&self, sha256: &str, remove: impl FnOnce()) {
        let mut pending = lock(&self.pending);
        pending.remove(sha256);
        remove();
    }
}

fn lock(pending: &Pending) -> MutexGuard<'_, HashMap<String, u64>> {
    // Only map lookups, inserts, removals and one file write happen under
    // the lock.
    pending.lock().unwrap_or_else(PoisonError::into_inner)
}

fn run(number: u64, job: Job, pending: &Pending, stats: &TierStats) {
    let sha256 = job.sha256.clone();
    let (spool, spooled) = (job.source.clone(), job.spooled);
    let started = Instant::now();
    let outcome = compile(number, job, pending);
    {
        // Done with it, unless a newer job owns the component (and the
        // spool, written again under the same name).
        let mut pending = lock(pending);
        if pending.get(&sha256) == Some(&number) {
            pending.remove(&sha256);
            if spooled {
                let _ = std::fs::remove_file(&spool);
            }
        }
    }
    match outcome {
        Ok(Some(switched)) => {
            if switched {
                stats.tier_ups.fetch_add(1, Ordering::Relaxed);
            }
            tracing::info!(
                sha256 = %sha256,
                took_ms = started.elapsed().as_millis() as u64,
                switched,
                "optimized code compiled"
            );
        }
        Ok(None) => tracing::debug!(sha256 = %sha256, "optimized compile cancelled"),
        Err(error) => {
            stats.tier_up_failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(sha256 = %sha256, "the optimized compile failed; the component keeps its baseline code: {error}");
        }
    }
}

/// Compiles, writes and loads the optimized code, and switches the
/// component to it if it is still in memory. `None` when cancelled.
fn compile(number: u64, job: Job, pending: &Pending) -> Result<Option<bool>, RuntimeError> {
    let owned = |pending: &HashMap<String, u64>| pending.get(&job.sha256) == Some(&number);
    // Neither deployed any more nor in memory: nothing would use the code
    // soon, and its next load queues it again.
    if !owned(&lock(pending)) || job.target.strong_count() == 0 {
        return Ok(None);
    }
    let bytes = std::fs::read(&job.source).map_err(|source| RuntimeError::Io {
        action: "read component",
        path: job.source.clone(),
        source,
    })?;
    let bytes = crate::adapt::to_component(&bytes)?;
    let native = job
        .compiler
        .engine
        .precompile_component(&bytes)
        .map_err(|e| RuntimeError::Config(format!("{e:#}")))?;
    drop(bytes);
    {
        let pending = lock(pending);
        if !owned(&pending) {
            return Ok(None);
        }
        crate::compile::write_atomically(&job.artifact, &native)?;
    }
    let Some(target) = job.target.upgrade() else {
        return Ok(Some(false));
    };
    let code = job.compiler.load_code(&job.artifact)?;
    target.switch(code);
    Ok(Some(true))
}
