//! One deployed function and the execution of one request against it.
//!
//! Mirrors `wasmtime serve`: a fresh `Store` and instance per request from a
//! shared `ProxyPre` (or, opted into with `reuse`, an idle instance), the
//! handler run in its own task so the response can stream after the headers
//! are sent. On top of that it enforces the
//! function's limits and classifies every failure so the gateway can answer
//! with the right status instead of dropping the connection.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use wasmtime::component::Resource;
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::bindings::{Proxy, ProxyPre};
use wasmtime_wasi_http::p2::types::{HostIncomingRequest, HostResponseOutparam};

use crate::capabilities::Grants;
use crate::compile::{Code, PreparedComponent};
use crate::engine::Runtime;
use crate::error::InvokeError;
use crate::host::{InstanceState, Unfinished};
use crate::meter::Meter;
use crate::residency::Resident;
use crate::reuse::{Idle, IdleInstances};
use crate::services::{FunctionIdentity, OutboundHooks, OutboundLimits};
use crate::tier::Tier;

/// The body type of a function's response: streamed from the guest.
pub type ResponseBody = wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// The per-function limits a request runs under.
#[derive(Debug, Clone, Copy)]
pub struct FunctionLimits {
    /// Linear memory cap in bytes (manifest `memory`).
    pub memory: u64,
    /// Wall-clock limit of one invocation (manifest `timeout`).
    pub timeout: Duration,
    /// Outbound HTTP per invocation (manifest `max_outbound_requests`,
    /// `max_outbound_bytes`, `outbound_timeout`).
    pub outbound: OutboundLimits,
}

/// How a function runs, from its manifest entry.
#[derive(Debug, Clone)]
pub struct FunctionOptions {
    /// Which function this is, as in-process services see the caller.
    pub identity: FunctionIdentity,
    /// Where its outbound HTTP may go (manifest `allowed_outbound`).
    pub allowed_outbound: Vec<stratus_manifest::OutboundRule>,
    /// Key-value buckets, config and secrets it may use.
    pub grants: Grants,
    pub limits: FunctionLimits,
    /// The function's environment (manifest `env`).
    pub env: Vec<(String, String)>,
    /// Keep the compiled code resident while idle (manifest `min_warm`).
    pub min_warm: bool,
    /// Requests one instance may serve in a row (manifest `reuse`); 0 or 1
    /// means a fresh instance per request.
    pub reuse: u32,
    /// Where the component's bytes are, to compile again should the cached
    /// artifact be gone when the function comes back from idle.
    pub source: PathBuf,
}

/// A deployed function of one app version, ready to serve requests.
pub struct Function {
    runtime: Arc<Runtime>,
    code: Resident,
    limits: FunctionLimits,
    env: Vec<(String, String)>,
    idle: Arc<IdleInstances>,
    identity: Arc<FunctionIdentity>,
    allowed_outbound: Arc<[stratus_manifest::OutboundRule]>,
    grants: Arc<Grants>,
}

impl std::fmt::Debug for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Function")
            .field("identity", &self.identity)
            .field("component", &self.code.sha256())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// What the gateway learns about an invocation when the response is handed
/// over: the makings of its cost receipt. (The full account, which waits
/// for the guest to finish, arrives through the [`Meter`].)
#[derive(Debug, Clone, Copy, Default)]
pub struct Invocation {
    /// Time to load the code if needed, create the store and instantiate.
    pub instantiate: Duration,
    /// Time from instantiation until the guest handed over its response.
    pub execution: Duration,
    /// Peak linear memory of the instance so far, in bytes.
    pub peak_memory: u64,
}

/// The bytes each invocation may write to stdout and stderr together,
/// unless the node is configured otherwise.
pub const OUTPUT_CAPACITY: usize = 64 * 1024;

impl Function {
    pub fn new(
        runtime: Arc<Runtime>,
        component: Arc<PreparedComponent>,
        options: FunctionOptions,
    ) -> Function {
        Function {
            idle: Arc::new(IdleInstances::new(runtime.clone(), options.reuse)),
            runtime,
            code: Resident::new(component, options.source, options.min_warm),
            limits: options.limits,
            env: options.env,
            identity: Arc::new(options.identity),
            allowed_outbound: options.allowed_outbound.into(),
            grants: Arc::new(options.grants),
        }
    }

    pub fn limits(&self) -> &FunctionLimits {
        &self.limits
    }

    /// The SHA-256 of the function's component.
    pub fn sha256(&self) -> &str {
        self.code.sha256()
    }

