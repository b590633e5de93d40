//! The audit log in the API: every change through `/v1` — and every
//! attempt at one that was refused — is appended before its answer goes
//! out ([`record`]), with who (token id, name, role), from where, what,
//! to what, how it ended and what it made (a version, digests, a token id).
//! `GET /v1/audit` reads it; nothing in the API changes or deletes an
//! entry, and the node ages entries out after `--audit-retention`.

use std::sync::Arc;

use axum::extract::{Extension, FromRef, MatchedPath, Query, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use http::{Method, StatusCode};
use serde::Deserialize;
use stratus_invoke::PeerAddr;
use stratus_manifest::Namespace;
use stratus_storage::{AuditEntry, AuditLog, AuditQuery, Role, now_ms};

use crate::AdminState;
use crate::auth::Principal;
use crate::common::{limit, parse_since};
use crate::error::{ApiError, ErrorCode};
use crate::model::{AuditRecord, ErrorBody};

/// What a handler adds to the entry of the change it made, in its
/// response's extensions: the target when the path does not name it (a
/// deploy names its app in the manifest), what was made, and whether it
/// was the node's rather than the namespace's (a node-wide token).
#[derive(Debug, Clone, Default)]
pub(crate) struct AuditNote {
    pub target: Option<String>,
    pub detail: String,
    pub node_wide: bool,
}

#[derive(Debug, Clone)]
pub struct AuditState {
    log: Arc<dyn AuditLog>,
}

impl FromRef<AdminState> for AuditState {
    fn from_ref(state: &AdminState) -> Self {
        AuditState {
            log: state.audit.clone(),
        }
    }
}

pub(crate) fn router() -> Router<AdminState> {
    Router::new().route("/audit", get(list))
}

/// The change `method` on `route` makes, if it makes one.
fn action(method: &Method, route: &str) -> Option<&'static str> {
    Some(match (method.as_str(), route) {
        ("POST", "/v1/apps") => "deploy",
        ("POST", "/v1/apps/{app}/versions/{version}/activate") => "activate",
        ("POST", "/v1/apps/{app}/rollback") => "rollback",
        ("PUT", "/v1/apps/{app}/traffic") => "traffic.set",
        ("DELETE", "/v1/apps/{app}") => "delete",
        ("PUT", "/v1/apps/{app}/secrets/{name}") => "secret.set",
        ("DELETE", "/v1/apps/{app}/secrets/{name}") => "secret.remove",
        ("POST", "/v1/tokens") => "token.create",
        ("DELETE", "/v1/tokens/{id}") => "token.revoke",
        ("POST", "/v1/functions/{function}/dead-letters/redrive") => "redrive",
        ("PUT", "/v1/quotas") => "quota.set",
        _ => return None,
    })
}

/// What the path names, by the route's parameters: `shop`,
/// `shop/stripe-key`, `shop v2`, a function, a token id.
fn target(route: &str, path: &str) -> String {
    // From the end: a nested router sees the path without its prefix.
    let mut values: Vec<&str> = route
        .rsplit('/')
        .zip(path.rsplit('/'))
        .filter(|(pattern, _)| pattern.starts_with('{'))
        .map(|(_, value)| value)
        .collect();
    values.reverse();
    match (route, values.as_slice()) {
        (r, [app, version]) if r.ends_with("/activate") => format!("{app} v{version}"),
        (_, values) => values.join("/"),
    }
}

