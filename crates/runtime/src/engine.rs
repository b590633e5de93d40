//! The node's single wasmtime engine and the settings it is built from.
//!
//! One engine serves every function: compiled code, the instance pool and the
//! epoch counter are shared, which is what makes a per-request instance cheap.

use std::collections::HashMap;
use std::hash::Hasher;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};
use wasmtime::component::Linker;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Bytes of each linear memory and async stack kept mapped between
/// instances (reset with `memset`, not `madvise`).
const KEEP_RESIDENT: usize = 1 << 20;
/// How many slots' excess memory is decommitted per syscall.
const DECOMMIT_BATCH: usize = 32;

use crate::capabilities::CapabilityStats;
use crate::compile::PreparedComponent;
use crate::error::RuntimeError;
use crate::host::InstanceState;
use crate::residency::ResidencyStats;
use crate::services::InProcessServices;

/// Settings that shape the engine. They are fixed for the life of a node;
/// changing any of them changes [`Runtime::engine_hash`] and therefore the
/// compile cache key.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// How many instances may exist at once across all functions. Each slot
    /// reserves virtual address space for one linear memory, a table and an
    /// async stack, so this is the node's hard concurrency ceiling.
    pub max_instances: u32,
    /// The largest linear memory any function may ask for (its `memory` key).
    pub max_memory: u64,
    /// How often the epoch advances. Timeouts are checked, and long-running
    /// guests yield to other requests, once per tick.
    pub epoch_tick: Duration,
    /// Where precompiled artifacts are cached.
    pub cache_dir: PathBuf,
}

impl RuntimeConfig {
    /// Defaults suited to one small node, caching under `cache_dir`.
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        RuntimeConfig {
            max_instances: 1000,
            max_memory: 4 << 30,
            epoch_tick: Duration::from_millis(5),
            cache_dir: cache_dir.into(),
        }
    }
}

/// The wasmtime engine, the linker holding every host interface the node
/// provides, and the epoch ticker. Cheap to share behind an `Arc`.
pub struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<InstanceState>,
    pub(crate) config: RuntimeConfig,
    engine_hash: String,
    ticker_stop: Arc<AtomicBool>,
    pub(crate) residency: ResidencyStats,
    /// Instances kept idle for reuse, across all functions.
    pub(crate) idle_instances: AtomicU32,
    /// Components in memory by hash, so identical ones are loaded once.
    pub(crate) loaded: Mutex<HashMap<String, Weak<PreparedComponent>>>,
    /// The `*.svc` services functions may call, in the order they are
    /// asked. Added after construction: what serves them (the event
    /// dispatcher, the gateway) is built on top of the runtime.
    services: ArcSwap<Vec<Arc<dyn InProcessServices>>>,
    /// What functions did with capabilities and outbound HTTP.
    pub(crate) capability_stats: Arc<CapabilityStats>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.config)
            .field("engine_hash", &self.engine_hash)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Builds the engine and linker and starts the epoch ticker thread.
    pub fn new(config: RuntimeConfig) -> Result<Runtime, RuntimeError> {
        let max_memory = usize::try_from(config.max_memory)
            .map_err(|_| RuntimeError::Config("max memory does not fit this platform".into()))?;
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(config.max_instances)
            // A Rust std component has a handful of core instances, memories
            // and tables; size the pool so `max_instances` components fit.
            .total_core_instances(config.max_instances.saturating_mul(4))
            .total_memories(config.max_instances.saturating_mul(2))
            .total_tables(config.max_instances.saturating_mul(2))
            .total_stacks(config.max_instances)
            .max_memory_size(max_memory)
            // Reset a slot's memory by zeroing the pages the last instance
            // dirtied (found with the PAGEMAP_SCAN ioctl on Linux 6.7+)
            // instead of unmapping them: the next request then takes no
            // page faults on memory that small functions touch every time.
            .pagemap_scan(Enabled::Auto)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(64 << 10)
            .async_stack_keep_resident(KEEP_RESIDENT)
            // Decommit memory beyond what is kept resident in batches: one
            // syscall for many slots rather than one per request.
            .decommit_batch_size(DECOMMIT_BATCH);

        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .memory_init_cow(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wasm).map_err(|e| RuntimeError::Config(format!("{e:#}")))?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker))
            .and_then(|()| crate::capabilities::add_to_linker(&mut linker))
            .map_err(|e| RuntimeError::Config(format!("linking host interfaces: {e:#}")))?;

        let engine_hash = engine_hash(&engine);
        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_epoch_ticker(&engine, config.epoch_tick, ticker_stop.clone())?;

        Ok(Runtime {
            engine,
            linker,
            config,
            engine_hash,
            ticker_stop,
            residency: ResidencyStats::default(),
            idle_instances: AtomicU32::new(0),
            loaded: Mutex::default(),
            services: ArcSwap::default(),
            capability_stats: Arc::default(),
        })
    }

    /// A short hex digest of everything that makes a precompiled artifact
    /// loadable by this engine (wasmtime version, target, settings).
    /// Pool slots kept for idle reusable instances (`reuse`): a tenth.
    pub fn idle_reserve(&self) -> u32 {
        self.config.max_instances / 10
    }

    /// Pool slots that requests in flight may take: the pool minus the
    /// reserve for idle instances, so admission never over-commits.
    pub fn request_slots(&self) -> u32 {
        self.config.max_instances - self.idle_reserve()
    }

    /// Takes one slot of the idle reserve, if any is free.
    pub(crate) fn reserve_idle_slot(&self) -> bool {
        let cap = self.idle_reserve();
        self.idle_instances
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < cap).then_some(n + 1)
            })
            .is_ok()
    }

    pub fn engine_hash(&self) -> &str {
        &self.engine_hash
    }

    /// Cold starts, warm starts and evictions so far.
    pub fn residency(&self) -> &ResidencyStats {
        &self.residency
    }

    /// Adds a service functions reach at `http://<name>.svc/`. Services
    /// are asked in the order they were added, so a catch-all (calls to
    /// other functions) goes last. Instances created from now on can call
    /// it; without a service, such requests are denied like any other
    /// outbound request.
    pub fn add_service(&self, service: Arc<dyn InProcessServices>) {
        self.services.rcu(|services| {
            let mut services = Vec::clone(services);
            services.push(service.clone());
            services
        });
    }

    pub(crate) fn services(&self) -> Arc<Vec<Arc<dyn InProcessServices>>> {
        self.services.load_full()
    }

    /// Key-value, secret and outbound counters, node-wide.
    pub fn capability_stats(&self) -> &CapabilityStats {
        &self.capability_stats
    }

    /// The settings the runtime was built with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// Feeds wasmtime's `Hash`-based compatibility value into SHA-256 so the key
/// is stable across processes (std's `DefaultHasher` makes no such promise).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

fn engine_hash(engine: &Engine) -> String {
    use std::hash::Hash;
    let mut hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(&hasher.0.finalize()[..8])
}

/// A plain thread rather than a tokio task: the ticker must keep running even
/// when every runtime worker is busy executing guest code.
fn spawn_epoch_ticker(
    engine: &Engine,
    tick: Duration,
    stop: Arc<AtomicBool>,
) -> Result<(), RuntimeError> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("stratus-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })
        .map(|_| ())
        .map_err(|e| RuntimeError::Config(format!("cannot start the epoch thread: {e}")))
}
