//! `http://<function>.svc/…`: one function calling another of its app in
//! process, without a socket.
//!
//! The call goes through [`Gateway::call_function`], so the callee runs
//! under its own limits and concurrency, is metered and logged like any
//! request, and its record names the calling invocation. The caller needs
//! `http://<function>.svc` in its `allowed_outbound` (checked by the
//! runtime before the call reaches here). Chains of calls are bounded by
//! [`MAX_CALL_DEPTH`], so a cycle (a calls b calls a …) ends with a clear
//! error instead of taking every instance slot.

use std::sync::{Arc, Weak};

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Limited};
use stratus_runtime::{InProcessServices, ServiceCaller, ServiceFuture};

use crate::error::{ErrorBody, ErrorDetail, PlatformError};
use crate::server::Gateway;

/// How many calls deep a chain may go: a request's invocation is depth 0,
/// the function it calls depth 1, and a call that would make depth
/// `MAX_CALL_DEPTH + 1` is refused.
pub const MAX_CALL_DEPTH: u32 = 8;

/// The largest answer a called function may give: the caller receives it
/// buffered, so it is bounded like a request body.
const MAX_ANSWER: usize = 16 << 20;

/// The service that answers every `*.svc` host no node service took.
/// Holds the gateway weakly: the runtime keeps its services for its whole
/// life, and the live functions in the gateway keep the runtime.
#[derive(Debug)]
pub struct FunctionCalls {
    gateway: Weak<Gateway>,
}

impl FunctionCalls {
    pub fn new(gateway: &Arc<Gateway>) -> Arc<FunctionCalls> {
        Arc::new(FunctionCalls {
            gateway: Arc::downgrade(gateway),
        })
    }
}

impl InProcessServices for FunctionCalls {
    fn handles(&self, host: &str) -> bool {
        host.ends_with(".svc")
    }

    fn needs_grant(&self) -> bool {
        true
    }

    fn call(&self, caller: &ServiceCaller, request: http::Request<Bytes>) -> ServiceFuture {
        let gateway = self.gateway.clone();
        let caller = caller.clone();
        Box::pin(async move { call(gateway, caller, request).await })
    }
}

async fn call(
    gateway: Weak<Gateway>,
    caller: ServiceCaller,
    request: http::Request<Bytes>,
) -> http::Response<Bytes> {
    let Some(gateway) = gateway.upgrade() else {
        return refuse(PlatformError::draining());
    };
    let host = request.uri().host().unwrap_or_default();
    let name = host
        .strip_suffix(".svc")
        .unwrap_or(host)
        .to_ascii_lowercase();
    let app = &caller.function.app;
    let live = gateway.live();
    let Some(function) = live.function(app, &name).cloned() else {
        return refuse(PlatformError::new(
            StatusCode::NOT_FOUND,
            "no_function",
            format!("app {app} has no function named {name:?} to answer http://{host}/"),
        ));
    };
    let depth = caller.invocation.depth + 1;
    if depth > MAX_CALL_DEPTH {
        tracing::warn!(
            app = %app,
            function = %caller.function.function,
            invocation_id = %caller.invocation.id,
            callee = %name,
            "call refused: the chain of .svc calls is deeper than {MAX_CALL_DEPTH}"
        );
        return refuse(PlatformError::new(
            StatusCode::LOOP_DETECTED,
            "call_depth_exceeded",
            format!(
                "{} calling {name}.svc would be call number {depth} in a chain; at most {MAX_CALL_DEPTH} are allowed (is there a cycle?)",
                caller.function.function
            ),
        ));
    }
    // The callee's own request limit holds for calls as for the gateway.
    if request.body().len() as u64 > function.max_body {
        return refuse(PlatformError::body_too_large(function.max_body));
    }
    let response = gateway
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

/// A platform error as the calling guest sees it: the gateway's JSON shape.
fn refuse(error: PlatformError) -> http::Response<Bytes> {
    let body = ErrorBody {
        error: ErrorDetail {
            code: error.code.to_string(),
            message: error.message,
            invocation_id: None,
        },
    };
    http::Response::builder()
        .status(error.status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Bytes::from(serde_json::to_vec(&body).unwrap_or_default()))
        .unwrap_or_default()
}
