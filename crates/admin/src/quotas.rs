//! Namespaces' quotas and money budgets: read by the namespace, set only by
//! the node's operators (the node's token or a node-wide admin), so a team
//! cannot raise its own.

use std::sync::Arc;

use axum::extract::{Extension, FromRef, State};
use axum::routing::get;
use axum::{Json, Router};
use stratus_control::Node;
use stratus_manifest::Namespace;
use stratus_storage::{Budget, BudgetStatus, Ledger, Quotas};

use crate::AdminState;
use crate::audit::AuditNote;
use crate::common::json_object;
use crate::error::ApiError;
use crate::model::{ErrorBody, QuotasView};

#[derive(Debug, Clone)]
pub struct QuotasState {
    node: Arc<Node>,
    ledger: Option<Arc<Ledger>>,
}

impl FromRef<AdminState> for QuotasState {
    fn from_ref(state: &AdminState) -> Self {
        QuotasState {
            node: state.node.clone(),
            ledger: state.ledger.clone(),
        }
    }
}

pub(crate) fn router() -> Router<AdminState> {
    Router::new().route("/quotas", get(show).put(set))
}

/// The namespace's budget status, when it has a budget and the node meters.
pub(crate) async fn budget_status(
    ledger: &Option<Arc<Ledger>>,
    namespace: &Namespace,
    quotas: &Quotas,
) -> Result<Option<BudgetStatus>, ApiError> {
    let (Some(ledger), Some(budget)) = (ledger, &quotas.budget) else {
        return Ok(None);
    };
    let status =
        BudgetStatus::read(ledger, namespace.name(), budget, |app| namespace.owns(app)).await?;
    Ok(Some(status))
}

/// The namespace's quotas, what it uses of them, and its budget this period.
#[utoipa::path(get, tag = "quotas", path = "/v1/quotas", operation_id = "show_quotas",
    responses((status = 200, body = QuotasView), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn show(
    State(state): State<QuotasState>,
    Extension(namespace): Extension<Namespace>,
) -> Result<Json<QuotasView>, ApiError> {
    let quotas = state.node.quotas(&namespace).await?;
    let (apps, functions) = state.node.namespace_use(&namespace).await?;
    let budget = budget_status(&state.ledger, &namespace, &quotas).await?;
    Ok(Json(QuotasView {
        namespace: namespace.to_string(),
        quotas,
        apps,
        functions,
        budget,
    }))
}

/// Replaces the namespace's quotas whole (an empty object lifts them all).
/// Only the node's token or a node-wide admin may.
#[utoipa::path(put, tag = "quotas", path = "/v1/quotas", operation_id = "set_quotas",
    request_body(content = Quotas, description = "the namespace's quotas; those left out are unlimited"),
    responses((status = 200, body = QuotasView), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn set(
    State(state): State<QuotasState>,
    Extension(namespace): Extension<Namespace>,
    body: axum::body::Bytes,
) -> Result<(Extension<AuditNote>, Json<QuotasView>), ApiError> {
    let quotas: Quotas = json_object(&body, "quotas")?;
    check(&quotas)?;
    state.node.set_quotas(&namespace, quotas.clone()).await?;
    tracing::info!(namespace = %namespace, ?quotas, "quotas set");
    let note = AuditNote {
        target: Some(namespace.to_string()),
        detail: serde_json::to_string(&quotas).unwrap_or_default(),
        node_wide: false,
    };
    let Json(view) = show(State(state), Extension(namespace)).await?;
    Ok((Extension(note), Json(view)))
}

/// Quotas that cannot be met or mean nothing are refused, naming which.
fn check(quotas: &Quotas) -> Result<(), ApiError> {
    let zero = [
        ("max_apps", quotas.max_apps == Some(0)),
        ("max_functions", quotas.max_functions == Some(0)),
        ("max_memory", quotas.max_memory == Some(0)),
        ("max_concurrency", quotas.max_concurrency == Some(0)),
        ("requests_per_second", quotas.requests_per_second == Some(0)),
    ];
    if let Some((name, _)) = zero.iter().find(|(_, zero)| *zero) {
        return Err(ApiError::bad_request(format!(
            "{name} must be at least 1; leave it out for no limit"
        )));
    }
    if let Some(budget) = &quotas.budget
        && !(budget.amount.is_finite() && budget.amount >= Budget::MIN_AMOUNT)
    {
        return Err(ApiError::bad_request(format!(
            "budget.amount must be at least {}",
            Budget::MIN_AMOUNT
        )));
    }
    Ok(())
}
