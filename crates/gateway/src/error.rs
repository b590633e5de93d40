//! Platform errors: answers the node gives on a function's behalf.
//!
//! Every one is JSON `{"error": {"code", "message", "invocation_id"}}` so a
//! client can tell a platform failure from the function's own answer and
//! quote the invocation id when asking for help.

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use http_body_util::{BodyExt, Full};
use serde::{Deserialize, Serialize};
use stratus_runtime::{InvokeError, ResponseBody};

/// A platform error with its HTTP status and stable machine-readable code.
#[derive(Debug, Clone)]
pub struct PlatformError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header (429 and 503).
    pub retry_after: Option<u32>,
}

/// The JSON shape of a platform error.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invocation_id: Option<String>,
}

impl PlatformError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        PlatformError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn no_route(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "no_route",
            format!("no function is routed at {path}"),
        )
    }

    pub fn body_too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "the request body is larger than the function's limit of {limit} bytes (the `max_body` key)"
            ),
        )
    }

    pub fn shed(function: &str, shed: crate::Shed, waited_ms: u128) -> Self {
        let (code, why) = match shed {
            crate::Shed::FunctionBusy => (
                "over_concurrency",
                format!("function \"{function}\" is at its `max_concurrency`"),
            ),
            crate::Shed::NodeBusy => (
                "over_capacity",
                "the node has no free instance slot or memory".to_string(),
            ),
        };
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            code,
            format!("{why} and the request waited {waited_ms} ms; retry later"),
        );
        e.retry_after = Some(1);
        e
    }

    pub fn draining() -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            "the node is shutting down; retry on another node",
        );
        e.retry_after = Some(1);
        e
    }

    /// Maps an invocation failure to its status: the function's fault is a
    /// 502, running out of time a 504, the node's lack of capacity a 503.
    pub fn from_invoke(function: &str, error: &InvokeError) -> Self {
        let (status, code) = invoke_error_code(error);
        let mut e = Self::new(status, code, format!("function \"{function}\": {error}"));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            e.retry_after = Some(1);
        }
        e
    }

    /// Renders the error as a response carrying the invocation id.
    pub fn into_response(self, invocation_id: &str) -> hyper::Response<ResponseBody> {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
                invocation_id: Some(invocation_id.to_string()),
            },
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = hyper::Response::new(full_body(json));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// A complete in-memory body in the gateway's response body type.
pub fn full_body(bytes: impl Into<Bytes>) -> ResponseBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// The status and code an invocation failure is answered with.
pub fn invoke_error_code(error: &InvokeError) -> (StatusCode, &'static str) {
    match error {
        InvokeError::Trap(_) | InvokeError::MemoryLimit { .. } => {
            (StatusCode::BAD_GATEWAY, "function_trapped")
        }
        InvokeError::NoResponse | InvokeError::BadResponse(_) => {
            (StatusCode::BAD_GATEWAY, "bad_response")
        }
        InvokeError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
        InvokeError::Capacity => (StatusCode::SERVICE_UNAVAILABLE, "pool_exhausted"),
        InvokeError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}
