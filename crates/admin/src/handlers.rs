//! Handlers of the admin API.

use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::{Multipart, Path, Query, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, header};
use serde::Deserialize;
use stratus_control::Upload;
use stratus_gateway::{PlatformError, new_invocation_id};

use crate::AdminState;
use crate::error::ApiError;
use crate::model::{
    ActivateResponse, AppDetail, AppSummary, AsyncAccepted, BrokerHealth, DeployResponse,
    ErrorResponse, FunctionInfo, Health, KeyValueHealth, TriggerHealth, VersionSummary,
};

/// Liveness: the process is up and answering.
#[utoipa::path(get, path = "/healthz", responses((status = 200, body = Health)))]
pub async fn healthz(State(state): State<AdminState>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        live_apps: live_apps(&state),
        problems: Vec::new(),
        brokers: Vec::new(),
        triggers: Vec::new(),
        keyvalue: None,
    })
}

/// Readiness: the stored live versions are loaded and serving.
#[utoipa::path(get, path = "/readyz", responses(
    (status = 200, body = Health), (status = 503, body = Health)))]
pub async fn readyz(State(state): State<AdminState>) -> Response {
    let ready = state.node.is_ready();
    // A broker that is down is detail, not unreadiness: the node serves
    // HTTP all the same, and its triggers retry.
    let mut problems = state.node.problems();
    problems.extend(state.triggers.problems());
    let keyvalue = keyvalue_health(&state).await;
    if let Some(KeyValueHealth {
        location,
        error: Some(error),
        ..
    }) = &keyvalue
    {
        problems.push(format!("key-value store {location}: {error}"));
    }
    let time = |t| stratus_ledger::record::format_time(t);
    let body = Health {
        status: if ready { "ready" } else { "starting" }.into(),
        live_apps: live_apps(&state),
        problems,
        brokers: state
            .triggers
            .brokers()
            .into_iter()
            .map(|b| BrokerHealth {
                broker: b.broker.into(),
                url: b.url,
                connected: b.connected,
                error: b.error,
                since: time(b.since),
            })
            .collect(),
        triggers: state
            .triggers
            .triggers()
            .into_iter()
            .map(|t| TriggerHealth {
                function: t.function,
                trigger: t.trigger,
                state: t.state.as_str().into(),
                error: t.error,
                since: time(t.since),
            })
            .collect(),
        keyvalue,
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// How long `/readyz` waits for the key-value store: well under the usual
/// one-second timeout of a readiness probe, so a store that hangs shows as
/// a problem instead of making the probe itself fail.
const KEYVALUE_CHECK: std::time::Duration = std::time::Duration::from_millis(250);

/// Asks the key-value store for a sign of life, briefly.
async fn keyvalue_health(state: &AdminState) -> Option<KeyValueHealth> {
    let store = state.node.keyvalue()?;
    let answer = tokio::time::timeout(KEYVALUE_CHECK, store.check()).await;
    let error = match answer {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!("no answer within {KEYVALUE_CHECK:?}")),
    };
    Some(KeyValueHealth {
        backend: store.kind().into(),
        location: store.location(),
        reachable: error.is_none(),
        error,
    })
}

fn live_apps(state: &AdminState) -> usize {
    let live = state.node.gateway().live();
    let mut apps: Vec<&str> = live.functions().map(|f| f.app.as_str()).collect();
    apps.sort_unstable();
    apps.dedup();
    apps.len()
}

/// Creates and activates a new version of the app named in the manifest.
#[utoipa::path(post, path = "/v1/apps",
    request_body(content = crate::model::DeployForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, body = DeployResponse),
        (status = 409, description = "a route is served by another app", body = ErrorResponse),
        (status = 413, description = "the upload is too large", body = ErrorResponse),
        (status = 422, description = "invalid manifest or component", body = ErrorResponse)),
    security(("bearer" = [])))]
