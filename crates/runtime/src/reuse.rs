//! Opt-in instance reuse (`reuse = N` in the manifest).
//!
//! A fresh instance per request is the default because it isolates every
//! request from every other: nothing one request leaves in memory, globals
//! or open handles can be seen by the next. Reuse trades that isolation
//! between requests *of the same function* for speed — the instance, its
//! memory and its host state serve up to N requests one after another
//! (never two at once). An instance is discarded after any trap, timeout or
//! refused memory growth, and after its N-th request.
//!
//! Idle instances occupy slots of the instance pool, so they may only fill
//! a reserve the gateway's admission does not hand out (a tenth of the
//! pool): an idle instance can never make a new request fail for want of a
//! slot.
//!
//! Not every guest can serve a second request on one instance: a
//! componentize-js (StarlingMonkey) guest returns from its second `handle`
//! without answering. An instance that returns with its request unfinished
//! is dropped, so its client is answered at once instead of waiting on an
//! idle instance; if that instance had served before, the function stops
//! reusing instances, since the next reuse would fail the same way.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::Proxy;

use crate::engine::Runtime;
use crate::host::InstanceState;

/// An instance between two requests.
pub(crate) struct Idle {
    pub(crate) store: Store<InstanceState>,
    pub(crate) proxy: Proxy,
    /// Requests it has served.
    pub(crate) served: u32,
    /// The code it runs, so baseline code is not reused after a tier-up.
    pub(crate) tier: crate::Tier,
}

/// The idle instances of one function.
pub(crate) struct IdleInstances {
    runtime: Arc<Runtime>,
    idle: Mutex<Vec<Idle>>,
    /// `reuse = N`: the most requests one instance serves.
    pub(crate) max_uses: u32,
    /// Set once a reused instance failed to answer (see the module's doc).
    given_up: AtomicBool,
}

impl IdleInstances {
    pub(crate) fn new(runtime: Arc<Runtime>, max_uses: u32) -> IdleInstances {
        IdleInstances {
            runtime,
            idle: Mutex::new(Vec::new()),
            max_uses,
            given_up: AtomicBool::new(false),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.max_uses > 1 && !self.given_up.load(Ordering::Relaxed)
    }

    /// Stops reusing instances of this function and drops the idle ones;
    /// true the first time, so the caller says so once.
    pub(crate) fn give_up(&self) -> bool {
        let first = !self.given_up.swap(true, Ordering::Relaxed);
        self.clear();
        first
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Idle>> {
        // Only pushes and pops happen under the lock.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The most recently used idle instance (its memory is the warmest).
    pub(crate) fn take(&self) -> Option<Idle> {
        let idle = self.lock().pop()?;
        self.runtime.idle_instances.fetch_sub(1, Ordering::Relaxed);
        Some(idle)
    }

    /// Keeps an instance that finished a request cleanly for the next one,
    /// unless it has served its N requests or the reserve is full.
    pub(crate) fn put(&self, idle: Idle) {
        if idle.served >= self.max_uses || !self.enabled() || !self.runtime.reserve_idle_slot() {
            return;
        }
        self.lock().push(idle);
        // Counted once it can be taken: a reader of the counter may rely
        // on the instance being there.
        self.runtime
            .residency
            .reused_kept
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Drops every idle instance (scale to zero); returns how many.
    pub(crate) fn clear(&self) -> usize {
        let drained = std::mem::take(&mut *self.lock());
        self.runtime
            .idle_instances
            .fetch_sub(drained.len() as u32, Ordering::Relaxed);
        drained.len()
    }
}

impl Drop for IdleInstances {
    fn drop(&mut self) {
        self.clear();
    }
}