    /// Whether the compiled code is in memory (not scaled to zero).
    pub fn is_resident(&self) -> bool {
        self.code.is_resident()
    }

    /// The tier of the code it serves with; `None` when scaled to zero.
    pub fn tier(&self) -> Option<crate::Tier> {
        self.code.tier()
    }

    /// Whether the function never scales to zero (manifest `min_warm`).
    pub fn keeps_warm(&self) -> bool {
        self.code.keeps_warm()
    }

    /// How long since a request last began (or the code was loaded): what
    /// scale to zero compares with `--idle-ttl`.
    pub fn idle_for(&self) -> Duration {
        self.code.idle_for()
    }

    /// Drops the compiled code, and any idle instances, if the function has
    /// been idle for `ttl`.
    pub fn evict_if_idle(&self, ttl: Duration) -> bool {
        let evicted = self.code.evict_if_idle(&self.runtime, ttl);
        if evicted {
            self.idle.clear();
        }
        evicted
    }

    /// Serves one request: in a fresh instance, or with `reuse`, in an idle
    /// one if there is one. The returned response may still be streaming its
    /// body from the guest; the guest's task ends at the latest when the
    /// function's timeout expires. `meter` is filled in as the invocation
    /// runs and reports when both the guest and the response are done.
    ///
    /// `permits` (the caller's admission) are dropped when the guest's task
    /// ends, not when the response has been sent: a client that reads
    /// slowly, or not at all, holds the response's bounded buffer but no
    /// instance and no capacity past the function's timeout.
    pub async fn handle<B, P>(
        &self,
        request: hyper::Request<B>,
        meter: &Arc<Meter>,
        permits: P,
    ) -> Result<(hyper::Response<ResponseBody>, Invocation), InvokeError>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
        P: Send + 'static,
    {
        let started = Instant::now();
        let deadline = started + self.limits.timeout;
        // An instance of baseline code is not reused once the optimized
        // code has replaced it.
        let idle = self
            .idle
            .take()
            .filter(|idle| idle.tier == Tier::Optimized || self.code.tier() == Some(idle.tier));
        let (mut store, instance, tier) = match idle {
            Some(idle) => {
                self.code.touch_warm(&self.runtime);
                self.runtime
                    .residency
                    .reused
                    .fetch_add(1, Ordering::Relaxed);
                meter.set_reused();
                (
                    idle.store,
                    Instance::Reused(idle.proxy, idle.served),
                    idle.tier,
                )
            }
            None => {
                let (component, cold) = self.code.get(&self.runtime).await?;
                if cold {
                    meter.set_cold();
                }
                let code = component.code();
                (
                    self.new_store(&code),
                    Instance::Fresh(code.pre.clone()),
                    code.tier,
                )
            }
        };
        store.data_mut().begin(deadline, meter.clone());

        let (sender, receiver) = tokio::sync::oneshot::channel();
        let http = &mut store.data_mut().http();
        let req = http
            .new_incoming_request(Scheme::Http, request)
            .map_err(|e| InvokeError::Internal(format!("{e:#}")))?;
        let out = http
            .new_response_outparam(sender)
            .map_err(|e| InvokeError::Internal(format!("{e:#}")))?;

        let (instantiated_tx, mut instantiated_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(run_guest(GuestRun {
            store,
            instance,
            tier,
            req,
            out,
            deadline,
            limits: self.limits,
            meter: meter.clone(),
            idle: self.idle.clone(),
            identity: self.identity.clone(),
            instantiated: instantiated_tx,
            permits: Box::new(permits),
        }));
        // Until the guest has answered, dropping this future (client gone)
        // must stop the guest too.
        let guard = AbortOnDrop(Some(task));

        let answer = tokio::time::timeout_at(deadline.into(), receiver).await;
        let answered = Instant::now();
        let instantiate = match instantiated_rx.try_recv() {
            Ok(at) => at.saturating_duration_since(started),
            Err(_) => Duration::ZERO,
        };
        let info = Invocation {
            instantiate,
            execution: answered.saturating_duration_since(started + instantiate),
            peak_memory: meter.peak_memory(),
        };
        match answer {
            Ok(Ok(Ok(response))) => {
                guard.detach();
                Ok((response, info))
            }
            Ok(Ok(Err(code))) => Err(InvokeError::BadResponse(describe_error_code(&code))),
            Err(_elapsed) => Err(InvokeError::Timeout(self.limits.timeout)),
            Ok(Err(_no_response)) => Err(why_no_response(guard).await),
        }
    }

    /// Instantiates the component once and drops the instance, returning
    /// the time it took: the per-request cost before the handler runs,
    /// measured by the benchmark program.
    pub async fn probe_instantiate(&self) -> Result<Duration, InvokeError> {
        let started = Instant::now();
        let (component, _) = self.code.get(&self.runtime).await?;
        let code = component.code();
        let mut store = self.new_store(&code);
        store
            .data_mut()
            .begin(started + self.limits.timeout, Meter::unread());
        code.pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| classify_trap(e, false, self.limits))?;
        Ok(started.elapsed())
    }