pub async fn deploy(
    State(state): State<AdminState>,
    multipart: Multipart,
) -> Result<(StatusCode, Json<DeployResponse>), ApiError> {
    let started = Instant::now();
    let upload = read_upload(multipart, state.max_upload).await?;
    let receive_ms = started.elapsed().as_secs_f64() * 1000.0;
    let report = state.node.deploy(upload).await?;
    let mut response = DeployResponse::from(report);
    response.timings.receive_ms = receive_ms;
    Ok((StatusCode::CREATED, Json(response)))
}

async fn read_upload(mut multipart: Multipart, max_upload: usize) -> Result<Upload, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "upload_too_large",
            format!(
                "the upload is larger than this node accepts ({max_upload} bytes; see --max-upload)"
            ),
        )
    };
    let mut upload = Upload::default();
    let mut manifest = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
            Err(e) => {
                return Err(ApiError::bad_request(format!(
                    "malformed upload: {}",
                    e.body_text()
                )));
            }
        };
        let name = field.name().unwrap_or_default().to_string();
        let file_name = field.file_name().map(str::to_string);
        let bytes = match field.bytes().await {
            Ok(bytes) => bytes,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
            Err(e) => {
                return Err(ApiError::bad_request(format!(
                    "malformed upload: {}",
                    e.body_text()
                )));
            }
        };
        match (name.as_str(), file_name) {
            ("manifest", _) => {
                let text = String::from_utf8(bytes.to_vec())
                    .map_err(|_| ApiError::bad_request("the manifest part is not UTF-8 text"))?;
                manifest = Some(text);
            }
            ("component", Some(path)) => {
                upload.components.insert(path, bytes);
            }
            ("component", None) => {
                return Err(ApiError::bad_request(
                    "a `component` part has no file name; set it to the manifest's `component` value",
                ));
            }
            (other, _) => {
                return Err(ApiError::bad_request(format!(
                    "unexpected upload part \"{other}\"; send one `manifest` part and `component` parts"
                )));
            }
        }
    }
    upload.manifest =
        manifest.ok_or_else(|| ApiError::bad_request("the upload has no `manifest` part"))?;
    Ok(upload)
}

/// Lists apps.
#[utoipa::path(get, path = "/v1/apps", responses((status = 200, body = [AppSummary])),
    security(("bearer" = [])))]
pub async fn list_apps(State(state): State<AdminState>) -> Result<Json<Vec<AppSummary>>, ApiError> {
    let apps = state.node.apps().await?;
    Ok(Json(apps.into_iter().map(AppSummary::from).collect()))
}

/// Shows an app with the functions and routes of its live version.
#[utoipa::path(get, path = "/v1/apps/{app}", params(("app" = String, Path)),
    responses((status = 200, body = AppDetail), (status = 404, body = ErrorResponse)),
    security(("bearer" = [])))]
pub async fn show_app(
    State(state): State<AdminState>,
    Path(app): Path<String>,
) -> Result<Json<AppDetail>, ApiError> {
    let record = state.node.app(&app).await?;
    let functions = match record.live_version {
        Some(live) => state
            .node
            .versions(&app)
            .await?
            .into_iter()
            .find(|v| v.number == live)
            .map(|v| v.functions.iter().map(FunctionInfo::from).collect())
            .unwrap_or_default(),
        None => Vec::new(),
    };
    Ok(Json(AppDetail {
        app: record.into(),
        functions,
    }))
}

/// Deletes an app and all its versions.
#[utoipa::path(delete, path = "/v1/apps/{app}", params(("app" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorResponse)),
    security(("bearer" = [])))]
pub async fn delete_app(
    State(state): State<AdminState>,
    Path(app): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.node.delete_app(&app).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists an app's versions, newest first.
#[utoipa::path(get, path = "/v1/apps/{app}/versions", params(("app" = String, Path)),
    responses((status = 200, body = [VersionSummary]), (status = 404, body = ErrorResponse)),
    security(("bearer" = [])))]
