//! Namespaces in the API: `/v1/namespaces/{namespace}/…` is the namespace's
//! view of every area (`/v1/namespaces/team-a/apps`,
//! `…/functions/{function}/logs`, …), and `/v1/…` without it is the
//! `default` namespace's, as it was before namespaces existed.
//!
//! The namespace is taken off the path before routing ([`scope`]) and handed
//! to handlers as a request extension, so each area has one set of routes
//! and one OpenAPI operation per endpoint, and a handler cannot forget to
//! scope: every app it names is keyed through the namespace
//! (`common::app_key`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{FromRef, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::Uri;
use stratus_control::Node;
use stratus_manifest::{Namespace, split_key};

use crate::AdminState;
use crate::error::ApiError;
use crate::model::NamespaceSummary;

const PREFIX: &str = "/v1/namespaces/";

/// Takes `/namespaces/{namespace}` off a `/v1` path and hands the namespace
/// on; any other path is the default namespace's.
pub(crate) async fn scope(mut request: Request, next: Next) -> Response {
    let namespace = match request.uri().path().strip_prefix(PREFIX) {
        None => Namespace::default(),
        Some(rest) => {
            let (name, rest) = rest.split_once('/').unwrap_or((rest, ""));
            let namespace = match Namespace::new(name) {
                Ok(namespace) => namespace,
                Err(e) => return ApiError::bad_request(e.to_string()).into_response(),
            };
            let path = format!("/v1/{rest}");
            let uri = match request.uri().query() {
                Some(query) => format!("{path}?{query}"),
                None => path,
            };
            match uri.parse::<Uri>() {
                Ok(uri) => *request.uri_mut() = uri,
                Err(e) => return ApiError::bad_request(format!("bad path: {e}")).into_response(),
            }
            namespace
        }
    };
    request.extensions_mut().insert(namespace);
    next.run(request).await
}

/// The API path of `path` (under `/v1`) in `namespace`, for links in
/// answers (`Location`).
pub(crate) fn v1_path(namespace: &Namespace, path: &str) -> String {
    if namespace.is_default() {
        format!("/v1{path}")
    } else {
        format!("{PREFIX}{namespace}{path}")
    }
}

#[derive(Debug, Clone)]
pub struct NamespacesState {
    node: Arc<Node>,
}

impl FromRef<AdminState> for NamespacesState {
    fn from_ref(state: &AdminState) -> Self {
        NamespacesState {
            node: state.node.clone(),
        }
    }
}

pub(crate) fn router() -> Router<AdminState> {
    Router::new().route("/namespaces", get(list))
}

/// Lists the namespaces that hold apps, and `default` always, by name.
#[utoipa::path(get, tag = "namespaces", path = "/v1/namespaces", operation_id = "list_namespaces",
    responses((status = 200, body = [NamespaceSummary])),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<NamespacesState>,
) -> Result<Json<Vec<NamespaceSummary>>, ApiError> {
    let mut apps: BTreeMap<String, usize> = BTreeMap::new();
    apps.insert(Namespace::DEFAULT.to_owned(), 0);
    for app in state.node.apps().await? {
        *apps.entry(split_key(&app.name).0.to_owned()).or_default() += 1;
    }
    Ok(Json(
        apps.into_iter()
            .map(|(name, apps)| NamespaceSummary { name, apps })
            .collect(),
    ))
}
