//! Usage: requests, GB-seconds, CPU-seconds and cost per function, priced
//! with the node's price sheet, from the ledger.

use std::sync::Arc;

use axum::extract::{Extension, FromRef, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use stratus_manifest::Namespace;
use stratus_storage::{Ledger, UsageQuery};

use crate::AdminState;
use crate::common::{app_filter, metered, parse_since};
use crate::error::ApiError;
use crate::model::{ErrorBody, UsageReport};

/// The ledger, when the node keeps one (metering on).
#[derive(Debug, Clone)]
pub struct UsageState {
    ledger: Option<Arc<Ledger>>,
    node: Arc<stratus_control::Node>,
}

impl FromRef<AdminState> for UsageState {
    fn from_ref(state: &AdminState) -> Self {
        UsageState {
            ledger: state.ledger.clone(),
            node: state.node.clone(),
        }
    }
}

pub(crate) fn router() -> Router<AdminState> {
    Router::new().route("/usage", get(usage))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct UsageParams {
    /// Only this app.
    app: Option<String>,
    /// A duration back from now ("24h") or an RFC 3339 time; default: all
    /// usage kept.
    since: Option<String>,
}

/// Requests, GB-seconds, CPU-seconds and cost per function.
#[utoipa::path(get, tag = "ledger", path = "/v1/usage", params(UsageParams),
    responses((status = 200, body = UsageReport), (status = 400, body = ErrorBody),
        (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn usage(
    State(state): State<UsageState>,
    Extension(namespace): Extension<Namespace>,
    Query(params): Query<UsageParams>,
) -> Result<Json<UsageReport>, ApiError> {
    let ledger = metered(&state.ledger)?;
    let app = app_filter(&namespace, params.app.as_deref())?;
    let query = UsageQuery {
        app,
        since: parse_since(params.since.as_deref())?,
    };
    let report = ledger
        .usage(query)
        .await?
        .retain_apps(|app| namespace.owns(app));
    let mut report = UsageReport::from(report);
    // Against the namespace's budget, whatever period was asked for.
    let quotas = state.node.quotas(&namespace).await?;
    report.budget = crate::quotas::budget_status(&state.ledger, &namespace, &quotas).await?;
    Ok(Json(report))
}
