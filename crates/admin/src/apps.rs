//! Apps and versions: deploy, list, show, delete, activate a version, roll
//! back. Everything here is an operation of the control plane
//! ([`Node`]); the handlers translate HTTP to it and its errors back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Extension, FromRef, Path, Query, Request, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::StatusCode;
use serde::Deserialize;
use stratus_control::{DeployInProgress, DeployPolicy, Node};
use stratus_manifest::Namespace;
use stratus_runtime::Tier;

use crate::AdminState;
use crate::audit::AuditNote;
use crate::auth::Principal;
use crate::common::app_key;
use crate::error::ApiError;
use crate::model::{
    ActivateResponse, AppDetail, AppSummary, DeployResponse, ErrorBody, FunctionInfo,
    VersionSummary,
};
use crate::traffic::{CanaryFields, parse_steps};
use crate::upload::{deploy_form, read_upload};

/// What the apps area needs: the control plane, and how large an upload it
/// takes.
#[derive(Debug, Clone)]
pub struct AppsState {
    pub(crate) node: Arc<Node>,
    max_upload: usize,
}

impl FromRef<AdminState> for AppsState {
    fn from_ref(state: &AdminState) -> Self {
        AppsState {
            node: state.node.clone(),
            max_upload: state.max_upload,
        }
    }
}

pub(crate) fn router() -> Router<AdminState> {
    Router::new()
        .route("/apps", get(list_apps).post(deploy))
        .route("/apps/{app}", get(show_app).delete(delete_app))
        .route("/apps/{app}/versions", get(list_versions))
        .route(
            "/apps/{app}/versions/{version}/activate",
            post(activate_version),
        )
        .route("/apps/{app}/rollback", post(rollback))
        .route("/deploys", get(deploys_in_progress))
}

/// Creates and activates a new version of the app named in the manifest.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct DeployParams {
    /// Refuse the version (409 `capabilities_gained`, nothing stored) if
    /// it gains any capability over the live one: a new import, outbound
    /// host, key-value bucket, secret, config key, trigger, route, function
    /// or a larger limit.
    #[serde(default)]
    require_no_new_capabilities: bool,
    /// Serve the version as a canary with this share of the app's
    /// requests (1 to 99 percent) beside the live version, which stays
    /// live; it is judged against it and rolled back on a breach.
    #[param(minimum = 1, maximum = 99)]
    canary: Option<u8>,
    /// The canary's later shares, comma-separated ("50,100"): one per
    /// interval without a breach; 100 promotes it.
    steps: Option<String>,
    /// Seconds per step (default 60).
    interval_secs: Option<u64>,
    /// Keep a client on one version by this request header's value.
    sticky_header: Option<String>,
    /// Or by this cookie's.
    sticky_cookie: Option<String>,
    /// Percentage points of errors the canary may have above the stable
    /// version (default 2).
    max_error_rate_increase: Option<f64>,
    /// How many times the stable version's p99 the canary's may be
    /// (default 1.5).
    max_p99_ratio: Option<f64>,
    /// Requests per step before the canary is judged (default 20).
    min_requests: Option<u64>,
}

#[utoipa::path(post, tag = "handlers", path = "/v1/apps", params(DeployParams),
    request_body(content = crate::model::DeployForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, body = DeployResponse),
        (status = 409, description = "a route is served by another app, or the version gains capabilities and the deploy asked for none", body = ErrorBody),
        (status = 413, description = "the upload, or its manifest (256 KiB at most), is too large", body = ErrorBody),
        (status = 422, description = "invalid manifest or component", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn deploy(
    State(state): State<AppsState>,
    Extension(namespace): Extension<Namespace>,
    Extension(principal): Extension<Principal>,
    Query(params): Query<DeployParams>,
    request: Request,
) -> Result<(StatusCode, Extension<AuditNote>, Json<DeployResponse>), ApiError> {
    let started = Instant::now();
    let mut upload = read_upload(deploy_form(request).await?, state.max_upload).await?;
    upload.namespace = namespace;
    let receive_ms = started.elapsed().as_secs_f64() * 1000.0;
    let canary = match params.canary {
        Some(percent) => Some(
            CanaryFields {
                steps: parse_steps(params.steps.as_deref())?,
                interval_secs: params.interval_secs,
                sticky_header: params.sticky_header,
                sticky_cookie: params.sticky_cookie,
                max_error_rate_increase: params.max_error_rate_increase,
                max_p99_ratio: params.max_p99_ratio,
                min_requests: params.min_requests,
            }
            .plan(percent)?,
        ),
        None => None,
    };
    let policy = DeployPolicy {
        require_no_new_capabilities: params.require_no_new_capabilities,
        canary,
        by: principal.name().to_owned(),
    };
    let report = state.node.deploy_with(upload, policy).await?;
    let digests: Vec<String> = report
        .functions
        .iter()
        .map(|f| format!("{} sha256:{}", f.name, f.sha256))
        .collect();
    let note = AuditNote {
        target: Some(report.app.clone()),
        detail: format!("version {}: {}", report.version, digests.join(", ")),
        node_wide: false,
    };
    let mut response = DeployResponse::from(report);
    response.timings.receive_ms = receive_ms;
    Ok((StatusCode::CREATED, Extension(note), Json(response)))
}

/// Deploys being compiled or committed now, function by function: what a
/// client waiting on its deploy shows meanwhile. A deploy leaves the list
/// when its own answer is sent.
#[utoipa::path(get, tag = "handlers", path = "/v1/deploys",
    responses((status = 200, body = [DeployInProgress])),
    security(("bearer" = [])))]
