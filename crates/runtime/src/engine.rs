//! The node's wasmtime engines and the settings they are built from.
//!
//! One optimizing engine (Cranelift, with the instance pool) serves every
//! function once its code is compiled: compiled code, the pool and the
//! epoch counter are shared, which is what makes a per-request instance
//! cheap. A second, baseline engine (Winch) serves a new component for the
//! seconds its optimized code takes to compile ([`crate::tier`]).

use std::collections::HashMap;
use std::hash::Hasher;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};
use wasmtime::component::Linker;
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Strategy,
};

/// Bytes of each linear memory and async stack kept mapped between
/// instances (reset with `memset`, not `madvise`).
const KEEP_RESIDENT: usize = 1 << 20;
/// How many slots' excess memory is decommitted per syscall.
const DECOMMIT_BATCH: usize = 32;
/// What a pool slot holds per core module. These are wasmtime's defaults,
/// set explicitly because deploy checks components against them
/// ([`crate::validate::check_limits`]); a Rust std component's modules
/// define at most one table of a few hundred elements and one memory.
const TABLE_ELEMENTS: usize = 20_000;
const TABLES_PER_MODULE: u32 = 1;
const MEMORIES_PER_MODULE: u32 = 1;

use crate::capabilities::CapabilityStats;
use crate::compile::PreparedComponent;
use crate::compile_threads::{self, Priority};
use crate::error::RuntimeError;
use crate::host::InstanceState;
use crate::residency::ResidencyStats;
use crate::services::{InProcessServices, NodeOutbound};
use crate::tier::{Tier, TierStats, TierUp};

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
    /// Whether functions may reach loopback, private and link-local
    /// addresses through a host name `allowed_outbound` allows
    /// (`--outbound-allow-private`). Off, only a pattern naming such an IP
    /// address itself reaches it.
    pub outbound_allow_private: bool,
    /// The bytes of stdout and stderr one invocation may log together
    /// (`--log-max-per-invocation`); the rest is dropped with a marker.
    pub output_capacity: usize,
    /// What compiling one component may cost the node.
    pub compile: CompileLimits,
}

/// Bounds on compiling one component at deploy. Cranelift's time and memory
/// grow with the code it is given (a component of 400,000 functions took
/// 40 s and 1.7 GB), and a compile cannot be interrupted once started, so
/// the code is measured before compiling; the timeout bounds what the
/// measure misses, and one compile at a time, on threads below the
/// requests' priority, keeps deploys from starving the requests being
/// served.
#[derive(Debug, Clone, Copy)]
pub struct CompileLimits {
    /// Functions in all of a component's core modules together.
    pub max_functions: u64,
    /// Bytes of code in all of a component's core modules together.
    pub max_code_bytes: u64,
    /// How long a deploy waits for the compiler before refusing the
    /// component (the compile itself runs to its end in the background,
    /// and its result is thrown away).
    pub timeout: Duration,
    /// Whether a new component first serves baseline (Winch) code while
    /// its optimized code compiles in the background
    /// (`--no-tiered-compilation` turns it off: every deploy then waits
    /// for Cranelift).
    pub tiered: bool,
    /// Threads a deploy's compile runs on (`--compile-threads`; every core
    /// by default: they run below the requests' priority, see
    /// `compile_threads.rs`).
    pub threads: usize,
}

impl Default for CompileLimits {
    fn default() -> Self {
        CompileLimits {
            max_functions: 100_000,
            max_code_bytes: 128 << 20,
            timeout: Duration::from_secs(120),
            tiered: true,
            threads: crate::compile_threads::all_cores(),
        }
    }
}

impl RuntimeConfig {
    /// Defaults suited to one small node, caching under `cache_dir`.
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        RuntimeConfig {
            max_instances: 1000,
            max_memory: 4 << 30,
            epoch_tick: Duration::from_millis(5),
            cache_dir: cache_dir.into(),
            outbound_allow_private: false,
            output_capacity: crate::function::OUTPUT_CAPACITY,
            compile: CompileLimits::default(),
        }
    }
}

/// One engine and its linker, holding every host interface the node
/// provides. Code, pre-instances and stores of one engine are refused by
/// the other, so each tier has its own.
pub(crate) struct Compiler {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<InstanceState>,
    /// Part of the compile cache's path: artifacts of one engine's
    /// settings (and so of one tier) never meet the other's.
    pub(crate) hash: String,
    pub(crate) tier: Tier,
}

