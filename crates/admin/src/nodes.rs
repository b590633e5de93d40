//! The platform's nodes: this one alone, or every node of the cluster that
//! said it was alive lately, with its load.

use std::sync::Arc;

use axum::extract::{Extension, FromRef, Path, State};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use stratus_control::Node;
use stratus_manifest::Namespace;
use stratus_storage::{NodeDirectory, NodesError};

use crate::AdminState;
use crate::common::app_key;
use crate::error::ApiError;
use crate::model::{ErrorBody, NodeInfo, Rollout, RolloutNode};

#[derive(Debug, Clone)]
pub struct NodesState {
    nodes: Arc<dyn NodeDirectory>,
    node: Arc<Node>,
}

impl FromRef<AdminState> for NodesState {
    fn from_ref(state: &AdminState) -> Self {
        NodesState {
            nodes: state.nodes.clone(),
            node: state.node.clone(),
        }
    }
}

pub(crate) fn router() -> Router<AdminState> {
    Router::new()
        .route("/nodes", get(list))
        .route("/apps/{app}/rollout", get(rollout))
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
#[utoipa::path(get, tag = "nodes", path = "/v1/nodes", operation_id = "list_nodes",
    responses((status = 200, body = [NodeInfo]), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(State(state): State<NodesState>) -> Result<Json<Vec<NodeInfo>>, ApiError> {
    let nodes = state.nodes.nodes().await?;
    Ok(Json(nodes.into_iter().map(NodeInfo::from).collect()))
}

/// Shows which version of an app each node serves: a deploy is rolled out
/// once every node serves the live version (`stratus deploy --wait`).
#[utoipa::path(get, tag = "nodes", path = "/v1/apps/{app}/rollout", params(("app" = String, Path)),
    responses((status = 200, body = Rollout), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn rollout(
    State(state): State<NodesState>,
    Extension(namespace): Extension<Namespace>,
    Path(app): Path<String>,
) -> Result<Json<Rollout>, ApiError> {
    let app = app_key(&namespace, &app)?;
    let live_version = state.node.app(&app).await?.live_version;
    let nodes: Vec<RolloutNode> = state
        .nodes
        .nodes()
        .await?
        .into_iter()
        .map(|n| RolloutNode {
            version: n.apps.get(&app).copied(),
            id: n.id,
            hostname: n.hostname,
        })
        .collect();
    let complete = !nodes.is_empty() && nodes.iter().all(|n| n.version == live_version);
    Ok(Json(Rollout {
        app,
        live_version,
        nodes,
        complete,
    }))
}
