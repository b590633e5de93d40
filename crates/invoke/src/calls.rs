//! `http://<function>.svc/…`: one function calling another of its app in
//! process, without a socket.
//!
//! The call goes through [`Invoker::call_function`], so the callee runs
//! under its own limits and concurrency, is metered and logged like any
//! request, and its record names the calling invocation. The caller needs
//! `http://<function>.svc` in its `allowed_outbound` (checked by the
//! runtime before the call reaches here). Chains of calls are bounded by
//! [`MAX_CALL_DEPTH`], so a cycle (a calls b calls a …) ends with a clear
//! error instead of taking every instance slot.

use std::sync::{Arc, Weak};

use stratus_runtime::SharedWarnLimit;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Limited};
use stratus_runtime::{InProcessServices, ServiceCaller, ServiceFuture};

use crate::error::PlatformError;
use crate::invoker::Invoker;

/// How many calls deep a chain may go: a request's invocation is depth 0,
/// the function it calls depth 1, and a call that would make depth
/// `MAX_CALL_DEPTH + 1` is refused.
pub const MAX_CALL_DEPTH: u32 = 8;

/// The calls one request (or event) may set off in all, down its whole
/// tree of `.svc` calls, unless the node is configured otherwise.
pub const DEFAULT_MAX_CALLS_PER_TREE: u32 = 100;

/// The largest answer a called function may give: the caller receives it
/// buffered, so it is bounded like a request body.
const MAX_ANSWER: usize = 16 << 20;

/// The service that answers every `*.svc` host no node service took.
/// Holds the invoker weakly: the runtime keeps its services for its whole
/// life, and the live functions in the invoker keep the runtime.
#[derive(Debug)]
pub struct FunctionCalls {
    invoker: Weak<Invoker>,
    /// Calls allowed per tree (`--max-calls-per-request`).
    max_calls: u32,
    /// Refusals are logged, but a fan-out refused thousands of times must
    /// not fill the node's log.
    refusals: SharedWarnLimit,
}

impl FunctionCalls {
    pub fn new(invoker: &Arc<Invoker>, max_calls: u32) -> Arc<FunctionCalls> {
        Arc::new(FunctionCalls {
            invoker: Arc::downgrade(invoker),
            max_calls,
            refusals: SharedWarnLimit::default(),
        })
    }
}

impl InProcessServices for FunctionCalls {
    fn call(&self, caller: &ServiceCaller, request: http::Request<Bytes>) -> ServiceFuture {
        let Some(invoker) = self.invoker.upgrade() else {
            return Box::pin(async { refuse(PlatformError::draining()) });
        };
        let host = request.uri().host().unwrap_or_default();
        if let Err(refusal) = self.check(caller, host) {
            invoker
                .calls_refused
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Box::pin(async move { refuse(refusal) });
        }
        let caller = caller.clone();
        Box::pin(async move { call(invoker, caller, request).await })
    }
}

impl FunctionCalls {
    /// Refuses a call past the depth or the tree's budget: both bound what
    /// one request can set off, a cycle or a fan-out.
    fn check(&self, caller: &ServiceCaller, host: &str) -> Result<(), PlatformError> {
        let depth = caller.invocation.depth + 1;
        let calls = caller.invocation.tree.add_call();
        let refusal = if depth > MAX_CALL_DEPTH {
            PlatformError::new(
                StatusCode::LOOP_DETECTED,
                "call_depth_exceeded",
                format!(
                    "{} calling {host} would be call number {depth} in a chain; at most {MAX_CALL_DEPTH} are allowed (is there a cycle?)",
                    caller.function.function
                ),
            )
        } else if calls > self.max_calls {
            PlatformError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "call_budget_exceeded",
                format!(
                    "this request has already made {} calls between functions, the most one request may make (--max-calls-per-request)",
                    self.max_calls
                ),
            )
        } else {
            return Ok(());
        };
        if let Some(count) = self.refusals.hit() {
            tracing::warn!(
                app = %caller.function.app,
                function = %caller.function.function,
                invocation_id = %caller.invocation.id,
                "call refused: {} ({count} refusals since the last warning)",
                refusal.message
            );
        }
        Err(refusal)
    }
}

async fn call(
    invoker: Arc<Invoker>,
    caller: ServiceCaller,
    request: http::Request<Bytes>,
) -> http::Response<Bytes> {
    let host = request.uri().host().unwrap_or_default();
    let name = host
        .strip_suffix(".svc")
        .unwrap_or(host)
        .to_ascii_lowercase();
    let app = &caller.function.app;
    let live = invoker.live();
    let Some(function) = live
        .function_in(app, &name, caller.function.version)
        .cloned()
    else {
        return refuse(PlatformError::new(
            StatusCode::NOT_FOUND,
            "no_function",
            format!("app {app} has no function named {name:?} to answer http://{host}/"),
        ));
    };
    // The callee's own request limit holds for calls as for the gateway.
    if request.body().len() as u64 > function.max_body {
        return refuse(PlatformError::body_too_large(function.max_body));
    }
    let response = invoker
        .call_function(&function, request, &caller.invocation)
        .await;
    let (parts, body) = response.into_parts();
    match Limited::new(body, MAX_ANSWER).collect().await {
        Ok(collected) => http::Response::from_parts(parts, collected.to_bytes()),
        Err(e) => refuse(PlatformError::new(
            StatusCode::BAD_GATEWAY,
            "bad_answer",
            format!("{name}'s answer could not be read whole (at most {MAX_ANSWER} bytes): {e}"),
        )),
    }
}

/// A platform error as the calling guest sees it: the platform's JSON error shape.
fn refuse(mut error: PlatformError) -> http::Response<Bytes> {
    // No `Retry-After`: the calling guest has no other node to retry on, and
    // a draining node is shutting its caller down too.
    error.retry_after = None;
    error.into_bytes_response()
}