/// The wasmtime engines, and the epoch ticker. Cheap to share behind an
/// `Arc`.
pub struct Runtime {
    /// Cranelift, with the instance pool: what every function ends on.
    pub(crate) optimized: Arc<Compiler>,
    /// Winch, with a pool like the optimized engine's: compiles several
    /// times faster, runs up to 1.8× slower, which is fine for the seconds
    /// until the optimized code replaces it. `None` when not tiered.
    pub(crate) baseline: Option<Compiler>,
    pub(crate) config: RuntimeConfig,
    ticker_stop: Arc<AtomicBool>,
    /// The background compiles that replace baseline code.
    pub(crate) tier_up: TierUp,
    pub(crate) residency: ResidencyStats,
    /// Instances kept idle for reuse, across all functions.
    pub(crate) idle_instances: AtomicU32,
    /// Components in memory by hash, so identical ones are loaded once.
    pub(crate) loaded: Mutex<HashMap<String, Weak<PreparedComponent>>>,
    /// Held while compiling: one component at a time.
    pub(crate) compiling: Arc<Mutex<()>>,
    /// The threads a deploy's compile runs on.
    pub(crate) compile_pool: Arc<rayon::ThreadPool>,
    /// The node's side of outbound HTTP: the `*.svc` services functions may
    /// call and the address policy. Services
    /// are added after construction: what serves them (the event
    /// dispatcher, the gateway) is built on top of the runtime.
    services: ArcSwap<NodeOutbound>,
    /// What functions did with capabilities and outbound HTTP.
    pub(crate) capability_stats: Arc<CapabilityStats>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.config)
            .field("engine_hash", &self.engine_hash())
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
            .table_elements(TABLE_ELEMENTS)
            .max_tables_per_module(TABLES_PER_MODULE)
            .max_memories_per_module(MEMORIES_PER_MODULE)
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
        let optimized = Arc::new(Compiler::new(&wasm, Tier::Optimized)?);
        // The baseline engine has a pool of its own with the same limits:
        // a component is then refused at deploy by the same slot checks as
        // its optimized code would be, rather than serving on baseline code
        // its optimized code can never replace. The pools together reserve
        // twice the address space (never committed); admission bounds the
        // instances of both together by one pool's slots.
        let baseline = if config.compile.tiered {
            let mut winch = wasm.clone();
            winch.strategy(Strategy::Winch);
            Some(Compiler::new(&winch, Tier::Baseline)?)
        } else {
            None
        };

        let ticker_stop = Arc::new(AtomicBool::new(false));
        let engines = std::iter::once(&*optimized)
            .chain(&baseline)
            .map(|c| c.engine.clone());
        spawn_epoch_ticker(engines, config.epoch_tick, ticker_stop.clone())?;
        let tier_up = TierUp::start()?;
        let compile_pool = Arc::new(compile_threads::pool(
            "stratus-compile",
            config.compile.threads,
            Priority::Deploy,
        )?);

        let outbound = NodeOutbound::new(config.outbound_allow_private);
        Ok(Runtime {
            optimized,
            baseline,
            config,
            ticker_stop,
            tier_up,
            residency: ResidencyStats::default(),
            idle_instances: AtomicU32::new(0),
            loaded: Mutex::default(),
            compiling: Arc::default(),
            compile_pool,
            services: ArcSwap::from_pointee(outbound),
            capability_stats: Arc::default(),
        })
    }

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

    /// A short hex digest of everything that makes a precompiled artifact
    /// loadable by the optimizing engine (wasmtime version, target,
    /// settings).
    pub fn engine_hash(&self) -> &str {
        &self.optimized.hash
    }

    /// The compilers, baseline first when there is one.
    pub(crate) fn compilers(&self) -> impl Iterator<Item = &Compiler> {
        self.baseline
            .iter()
            .chain(std::iter::once(&*self.optimized))
    }

    /// How many baseline compiles and tier-ups there have been.
    pub fn tier_stats(&self) -> &TierStats {
        self.tier_up.stats()
    }

    /// Cold starts, warm starts and evictions so far.
    pub fn residency(&self) -> &ResidencyStats {
        &self.residency
    }

    /// Adds a node service every function reaches at `http://<host>/`
    /// (e.g. `queue.svc`), without a grant. It answers that host even when
    /// the caller's app has a function of the same name. Instances created
    /// from now on can call it.
    pub fn add_service(&self, host: &str, service: Arc<dyn InProcessServices>) {
        self.services
            .rcu(|outbound| outbound.with_service(host, service.clone()));
    }

    /// Sets what answers every other `*.svc` host: calls to the functions
    /// of the caller's app, granted by its `allowed_outbound`. Without it,
    /// such requests are denied like any other outbound request.
    pub fn set_function_calls(&self, service: Arc<dyn InProcessServices>) {
        self.services
            .rcu(|outbound| outbound.with_function_calls(service.clone()));
    }

    /// What every new instance's outbound hooks share: the services and
    /// the address policy.
    pub(crate) fn services(&self) -> Arc<NodeOutbound> {
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

    /// What one pool slot holds per core module.
    pub(crate) fn slot_limits(&self) -> crate::validate::SlotLimits {
        crate::validate::SlotLimits {
            table_elements: TABLE_ELEMENTS as u64,
            tables_per_module: TABLES_PER_MODULE,
            memories_per_module: MEMORIES_PER_MODULE,
            memory_bytes: self.config.max_memory,
        }
    }
}

impl Compiler {
    fn new(config: &Config, tier: Tier) -> Result<Compiler, RuntimeError> {
        let engine = Engine::new(config)
            .map_err(|e| RuntimeError::Config(format!("{} engine: {e:#}", tier.name())))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker))
            .and_then(|()| crate::capabilities::add_to_linker(&mut linker))
            .map_err(|e| RuntimeError::Config(format!("linking host interfaces: {e:#}")))?;
        Ok(Compiler {
            hash: engine_hash(&engine),
            engine,
            linker,
            tier,
        })
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
/// when every runtime worker is busy executing guest code. It ticks every
/// engine: a guest of either tier must time out and yield alike.
fn spawn_epoch_ticker(
    engines: impl Iterator<Item = Engine>,
    tick: Duration,
    stop: Arc<AtomicBool>,
) -> Result<(), RuntimeError> {
    let weak: Vec<_> = engines.map(|engine| engine.weak()).collect();
    std::thread::Builder::new()
        .name("stratus-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                for engine in &weak {
                    match engine.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => return,
                    }
                }
            }
        })
        .map(|_| ())
        .map_err(|e| RuntimeError::Config(format!("cannot start the epoch thread: {e}")))
}
