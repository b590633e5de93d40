//! One deployed function and the execution of one request against it.
//!
//! Mirrors `wasmtime serve`: a fresh `Store` and instance per request from a
//! shared `ProxyPre`, the handler run in its own task so the response can
//! stream after the headers are sent. On top of that it enforces the
//! function's limits and classifies every failure so the gateway can answer
//! with the right status instead of dropping the connection.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};

use crate::capture::CapturedOutput;
use crate::compile::PreparedComponent;
use crate::engine::Runtime;
use crate::error::InvokeError;
use crate::host::InstanceState;
use crate::residency::Resident;

/// The body type of a function's response: streamed from the guest.
pub type ResponseBody = wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// The per-function limits a request runs under.
#[derive(Debug, Clone, Copy)]
pub struct FunctionLimits {
    /// Linear memory cap in bytes (manifest `memory`).
    pub memory: u64,
    /// Wall-clock limit of one invocation (manifest `timeout`).
    pub timeout: Duration,
}

/// How a function runs, from its manifest entry.
#[derive(Debug, Clone)]
pub struct FunctionOptions {
    pub limits: FunctionLimits,
    /// The function's environment (manifest `env`).
    pub env: Vec<(String, String)>,
    /// Keep the compiled code resident while idle (manifest `min_warm`).
    pub min_warm: bool,
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
}

impl std::fmt::Debug for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Function")
            .field("component", &self.code.sha256())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// What the gateway learns about an invocation besides the response: the
/// makings of its cost receipt.
#[derive(Debug, Clone, Copy, Default)]
pub struct Invocation {
    /// Time to load the code if needed, create the store and instantiate.
    pub instantiate: Duration,
    /// Time from instantiation until the guest handed over its response.
    pub execution: Duration,
    /// Peak linear memory of the instance so far, in bytes.
    pub peak_memory: u64,
}

/// The bytes each invocation may write to stdout and stderr together.
pub const OUTPUT_CAPACITY: usize = 64 * 1024;

impl Function {
    pub fn new(
        runtime: Arc<Runtime>,
        component: Arc<PreparedComponent>,
        options: FunctionOptions,
    ) -> Function {
        Function {
            runtime,
            code: Resident::new(component, options.source, options.min_warm),
            limits: options.limits,
            env: options.env,
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

    /// Drops the compiled code if the function has been idle for `ttl`.
    pub fn evict_if_idle(&self, ttl: Duration) -> bool {
        self.code.evict_if_idle(&self.runtime, ttl)
    }

    /// Serves one request in a fresh instance. The returned response may
    /// still be streaming its body from the guest; the guest's task ends at
    /// the latest when the function's timeout expires.
    pub async fn handle<B>(
        &self,
        request: hyper::Request<B>,
        output: &CapturedOutput,
    ) -> Result<(hyper::Response<ResponseBody>, Invocation), InvokeError>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let started = Instant::now();
        let deadline = started + self.limits.timeout;
        let component = self.code.get(&self.runtime).await?;
        let peak_memory = Arc::new(AtomicU64::new(0));
        let mut store = self.new_store(deadline, peak_memory.clone(), output);

        let (sender, receiver) = tokio::sync::oneshot::channel();
        let http = &mut store.data_mut().http();
        let req = http
            .new_incoming_request(Scheme::Http, request)
            .map_err(|e| InvokeError::Internal(format!("{e:#}")))?;
        let out = http
            .new_response_outparam(sender)
            .map_err(|e| InvokeError::Internal(format!("{e:#}")))?;

        let pre = component.pre.clone();
        let (instantiated_tx, mut instantiated_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let run = async {
                let proxy = pre.instantiate_async(&mut store).await?;
                let _ = instantiated_tx.send(Instant::now());
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, req, out)
                    .await
            };
            let result = tokio::time::timeout_at(deadline.into(), run).await;
            (result, store.data().limits.exceeded)
        });
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
            peak_memory: peak_memory.load(Ordering::Relaxed),
        };
        match answer {
            Ok(Ok(Ok(response))) => {
                guard.detach();
                Ok((response, info))
            }
            Ok(Ok(Err(code))) => Err(InvokeError::BadResponse(describe_error_code(&code))),
            Err(_elapsed) => Err(InvokeError::Timeout(self.limits.timeout)),
            Ok(Err(_no_response)) => Err(self.why_no_response(guard).await),
        }
    }

    /// Instantiates the component once and drops the instance, returning
    /// the time it took: the per-request cost before the handler runs,
    /// measured by the benchmark program.
    pub async fn probe_instantiate(&self) -> Result<Duration, InvokeError> {
        let output = CapturedOutput::new(0);
        let started = Instant::now();
        let peak = Arc::new(AtomicU64::new(0));
        let mut store = self.new_store(started + self.limits.timeout, peak, &output);
        let component = self.code.get(&self.runtime).await?;
        component
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| classify_trap(e, false, self.limits))?;
        Ok(started.elapsed())
    }

    fn new_store(
        &self,
        deadline: Instant,
        peak_memory: Arc<AtomicU64>,
        output: &CapturedOutput,
    ) -> Store<InstanceState> {
        let state = InstanceState::new(&self.env, self.limits.memory, peak_memory, output);
        let mut store = Store::new(&self.runtime.engine, state);
        store.limiter(|state| &mut state.limits);
        // Every epoch tick the guest yields to other tasks, and once the
        // deadline has passed the next tick traps it: a spinning guest can
        // neither starve the node nor outlive its timeout.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store
    }

    /// The guest dropped its response outparam without using it: find out
    /// whether it trapped, timed out or simply returned.
    async fn why_no_response(&self, mut guard: AbortOnDrop) -> InvokeError {
        let Some(task) = guard.0.take() else {
            return InvokeError::NoResponse;
        };
        match task.await {
            Ok((Ok(Ok(())), _)) => InvokeError::NoResponse,
            Ok((Ok(Err(error)), memory_exceeded)) => {
                classify_trap(error, memory_exceeded, self.limits)
            }
            Ok((Err(_elapsed), _)) => InvokeError::Timeout(self.limits.timeout),
            Err(join) => InvokeError::Internal(format!("the invocation task failed: {join}")),
        }
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
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => InvokeError::Timeout(limits.timeout),
        Some(trap) => InvokeError::Trap(trap.to_string()),
        None => InvokeError::Trap(
            format!("{error:#}")
                .lines()
                .next()
                .unwrap_or("")
                .to_string(),
        ),
    }
}

fn describe_error_code(code: &ErrorCode) -> String {
    format!("the guest answered with error code {code:?}")
}

/// Aborts the guest task when dropped, unless detached once the response
/// has been handed over (the task then streams the body to completion).
struct AbortOnDrop(Option<tokio::task::JoinHandle<TaskOutcome>>);

type TaskOutcome = (
    Result<wasmtime::Result<()>, tokio::time::error::Elapsed>,
    bool,
);

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
