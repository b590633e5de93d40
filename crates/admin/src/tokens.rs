//! Scoped tokens: create (shown once), list, revoke. A namespace's admins
//! manage its tokens; node-wide tokens are made and seen only by the node's
//! own token and node-wide admins.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Extension, FromRef, Path, Query, State};
use axum::routing::{delete, get};
use axum::{Json, Router};
use http::StatusCode;
use serde::Deserialize;
use stratus_manifest::Namespace;
use stratus_storage::{Role, TokenRecord, TokenStore, now_ms};

use crate::AdminState;
use crate::audit::AuditNote;
use crate::auth::{Principal, TOKEN_PREFIX, hash};
use crate::common::{json_object, parse_span};
use crate::error::ApiError;
use crate::model::{CreateToken, ErrorBody, TokenCreated, TokenInfo, WhoAmI};

/// A token's lifetime: 1 to 9999 seconds, minutes, hours or days (a span,
/// [`parse_span`], without a leading zero): long enough for any pipeline,
/// short enough that a forgotten token ends.
pub(crate) const LIFETIME_PATTERN: &str = "^[1-9][0-9]{0,3}[smhd]$";
const MAX_NAME: usize = 64;

/// A lifetime following [`LIFETIME_PATTERN`].
pub(crate) fn lifetime(text: &str) -> Option<Duration> {
    if text.starts_with('0') || text.len() > 5 {
        return None;
    }
    parse_span(text)
}

#[derive(Debug, Clone)]
pub struct TokensState {
    tokens: Arc<dyn TokenStore>,
}

impl FromRef<AdminState> for TokensState {
    fn from_ref(state: &AdminState) -> Self {
        TokensState {
            tokens: state.tokens.clone(),
        }
    }
}

pub(crate) fn router() -> Router<AdminState> {
    Router::new()
        .route("/tokens", get(list).post(create))
        .route("/tokens/{id}", delete(revoke))
        .route("/whoami", get(whoami))
}

/// The token the request was made with: its name, role and namespace (any
/// valid token may ask, whatever namespace the path names).
#[utoipa::path(get, tag = "tokens", path = "/v1/whoami",
    responses((status = 200, body = WhoAmI), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn whoami(Extension(principal): Extension<Principal>) -> Json<WhoAmI> {
    Json(match principal {
        Principal::Node => WhoAmI {
            name: "node".to_owned(),
            role: Role::Admin.to_string(),
            namespace: None,
        },
        Principal::Token {
            name,
            namespace,
            role,
            ..
        } => WhoAmI {
            name,
            role: role.to_string(),
            namespace: namespace.map(|n| n.to_string()),
        },
    })
}

/// The scope a request names: the node (`node_wide`) or its namespace,
/// refused when the principal may not manage node-wide tokens.
fn scope(
    principal: &Principal,
    namespace: &Namespace,
    node_wide: bool,
) -> Result<Option<String>, ApiError> {
    if !node_wide {
        return Ok(Some(namespace.to_string()));
    }
    if principal.node_wide(Role::Admin) {
        Ok(None)
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "node-wide tokens are managed with the node's token or a node-wide admin token",
        ))
    }
}

/// Creates a token and answers it, once: the node keeps only a salted
/// hash of its secret.
#[utoipa::path(post, tag = "tokens", path = "/v1/tokens", operation_id = "create_token",
    request_body = CreateToken,
    responses((status = 201, body = TokenCreated), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<TokensState>,
    Extension(namespace): Extension<Namespace>,
    Extension(principal): Extension<Principal>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Extension<AuditNote>, Json<TokenCreated>), ApiError> {
    let body: CreateToken = json_object(&body, "a token to create")?;
    let scope = scope(&principal, &namespace, body.node_wide)?;
    let name = body.name.as_str();
    let length = name.chars().count();
    if length == 0 || length > MAX_NAME || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "a token's name is 1 to {MAX_NAME} characters without control characters"
        )));
    }
    let role: Role = body.role.parse().map_err(ApiError::bad_request)?;
    let now = now_ms();
    let expires_at = match body.expires.as_deref() {
        None => None,
        Some(text) => {
            let lifetime = lifetime(text).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "expires \"{text}\" is not a lifetime: a whole number from 1 to 9999 and s, m, h or d, such as \"30d\" or \"12h\""
                    ))
                })?;
            Some(now.saturating_add(lifetime.as_millis() as i64))
        }
    };
    let id = hex::encode(rand::random::<[u8; 8]>());
    let secret = hex::encode(rand::random::<[u8; 32]>());
    let salt = hex::encode(rand::random::<[u8; 16]>());
    let record = TokenRecord {
        id: id.clone(),
        name: name.to_owned(),
        namespace: scope,
        role,
        hash: hash(&salt, &secret),
        salt,
        created_at: now,
        expires_at,
        last_used_at: None,
    };
    state.tokens.create(record.clone()).await?;
    tracing::info!(token = %id, name, role = %role, namespace = ?record.namespace, "token created");
    let note = AuditNote {
        target: Some(id.clone()),
        detail: format!("{} token \"{}\"", role, record.name),
        node_wide: record.namespace.is_none(),
    };
    Ok((
        StatusCode::CREATED,
        Extension(note),
        Json(TokenCreated {
            token: format!("{TOKEN_PREFIX}{id}_{secret}"),
            info: TokenInfo::from(record),
        }),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListParams {
    /// The node-wide tokens instead of the namespace's.
    #[serde(default)]
    node_wide: bool,
}

/// Lists the namespace's tokens (or the node-wide ones), oldest first,
/// without their secrets.
#[utoipa::path(get, tag = "tokens", path = "/v1/tokens", operation_id = "list_tokens",
    params(ListParams),
    responses((status = 200, body = [TokenInfo]), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<TokensState>,
    Extension(namespace): Extension<Namespace>,
    Extension(principal): Extension<Principal>,
    Query(params): Query<ListParams>,
) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    let scope = scope(&principal, &namespace, params.node_wide)?;
    let tokens = state.tokens.list(scope.as_deref()).await?;
    Ok(Json(tokens.into_iter().map(TokenInfo::from).collect()))
}

/// Revokes a token of the namespace (or a node-wide one) at once, on
/// every node.
#[utoipa::path(delete, tag = "tokens", path = "/v1/tokens/{id}", operation_id = "revoke_token",
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn revoke(
    State(state): State<TokensState>,
    Extension(namespace): Extension<Namespace>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Extension<AuditNote>), ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "token_not_found",
            format!("namespace \"{namespace}\" has no token \"{id}\""),
        )
    };
    let record = state.tokens.get(&id).await?.ok_or_else(not_found)?;
    let yours = match &record.namespace {
        Some(own) => own == namespace.name(),
        None => principal.node_wide(Role::Admin),
    };
    if !yours {
        return Err(not_found());
    }
    if !state.tokens.revoke(&id).await? {
        return Err(not_found());
    }
    tracing::info!(token = %id, name = %record.name, "token revoked");
    let note = AuditNote {
        target: Some(id),
        detail: format!("{} token \"{}\"", record.role, record.name),
        node_wide: record.namespace.is_none(),
    };
    Ok((StatusCode::NO_CONTENT, Extension(note)))
}