pub async fn deploys_in_progress(
    State(state): State<AppsState>,
    Extension(namespace): Extension<Namespace>,
) -> Json<Vec<DeployInProgress>> {
    Json(state.node.deploys_in_progress(|app| namespace.owns(app)))
}

/// Lists apps.
#[utoipa::path(get, tag = "handlers", path = "/v1/apps", responses((status = 200, body = [AppSummary])),
    security(("bearer" = [])))]
pub async fn list_apps(
    State(state): State<AppsState>,
    Extension(namespace): Extension<Namespace>,
) -> Result<Json<Vec<AppSummary>>, ApiError> {
    let apps = state.node.apps().await?;
    let tiers = app_tiers(&state.node);
    Ok(Json(
        apps.into_iter()
            .filter(|a| namespace.owns(&a.name))
            .map(|a| {
                let tier = tiers.get(&a.name).map(|t| t.name().to_owned());
                AppSummary {
                    tier,
                    ..AppSummary::from(a)
                }
            })
            .collect(),
    ))
}

/// Each app's code tier on this node: the lower of its resident live
/// functions' (baseline while any waits for its optimized code).
fn app_tiers(node: &Node) -> HashMap<String, Tier> {
    let mut tiers = HashMap::new();
    for function in node.live_functions(None) {
        if let Some(tier) = function.function.tier() {
            tiers
                .entry(function.app.clone())
                .and_modify(|t: &mut Tier| *t = (*t).min(tier))
                .or_insert(tier);
        }
    }
    tiers
}

/// Shows an app with the functions and routes of its live version.
#[utoipa::path(get, tag = "handlers", path = "/v1/apps/{app}", params(("app" = String, Path)),
    responses((status = 200, body = AppDetail), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn show_app(
    State(state): State<AppsState>,
    Extension(namespace): Extension<Namespace>,
    Path(app): Path<String>,
) -> Result<Json<AppDetail>, ApiError> {
    let app = app_key(&namespace, &app)?;
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
    let tier = app_tiers(&state.node)
        .get(&record.name)
        .map(|t| t.name().to_owned());
    Ok(Json(AppDetail {
        app: AppSummary {
            tier,
            ..record.into()
        },
        functions,
    }))
}

/// Deletes an app and all its versions.
#[utoipa::path(delete, tag = "handlers", path = "/v1/apps/{app}", params(("app" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_app(
    State(state): State<AppsState>,
    Extension(namespace): Extension<Namespace>,
    Path(app): Path<String>,
) -> Result<StatusCode, ApiError> {
    let app = app_key(&namespace, &app)?;
    state.node.delete_app(&app).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists an app's versions, newest first.
#[utoipa::path(get, tag = "handlers", path = "/v1/apps/{app}/versions", params(("app" = String, Path)),
    responses((status = 200, body = [VersionSummary]), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_versions(
    State(state): State<AppsState>,
    Extension(namespace): Extension<Namespace>,
    Path(app): Path<String>,
) -> Result<Json<Vec<VersionSummary>>, ApiError> {
    let app = app_key(&namespace, &app)?;
    let versions = state.node.versions(&app).await?;
    Ok(Json(
        versions.into_iter().map(VersionSummary::from).collect(),
    ))
}

/// Makes a given version live, atomically.
#[utoipa::path(post, tag = "handlers", path = "/v1/apps/{app}/versions/{version}/activate",
    params(("app" = String, Path), ("version" = u32, Path)),
    responses((status = 200, body = ActivateResponse), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn activate_version(
    State(state): State<AppsState>,
    Extension(namespace): Extension<Namespace>,
    Path((app, version)): Path<(String, u32)>,
) -> Result<(Extension<AuditNote>, Json<ActivateResponse>), ApiError> {
    let app = app_key(&namespace, &app)?;
    let live_version = state.node.activate(&app, Some(version)).await?;
    Ok((
        live_note(live_version),
        Json(ActivateResponse { app, live_version }),
    ))
}

/// Makes the version before the live one live again.
#[utoipa::path(post, tag = "handlers", path = "/v1/apps/{app}/rollback", params(("app" = String, Path)),
    responses((status = 200, body = ActivateResponse), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn rollback(
    State(state): State<AppsState>,
    Extension(namespace): Extension<Namespace>,
    Path(app): Path<String>,
) -> Result<(Extension<AuditNote>, Json<ActivateResponse>), ApiError> {
    let app = app_key(&namespace, &app)?;
    let live_version = state.node.activate(&app, None).await?;
    Ok((
        live_note(live_version),
        Json(ActivateResponse { app, live_version }),
    ))
}

/// The audit log's note of a version made live.
fn live_note(version: u32) -> Extension<AuditNote> {
    Extension(AuditNote {
        detail: format!("version {version} live"),
        ..AuditNote::default()
    })
}