/// Appends the entry of a change (or a refused attempt at one) before the
/// answer goes out. Runs outside the token check, so refusals are kept
/// too; the check leaves the [`Principal`] it found on the response.
pub async fn record(State(state): State<AuditState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let Some(action) = route.as_deref().and_then(|r| action(request.method(), r)) else {
        return next.run(request).await;
    };
    let route = route.unwrap_or_default();
    let path_target = target(&route, request.uri().path());
    let namespace = request
        .extensions()
        .get::<Namespace>()
        .cloned()
        .unwrap_or_default();
    let source = request
        .extensions()
        .get::<PeerAddr>()
        .map_or_else(String::new, |peer| peer.0.to_string());
    let response = next.run(request).await;

    let note = response
        .extensions()
        .get::<AuditNote>()
        .cloned()
        .unwrap_or_default();
    let (token_id, token_name, role) = match response.extensions().get::<Principal>() {
        Some(Principal::Node) => (
            "node".to_owned(),
            "node".to_owned(),
            Role::Admin.to_string(),
        ),
        Some(Principal::Token { id, name, role, .. }) => {
            (id.clone(), name.clone(), role.to_string())
        }
        None => (String::new(), String::new(), String::new()),
    };
    let status = response.status();
    let outcome = match response.extensions().get::<ErrorCode>() {
        _ if status.is_success() => "ok".to_owned(),
        Some(ErrorCode(code)) => (*code).to_owned(),
        None => status.as_str().to_owned(),
    };
    let entry = AuditEntry {
        time: now_ms(),
        namespace: (!note.node_wide).then(|| namespace.to_string()),
        token_id,
        token_name,
        role,
        source,
        action: action.to_owned(),
        target: note.target.unwrap_or(path_target),
        status: status.as_u16(),
        outcome,
        detail: note.detail,
    };
    if let Err(e) = state.log.append(entry.clone()).await {
        // The change is made; say loudly that its record is not.
        tracing::error!(
            action = %entry.action, target = %entry.target, namespace = ?entry.namespace,
            token = %entry.token_id, status = entry.status,
            "cannot append to the audit log: {e}"
        );
    }
    response
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AuditParams {
    /// A duration back from now ("24h") or an RFC 3339 time.
    since: Option<String>,
    /// The newest this many entries (default 100, at most 10000).
    limit: Option<usize>,
    /// The node's own entries (node-wide tokens) instead of the namespace's.
    #[serde(default)]
    node_wide: bool,
}

/// The namespace's audit log, oldest first: every change through the API
/// and every refused attempt at one.
#[utoipa::path(get, tag = "audit", path = "/v1/audit", operation_id = "list_audit",
    params(AuditParams),
    responses((status = 200, body = [AuditRecord]), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AuditState>,
    Extension(namespace): Extension<Namespace>,
    Extension(principal): Extension<Principal>,
    Query(params): Query<AuditParams>,
) -> Result<Json<Vec<AuditRecord>>, ApiError> {
    if params.node_wide && !principal.node_wide(Role::Admin) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the node's own audit entries are read with the node's token or a node-wide admin token",
        ));
    }
    let limit = limit(params.limit)?;
    let since = parse_since(params.since.as_deref())?.map(|t| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    });
    let query = AuditQuery {
        namespace: Some((!params.node_wide).then(|| namespace.to_string())),
        since,
        limit,
    };
    let entries = state.log.list(query).await.map_err(|e| match e {
        stratus_storage::AuditError::Unavailable(_) => {
            ApiError::retry_later("store_unavailable", e.to_string())
        }
        stratus_storage::AuditError::Backend(_) => {
            tracing::error!("audit log failed: {e}");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
        }
    })?;
    Ok(Json(entries.into_iter().map(AuditRecord::from).collect()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_target_is_what_the_path_names() {
        let cases = [
            ("/v1/apps/{app}/rollback", "/apps/shop/rollback", "shop"),
            (
                "/v1/apps/{app}/versions/{version}/activate",
                "/v1/apps/shop/versions/3/activate",
                "shop v3",
            ),
            (
                "/v1/apps/{app}/secrets/{name}",
                "/apps/shop/secrets/stripe",
                "shop/stripe",
            ),
            ("/v1/tokens/{id}", "/tokens/abc", "abc"),
            ("/v1/apps", "/apps", ""),
        ];
        for (route, path, want) in cases {
            assert_eq!(super::target(route, path), want, "{route} {path}");
        }
    }
}