    /// A store for `code`: of its engine, which refuses any other's.
    fn new_store(&self, code: &Code) -> Store<InstanceState> {
        let hooks = OutboundHooks::new(
            self.identity.clone(),
            self.runtime.services(),
            self.allowed_outbound.clone(),
            self.limits.outbound,
            self.runtime.capability_stats.clone(),
        );
        let state = InstanceState::new(
            &self.env,
            self.limits.memory,
            self.runtime.config.output_capacity,
            hooks,
            &self.grants,
            &self.runtime.capability_stats,
        );
        let mut store = Store::new(&code.engine, state);
        store.limiter(|state| &mut state.limits);
        // Every epoch tick the guest yields to other tasks, and once the
        // invocation's deadline has passed the next tick traps it: a
        // spinning guest can neither starve the node nor outlive its
        // timeout.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut store| {
            store.data_mut().sample_host_memory();
            if Instant::now() >= store.data().deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store
    }
}

/// The instance a request runs in.
enum Instance {
    /// To be instantiated from the function's pre-instance.
    Fresh(ProxyPre<InstanceState>),
    /// An idle instance and the number of requests it has served.
    Reused(Proxy, u32),
}

/// Everything the guest's task owns.
struct GuestRun {
    store: Store<InstanceState>,
    instance: Instance,
    tier: Tier,
    req: Resource<HostIncomingRequest>,
    out: Resource<HostResponseOutparam>,
    deadline: Instant,
    limits: FunctionLimits,
    meter: Arc<Meter>,
    idle: Arc<IdleInstances>,
    identity: Arc<FunctionIdentity>,
    instantiated: tokio::sync::oneshot::Sender<Instant>,
    /// Whatever the caller holds while the guest runs (its admission),
    /// released with the task.
    permits: Box<dyn Send>,
}

/// Runs the guest's handler to completion (or its deadline), timing every
/// poll, then settles the meter and, with `reuse`, keeps
/// a cleanly finished instance for the next request.
async fn run_guest(run: GuestRun) -> Result<(), InvokeError> {
    let GuestRun {
        mut store,
        instance,
        tier,
        req,
        out,
        deadline,
        limits,
        meter,
        idle,
        identity,
        instantiated,
        permits,
    } = run;
    let (result, served) = {
        let call = async {
            let (proxy, served) = match instance {
                Instance::Fresh(pre) => (pre.instantiate_async(&mut store).await?, 0),
                Instance::Reused(proxy, served) => (proxy, served),
            };
            let _ = instantiated.send(Instant::now());
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, req, out)
                .await?;
            wasmtime::Result::Ok((proxy, served))
        };
        let result = {
            let mut call = std::pin::pin!(tokio::time::timeout_at(deadline.into(), call));
            // Time inside each poll is time the guest ran on a thread. It
            // is read from the monotonic clock (a vDSO call) rather than
            // the thread CPU clock (a system call, ~4% of a small
            // request's cost); the two differ only when the OS preempts
            // the thread mid-poll.
            std::future::poll_fn(|cx| {
                let before = Instant::now();
                let poll = call.as_mut().poll(cx);
                meter.add_cpu(before.elapsed());
                poll
            })
            .await
        };
        match result {
            Ok(Ok((proxy, served))) => (Ok(proxy), served),
            Ok(Err(error)) => {
                let exceeded = store.data().limits.exceeded;
                (Err(classify_trap(error, exceeded, limits)), 0)
            }
            Err(_elapsed) => (Err(InvokeError::Timeout(limits.timeout)), 0),
        }
    };
    // Only an instance that might be kept needs the look at what its
    // handler left; any other is dropped below, which ends what it left.
    let result = match result {
        Ok(proxy) if idle.enabled() => keepable(&mut store, proxy, served, &idle, &identity),
        other => other,
    };
    let output = store.data().output.take_lines();
    store.data_mut().sample_host_memory();
    store.data_mut().end();
    meter.guest_finished(result.as_ref().err().cloned(), output);
    drop(meter);
    let outcome = match result {
        Ok(proxy) => {
            if idle.enabled() {
                idle.put(Idle {
                    store,
                    proxy,
                    served: served + 1,
                    tier,
                });
            } else {
                drop(store);
            }
            Ok(())
        }
        Err(error) => {
            drop(store);
            Err(error)
        }
    };
    // The instance went (its pool slot and memory with it) before the
    // admission that counted them is released.
    drop(permits);
    outcome
}

