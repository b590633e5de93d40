//! Invocations and logs: call a function (synchronously, or queued as an
//! async invocation), every live function at a glance, a function's logs,
//! one invocation as metered.

pub(crate) mod functions;
pub(crate) mod logs;
pub(crate) mod series;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Extension, FromRef, Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::{HeaderMap, Method, StatusCode, header};
use serde::Deserialize;
use stratus_control::Node;
use stratus_events::Dispatcher;
use stratus_invoke::{PlatformError, new_invocation_id};
use stratus_manifest::Namespace;
use stratus_storage::Ledger;

use crate::AdminState;
use crate::contract::INVOKE_METHODS;
use crate::error::ApiError;
use crate::model::AsyncAccepted;

/// What the invocations area needs: the control plane (to find and invoke
/// functions), the dispatcher (async invocations), the ledger (logs and
/// records; none with metering off) and the triggers' health (shown with
/// each function).
#[derive(Debug, Clone)]
pub struct InvocationsState {
    node: Arc<Node>,
    dispatcher: Arc<Dispatcher>,
    ledger: Option<Arc<Ledger>>,
    triggers: Arc<stratus_triggers::Health>,
}

impl FromRef<AdminState> for InvocationsState {
    fn from_ref(state: &AdminState) -> Self {
        InvocationsState {
            node: state.node.clone(),
            dispatcher: state.dispatcher.clone(),
            ledger: state.ledger.clone(),
            triggers: state.triggers.clone(),
        }
    }
}

pub(crate) fn router() -> Router<AdminState> {
    Router::new()
        .route("/functions", get(functions::list))
        .route(
            "/functions/{function}/invocations",
            post(invoke).get(logs::invocations),
        )
        .route("/functions/{function}/series", get(series::series))
        .route("/functions/{function}/logs", get(logs::logs))
        .route("/invocations/{id}", get(logs::invocation))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct InvokeParams {
    /// Path the function sees (default: `/`).
    path: Option<String>,
    /// Method the function sees (default: `POST`).
    method: Option<String>,
    /// `async`: queue the call durably and answer 202 with its id at once;
    /// the function receives it as a CloudEvent, retried on failure,
    /// continuing the caller's W3C trace when the request has a valid
    /// `traceparent`.
    mode: Option<String>,
}

/// Calls a function synchronously and answers with its response. The
/// function is named `NAME`, or `APP/NAME` (URL-encoded) when several apps
/// have a function of that name.
#[utoipa::path(post, tag = "handlers", path = "/v1/functions/{function}/invocations",
    params(("function" = String, Path), InvokeParams),
    request_body(content = String, content_type = "application/octet-stream"),
    responses(
        (status = 202, body = AsyncAccepted, description = "queued (mode=async)"),
        (status = "default", content_type = "*/*", body = Object,
            description = "the function's own response, whatever its status and body; or the \
            platform's refusal in the `ErrorResponse` shape: 400 a bad parameter, 401 or 403 \
            the token, 404 no such function (or another namespace), 413 the body over the \
            function's limit, 429 over a concurrency, rate or budget limit, 502 the function \
            failed, 503 a store out of reach, 504 it ran out of time")),
    security(("bearer" = [])))]
pub async fn invoke(
    State(state): State<InvocationsState>,
    Extension(namespace): Extension<Namespace>,
    Path(function): Path<String>,
    Query(params): Query<InvokeParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let target = state.node.find_function(&namespace, &function)?;
    let id = new_invocation_id();
    if body.len() as u64 > target.max_body {
        let response = PlatformError::body_too_large(target.max_body).into_response(&id);
        return Ok(response.map(Body::new));
    }
    let method = match params.method.as_deref() {
        Some(m) => INVOKE_METHODS
            .contains(&m)
            .then(|| Method::from_bytes(m.as_bytes()).ok())
            .flatten()
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "method \"{m}\" is not one of {}",
                    INVOKE_METHODS.join(", ")
                ))
            })?,
        None => Method::POST,
    };
    let path = params.path.unwrap_or_else(|| "/".to_string());
    if !valid_path(&path) {
        return Err(ApiError::bad_request(format!(
            "the path \"{path}\" must start with '/' and hold only URL characters (others %-encoded)"
        )));
    }
    match params.mode.as_deref() {
        None | Some("sync") => {}
        Some("async") => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let id = state
                .dispatcher
                .submit(
                    &target,
                    path,
                    content_type,
                    body,
                    stratus_events::trace_context(&headers),
                )
                .await?;
            let location = crate::namespaces::v1_path(&namespace, &format!("/events/{id}"));
            let accepted = AsyncAccepted {
                id,
                state: "queued".into(),
                status_url: location.clone(),
            };
            return Ok((
                StatusCode::ACCEPTED,
                [(header::LOCATION, location)],
                Json(accepted),
            )
                .into_response());
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "mode \"{other}\" is not one of \"sync\" or \"async\""
            )));
        }
    }
    let mut request = http::Request::builder()
        .method(method)
        .uri(&path)
        .body(body)
        .map_err(|e| ApiError::bad_request(format!("invalid path \"{path}\": {e}")))?;
    for (name, value) in &headers {
        // The admin credentials are for the node, never for the function.
        if name != header::AUTHORIZATION && name != header::HOST && name != header::CONTENT_LENGTH {
            request.headers_mut().append(name.clone(), value.clone());
        }
    }
    let mut response = state
        .node
        .invoke(&target, request, &id)
        .await
        .map(Body::new);
    // The function's own answer, whatever its shape.
    response
        .extensions_mut()
        .insert(crate::rejections::Passthrough);
    Ok(response)
}

/// A path and query a function may be handed (`contract::PATH_PATTERN`):
/// '/' first, then URL characters, with `%` only as an escape.
pub(crate) fn valid_path(path: &str) -> bool {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let escape = bytes.get(i + 1..i + 3);
            if !escape.is_some_and(|e| e.iter().all(u8::is_ascii_hexdigit)) {
                return false;
            }
            i += 3;
            continue;
        }
        if !(b.is_ascii_alphanumeric() || b"._~!$&'()*+,;=:@/?-".contains(&b)) {
            return false;
        }
        i += 1;
    }
    true
}
