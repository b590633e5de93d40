//! Apps' secrets: set, list (names only) and delete. No route of the API
//! ever answers with a secret's value; only functions granted a secret read
//! it, through `wasi:config`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, FromRef, Path, State};
use axum::routing::{get, put};
use axum::{Json, Router};
use http::StatusCode;
use stratus_manifest::Namespace;
use stratus_secrets::{SecretError, SecretInfo, SecretStore};

use crate::AdminState;
use crate::common::named_app;
use crate::error::{ApiError, blocking};
use crate::model::{ErrorBody, SecretSummary};

/// The secret store, and nothing else: this area never runs a function.
#[derive(Debug, Clone)]
pub struct SecretsState {
    secrets: Arc<SecretStore>,
}

impl FromRef<AdminState> for SecretsState {
    fn from_ref(state: &AdminState) -> Self {
        SecretsState {
            secrets: state.secrets.clone(),
        }
    }
}

pub(crate) fn router() -> Router<AdminState> {
    Router::new()
        .route("/apps/{app}/secrets", get(list))
        .route("/apps/{app}/secrets/{name}", put(set).delete(delete))
}

impl From<SecretError> for ApiError {
    fn from(e: SecretError) -> Self {
        match e {
            SecretError::BadName(_) | SecretError::BadValue(_) => {
                ApiError::bad_request(e.to_string())
            }
            SecretError::NotFound { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "secret_not_found", e.to_string())
            }
            _ => {
                tracing::error!("secret store failed: {e}");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            }
        }
    }
}

/// Lists an app's secrets: names and when each was set, never values.
#[utoipa::path(get, tag = "secrets", path = "/v1/apps/{app}/secrets", operation_id = "list_secrets", params(("app" = String, Path)),
    responses((status = 200, body = [SecretSummary]), (status = 400, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<SecretsState>,
    Extension(namespace): Extension<Namespace>,
    Path(app): Path<String>,
) -> Result<Json<Vec<SecretSummary>>, ApiError> {
    let app = named_app(&namespace, &app)?;
    let store = state.secrets.clone();
    let infos = blocking(move || store.list(&app)).await?;
    Ok(Json(infos.into_iter().map(summary).collect()))
}

/// Sets a secret from the request body (UTF-8 text, at most 64 KiB). The
/// app need not be deployed yet, so a pipeline can set secrets first.
#[utoipa::path(put, tag = "secrets", operation_id = "set_secret", path = "/v1/apps/{app}/secrets/{name}",
    params(("app" = String, Path), ("name" = String, Path)),
    request_body(content = String, content_type = "text/plain"),
    responses((status = 204), (status = 400, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn set(
    State(state): State<SecretsState>,
    Extension(namespace): Extension<Namespace>,
    Path((app, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let app = named_app(&namespace, &app)?;
    let value = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::bad_request("a secret value must be UTF-8 text"))?;
    let store = state.secrets.clone();
    blocking(move || store.set(&app, &name, &value)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a secret.
#[utoipa::path(delete, tag = "secrets", operation_id = "delete_secret", path = "/v1/apps/{app}/secrets/{name}",
    params(("app" = String, Path), ("name" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<SecretsState>,
    Extension(namespace): Extension<Namespace>,
    Path((app, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let app = named_app(&namespace, &app)?;
    let store = state.secrets.clone();
    let (app2, name2) = (app.clone(), name.clone());
    if blocking(move || store.delete(&app2, &name2)).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(SecretError::NotFound { app, name }.into())
    }
}

fn summary(info: SecretInfo) -> SecretSummary {
    SecretSummary {
        name: info.name,
        updated_at: info
            .updated
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0),
    }
}