/// The instance if its handler finished its request, so it may serve the
/// next; otherwise why not, and it is dropped (which answers its waiting
/// client). A reused instance that did not answer means the guest cannot
/// serve two requests on one instance: the function gives up reuse.
fn keepable(
    store: &mut Store<InstanceState>,
    proxy: Proxy,
    served: u32,
    idle: &IdleInstances,
    identity: &FunctionIdentity,
) -> Result<Proxy, InvokeError> {
    match store.data_mut().unfinished_request() {
        None => Ok(proxy),
        Some(Unfinished::Response) if served > 0 => {
            if idle.give_up() {
                tracing::warn!(
                    app = %identity.app,
                    function = %identity.function,
                    version = identity.version,
                    "a reused instance returned without answering its request; this function \
                     now gets a fresh instance per request (its `reuse` is ignored)"
                );
            }
            Err(InvokeError::NotReusable(served + 1))
        }
        Some(Unfinished::Response) => Err(InvokeError::NoResponse),
        Some(Unfinished::Body) => Err(InvokeError::BadResponse(
            "it returned before finishing a body it was writing, so the body was cut short".into(),
        )),
    }
}

/// The guest dropped its response outparam without using it: find out
/// whether it trapped, timed out or simply returned.
async fn why_no_response(mut guard: AbortOnDrop) -> InvokeError {
    let Some(task) = guard.0.take() else {
        return InvokeError::NoResponse;
    };
    match task.await {
        Ok(Ok(())) => InvokeError::NoResponse,
        Ok(Err(error)) => error,
        Err(join) => InvokeError::Internal(format!("the invocation task failed: {join}")),
    }
}

fn classify_trap(
    error: wasmtime::Error,
    memory_exceeded: bool,
    limits: FunctionLimits,
) -> InvokeError {
    if error.is::<wasmtime::PoolConcurrencyLimitError>() {
        return InvokeError::Capacity;
    }
    if memory_exceeded {
        return InvokeError::MemoryLimit {
            limit_mib: limits.memory >> 20,
        };
    }
    if let Some(limit) = host_limit(&error, limits) {
        return InvokeError::Trap(limit);
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => InvokeError::Timeout(limits.timeout),
        Some(trap) => InvokeError::trapped(*trap, &error),
        None => InvokeError::ended(&error),
    }
}

/// Says which host limit a trap came from, if it came from one: the host
/// ends a guest that asks it to hold more than its budget.
fn host_limit(error: &wasmtime::Error, limits: FunctionLimits) -> Option<String> {
    if error.is::<wasmtime::component::ResourceTableError>() {
        let budget = crate::host::max_host_resources(limits.memory);
        return Some(format!(
            "the function holds more host resources (headers, bodies, streams, requests) than its budget of {budget} allows; the budget follows its `memory` cap"
        ));
    }
    match error.downcast_ref::<wasmtime_wasi_http::FieldMapError>() {
        Some(wasmtime_wasi_http::FieldMapError::TotalSizeTooBig) => Some(format!(
            "the function built a set of HTTP headers (fields) larger than the {} KiB a set may hold",
            crate::host::FIELDS_LIMIT >> 10
        )),
        Some(wasmtime_wasi_http::FieldMapError::TooManyFields) => {
            Some("the function built a set of HTTP headers (fields) with too many entries".into())
        }
        _ => None,
    }
}

fn describe_error_code(code: &ErrorCode) -> String {
    format!("the guest answered with error code {code:?}")
}

/// Aborts the guest task when dropped, unless detached once the response
/// has been handed over (the task then streams the body to completion).
struct AbortOnDrop(Option<tokio::task::JoinHandle<TaskOutcome>>);

type TaskOutcome = Result<(), InvokeError>;

impl AbortOnDrop {
    fn detach(mut self) {
        self.0 = None;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}
