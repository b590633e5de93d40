//! The platform's nodes: this one alone, or every node of the cluster that
//! said it was alive lately, with its load.

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use stratus_storage::{NodeDirectory, NodesError};

use crate::AdminState;
use crate::error::ApiError;
use crate::model::{ErrorBody, NodeInfo};

#[derive(Debug, Clone)]
pub struct NodesState {
    nodes: Arc<dyn NodeDirectory>,
}

impl FromRef<AdminState> for NodesState {
    fn from_ref(state: &AdminState) -> Self {
        NodesState {
            nodes: state.nodes.clone(),
        }
    }
}

pub(crate) fn router() -> Router<AdminState> {
    Router::new().route("/nodes", get(list))
}

impl From<NodesError> for ApiError {
    fn from(e: NodesError) -> Self {
        let mut error = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            e.to_string(),
        );
        error.retry_after = Some(crate::error::STORE_RETRY_AFTER_SECS);
        error
    }
}

/// Lists the nodes serving the platform, ordered by id.
#[utoipa::path(get, tag = "nodes", path = "/v1/nodes",
    responses((status = 200, body = [NodeInfo]), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(State(state): State<NodesState>) -> Result<Json<Vec<NodeInfo>>, ApiError> {
    let nodes = state.nodes.nodes().await?;
    Ok(Json(nodes.into_iter().map(NodeInfo::from).collect()))
}
