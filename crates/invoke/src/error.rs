//! Platform errors: answers the node gives on a function's behalf, and the
//! one JSON error shape of every surface (the gateway, the admin API,
//! `.svc` calls, `queue.svc`).
//!
//! Every one is JSON `{"error": {"code", "message", "invocation_id"}}` so a
//! client can tell a platform failure from the function's own answer and
//! quote the invocation id when asking for help; answers that belong to no
//! invocation (most of the admin API's, an in-process service's refusal)
//! leave `invocation_id` out.

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

// The OpenAPI schemas keep the names and descriptions the admin API
// published before this type was shared, so its document does not change.
/// The platform's error shape.
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = ErrorResponse))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = ErrorInfo))]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `app_not_found`.
    pub code: String,
    /// One sentence for humans.
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invocation_id: Option<String>,
}

impl ErrorBody {
    pub fn new(code: &str, message: impl Into<String>, invocation_id: Option<&str>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message: message.into(),
                invocation_id: invocation_id.map(str::to_owned),
            },
        }
    }

    /// The JSON text; the shape has nothing that can fail to serialize.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
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
            crate::Shed::NamespaceBusy => (
                "namespace_over_concurrency",
                format!(
                    "the namespace of function \"{function}\" is at its `max_concurrency` quota"
                ),
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

    /// 429 for a namespace over its `requests_per_second` quota, with when
    /// a request will be taken again.
    pub fn rate_limited(namespace: &str, retry_after: std::time::Duration) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "namespace \"{namespace}\" is at its `requests_per_second` quota; retry in {} ms",
                retry_after.as_millis().max(1)
            ),
        );
        e.retry_after = Some(
            u32::try_from(retry_after.as_secs())
                .unwrap_or(u32::MAX)
                .max(1),
        );
        e
    }

    /// 429 for a namespace whose budget for the period is spent.
    pub fn budget_exhausted(namespace: &str) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "budget_exhausted",
            format!(
                "namespace \"{namespace}\" has spent its budget for the period; its functions answer again when the next period starts or its budget is raised"
            ),
        );
        e.retry_after = Some(60);
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

    /// The error's JSON body, naming `invocation_id` when it belongs to one.
    pub fn body(&self, invocation_id: Option<&str>) -> ErrorBody {
        ErrorBody::new(self.code, self.message.clone(), invocation_id)
    }

    /// Renders the error as a response carrying the invocation id.
    pub fn into_response(self, invocation_id: &str) -> hyper::Response<ResponseBody> {
        self.respond(Some(invocation_id)).map(full_body)
    }

    /// Renders the error as an in-memory response, for answers that belong
    /// to no invocation (an in-process service refusing a call).
    pub fn into_bytes_response(self) -> http::Response<Bytes> {
        self.respond(None)
    }

    fn respond(self, invocation_id: Option<&str>) -> http::Response<Bytes> {
        let mut response = http::Response::new(Bytes::from(self.body(invocation_id).to_json()));
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
        // An exit ends the guest as abruptly as a trap; the message tells
        // the two apart.
        InvokeError::Trap(_) | InvokeError::Exited(_) | InvokeError::MemoryLimit { .. } => {
            (StatusCode::BAD_GATEWAY, "function_trapped")
        }
        InvokeError::NoResponse | InvokeError::NotReusable(_) | InvokeError::BadResponse(_) => {
            (StatusCode::BAD_GATEWAY, "bad_response")
        }
        InvokeError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
        InvokeError::Capacity => (StatusCode::SERVICE_UNAVAILABLE, "pool_exhausted"),
        InvokeError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Clients (the CLI, scripts, other functions) parse these bytes; the
    // shape is the same on every surface, with or without an invocation.
    #[test]
    fn the_error_shape_is_pinned() {
        let body = ErrorBody::new("no_route", "no function is routed at /x", None);
        assert_eq!(
            String::from_utf8(body.to_json()).unwrap_or_default(),
            r#"{"error":{"code":"no_route","message":"no function is routed at /x"}}"#
        );
        let body = PlatformError::no_route("/x").body(Some("inv-1"));
        assert_eq!(
            String::from_utf8(body.to_json()).unwrap_or_default(),
            r#"{"error":{"code":"no_route","message":"no function is routed at /x","invocation_id":"inv-1"}}"#
        );
    }

    #[test]
    fn an_in_memory_refusal_keeps_status_type_and_retry_after() {
        let response = PlatformError::draining().into_bytes_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap_or_default();
        assert_eq!(body["error"]["code"], "draining");
        assert!(body["error"].get("invocation_id").is_none(), "{body}");
    }
}
