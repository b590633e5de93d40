//! An app's traffic: its canary, the split between versions, and the
//! history of its rollouts ([`stratus_control::canary`]).

use std::time::Duration;

use axum::extract::{Extension, Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use stratus_control::{CanaryPlan, SplitRequest, TrafficReport};
use stratus_manifest::Namespace;
use stratus_storage::{RolloutPolicy, Sticky};
use utoipa::ToSchema;

use crate::AdminState;
use crate::apps::AppsState;
use crate::audit::AuditNote;
use crate::auth::Principal;
use crate::common::{app_key, json_object};
use crate::error::ApiError;
use crate::model::ErrorBody;

pub(crate) fn router() -> Router<AdminState> {
    Router::new().route("/apps/{app}/traffic", get(show).put(set))
}

/// How a canary runs, whichever way it starts (a deploy's query, a
/// split's body). Absent fields take the defaults.
#[derive(Debug, Default, Clone)]
pub(crate) struct CanaryFields {
    pub steps: Vec<u8>,
    pub interval_secs: Option<u64>,
    pub sticky_header: Option<String>,
    pub sticky_cookie: Option<String>,
    pub max_error_rate_increase: Option<f64>,
    pub max_p99_ratio: Option<f64>,
    pub min_requests: Option<u64>,
}

impl CanaryFields {
    /// The plan, for a canary at `percent`; checked by the control plane.
    pub(crate) fn plan(self, percent: u8) -> Result<CanaryPlan, ApiError> {
        let defaults = CanaryPlan::default();
        let policy = RolloutPolicy::default();
        let sticky = match (self.sticky_header, self.sticky_cookie) {
            (Some(_), Some(_)) => {
                return Err(ApiError::new(
                    http::StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_traffic",
                    "a canary is sticky by a header or by a cookie, not both",
                ));
            }
            (Some(header), None) => Some(Sticky::Header(header)),
            (None, Some(cookie)) => Some(Sticky::Cookie(cookie)),
            (None, None) => None,
        };
        Ok(CanaryPlan {
            percent,
            steps: self.steps,
            interval: self
                .interval_secs
                .map_or(defaults.interval, Duration::from_secs),
            sticky,
            policy: RolloutPolicy {
                max_error_rate_increase: self
                    .max_error_rate_increase
                    .unwrap_or(policy.max_error_rate_increase),
                max_p99_ratio: self.max_p99_ratio.unwrap_or(policy.max_p99_ratio),
                min_requests: self.min_requests.unwrap_or(policy.min_requests),
            },
        })
    }
}

/// A deploy query's `steps`: shares in percent (0 to 100, written
/// plainly), separated by commas.
pub(crate) const STEPS_PATTERN: &str = "^(100|[1-9]?[0-9])(,(100|[1-9]?[0-9]))*$";

/// Whether `steps` is what [`STEPS_PATTERN`] says.
pub(crate) fn valid_steps(steps: &str) -> bool {
    steps.split(',').all(|s| {
        s.parse::<u8>()
            .is_ok_and(|n| n <= 100 && s == n.to_string())
    })
}

/// Reads a deploy query's `steps` ("50,100"); whether they make a plan
/// is the control plane's to say.
pub(crate) fn parse_steps(steps: Option<&str>) -> Result<Vec<u8>, ApiError> {
    let Some(steps) = steps else {
        return Ok(Vec::new());
    };
    if !valid_steps(steps) {
        return Err(ApiError::bad_request(format!(
            "steps: {steps:?} is not shares in percent separated by commas, like \"50,100\""
        )));
    }
    Ok(steps.split(',').filter_map(|s| s.parse().ok()).collect())
}

/// One version's share of an app's requests.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SplitEntry {
    #[schema(minimum = 1)]
    pub version: u32,
    #[schema(minimum = 0, maximum = 100)]
    pub percent: u8,
}

/// A split to serve: one version at 100 (it alone, live), or two summing
/// to 100 — the live one (else the larger share) stable, the other its
/// canary — with how the canary runs.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrafficBody {
    #[schema(min_items = 1, max_items = 2)]
    pub split: Vec<SplitEntry>,
    /// Shares the canary moves to, one per interval without a breach;
    /// 100 promotes it. None: it stays at its share.
    #[serde(default)]
    pub steps: Vec<u8>,
    /// Seconds per step (default 60).
    pub interval_secs: Option<u64>,
    /// Keep a client on one side by this request header's value.
    pub sticky_header: Option<String>,
    /// Or by this cookie's.
    pub sticky_cookie: Option<String>,
    /// Percentage points of errors the canary may have above the stable
    /// version (default 2).
    pub max_error_rate_increase: Option<f64>,
    /// How many times the stable version's p99 the canary's may be
    /// (default 1.5).
    pub max_p99_ratio: Option<f64>,
    /// Requests per step before the canary is judged (default 20).
    pub min_requests: Option<u64>,
}

/// The app's split, its canary with this node's measure of the current
/// step, and its rollouts' history.
#[utoipa::path(get, tag = "handlers", path = "/v1/apps/{app}/traffic", operation_id = "show_traffic",
    params(("app" = String, Path)),
    responses((status = 200, body = TrafficReport), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn show(
    State(state): State<AppsState>,
    Extension(namespace): Extension<Namespace>,
    Path(app): Path<String>,
) -> Result<Json<TrafficReport>, ApiError> {
    let app = app_key(&namespace, &app)?;
    Ok(Json(state.node.traffic(&app).await?))
}

/// Sets the split between versions: makes one version live alone, or
/// starts or changes a canary beside the live one.
#[utoipa::path(put, tag = "handlers", path = "/v1/apps/{app}/traffic", operation_id = "set_traffic",
    params(("app" = String, Path)),
    request_body = TrafficBody,
    responses((status = 200, body = TrafficReport), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn set(
    State(state): State<AppsState>,
    Extension(namespace): Extension<Namespace>,
    Extension(principal): Extension<Principal>,
    Path(app): Path<String>,
    body: axum::body::Bytes,
) -> Result<(Extension<AuditNote>, Json<TrafficReport>), ApiError> {
    let app = app_key(&namespace, &app)?;
    let body: TrafficBody = json_object(&body, "a traffic split")?;
    let split: Vec<(u32, u8)> = body.split.iter().map(|e| (e.version, e.percent)).collect();
    let fields = CanaryFields {
        steps: body.steps,
        interval_secs: body.interval_secs,
        sticky_header: body.sticky_header,
        sticky_cookie: body.sticky_cookie,
        max_error_rate_increase: body.max_error_rate_increase,
        max_p99_ratio: body.max_p99_ratio,
        min_requests: body.min_requests,
    };
    // The share comes from the split; the plan is checked there.
    let plan = fields.plan(CanaryPlan::default().percent)?;
    let request = SplitRequest {
        split: split.clone(),
        plan,
        by: principal.name().to_owned(),
    };
    let report = state.node.set_split(&app, request).await?;
    let described: Vec<String> = split.iter().map(|(v, p)| format!("v{v}={p}")).collect();
    let note = AuditNote {
        target: None,
        detail: described.join(" "),
        node_wide: false,
    };
    Ok((Extension(note), Json(report)))
}
