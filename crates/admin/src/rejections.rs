//! The answers axum gives on its own — a path segment that is not a number,
//! a query or JSON body that does not parse, a method a route does not
//! serve, a body over the limit — in the platform's one error shape, so a
//! client (and the OpenAPI document) meets a single shape for every error,
//! not plain text for some.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::CONTENT_TYPE;
use http_body_util::BodyExt;

use crate::error::ApiError;

/// The most of a rejection's text kept for the message: axum's are a line.
const MAX_TEXT: usize = 1024;
/// The most of a non-JSON error body read at all.
const MAX_READ: usize = 64 * 1024;

/// A response a handler passes on as it is (a function's own response to
/// an invocation), which this layer must not rewrite.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Passthrough;

/// Rewrites an error answer that is not JSON into an [`ApiError`] with the
/// same status and headers (`Allow` on a 405 stays).
pub(crate) async fn as_json(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.extensions().get::<Passthrough>().is_some()
        || is_json(&response)
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // axum's refusals are a line; anything longer is cut, never held whole.
    let text = match http_body_util::Limited::new(body, MAX_READ).collect().await {
        Ok(collected) => {
            let bytes = collected.to_bytes();
            String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_TEXT)])
                .trim()
                .to_owned()
        }
        Err(_) => String::new(),
    };
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    let mut rewritten = ApiError::new(status, code(status), message).into_response();
    // The original's other headers (`Allow`, `Retry-After`) stay.
    parts.headers.remove(CONTENT_TYPE);
    parts.headers.remove(http::header::CONTENT_LENGTH);
    for (name, value) in &parts.headers {
        rewritten.headers_mut().append(name, value.clone());
    }
    rewritten
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// The error code for a status axum chose.
fn code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid_body",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    }
}