pub async fn list_versions(
    State(state): State<AdminState>,
    Path(app): Path<String>,
) -> Result<Json<Vec<VersionSummary>>, ApiError> {
    let versions = state.node.versions(&app).await?;
    Ok(Json(
        versions.into_iter().map(VersionSummary::from).collect(),
    ))
}

/// Makes a given version live, atomically.
#[utoipa::path(post, path = "/v1/apps/{app}/versions/{version}/activate",
    params(("app" = String, Path), ("version" = u32, Path)),
    responses((status = 200, body = ActivateResponse), (status = 404, body = ErrorResponse),
        (status = 409, body = ErrorResponse)),
    security(("bearer" = [])))]
pub async fn activate_version(
    State(state): State<AdminState>,
    Path((app, version)): Path<(String, u32)>,
) -> Result<Json<ActivateResponse>, ApiError> {
    let live_version = state.node.activate(&app, Some(version)).await?;
    Ok(Json(ActivateResponse { app, live_version }))
}

/// Makes the version before the live one live again.
#[utoipa::path(post, path = "/v1/apps/{app}/rollback", params(("app" = String, Path)),
    responses((status = 200, body = ActivateResponse), (status = 404, body = ErrorResponse),
        (status = 409, body = ErrorResponse)),
    security(("bearer" = [])))]
pub async fn rollback(
    State(state): State<AdminState>,
    Path(app): Path<String>,
) -> Result<Json<ActivateResponse>, ApiError> {
    let live_version = state.node.activate(&app, None).await?;
    Ok(Json(ActivateResponse { app, live_version }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct InvokeParams {
    /// Path the function sees (default: `/`).
    path: Option<String>,
    /// Method the function sees (default: `POST`).
    method: Option<String>,
    /// `async`: queue the call durably and answer 202 with its id at once;
    /// the function receives it as a CloudEvent, retried on failure.
    mode: Option<String>,
}

/// Calls a function synchronously and answers with its response. The
/// function is named `NAME`, or `APP/NAME` (URL-encoded) when several apps
/// have a function of that name.
#[utoipa::path(post, path = "/v1/functions/{function}/invocations",
    params(("function" = String, Path), InvokeParams),
    request_body(content = String, content_type = "application/octet-stream"),
    responses((status = 200, description = "the function's own response"),
        (status = 202, body = AsyncAccepted, description = "queued (mode=async)"),
        (status = 404, body = ErrorResponse), (status = 413, body = ErrorResponse),
        (status = 502, body = ErrorResponse), (status = 504, body = ErrorResponse)),
    security(("bearer" = [])))]
pub async fn invoke(
    State(state): State<AdminState>,
    Path(function): Path<String>,
    Query(params): Query<InvokeParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let target = state.node.find_function(&function)?;
    let id = new_invocation_id();
    if body.len() as u64 > target.max_body {
        let response = PlatformError::body_too_large(target.max_body).into_response(&id);
        return Ok(response.map(Body::new));
    }
    let method = match params.method.as_deref() {
        Some(m) => Method::from_bytes(m.to_ascii_uppercase().as_bytes())
            .map_err(|_| ApiError::bad_request(format!("\"{m}\" is not an HTTP method")))?,
        None => Method::POST,
    };
    let path = params.path.unwrap_or_else(|| "/".to_string());
    if !path.starts_with('/') {
        return Err(ApiError::bad_request(format!(
            "the path \"{path}\" must start with '/'"
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
                .submit(&target, path, content_type, body)
                .await?;
            let location = format!("/v1/events/{id}");
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
    let response = state
        .node
        .gateway()
        .invoke_buffered(&target, request, &id, stratus_ledger::Trigger::Api)
        .await;
    Ok(response.map(Body::new))
}

/// Unknown admin paths answer in the platform's error shape too.
pub async fn not_found(uri: http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no admin endpoint at {}; see /v1/openapi.json", uri.path()),
    )
}
