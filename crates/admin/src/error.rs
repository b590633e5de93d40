//! Errors of the admin API: a status and the platform's one JSON error
//! shape ([`ErrorBody`], which the gateway, `.svc` calls and `queue.svc`
//! answer with too).

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use stratus_control::ControlError;
use stratus_invoke::{ErrorBody, PlatformError};
use stratus_manifest::ManifestError;
use stratus_runtime::RuntimeError;
use stratus_storage::{AppStoreError, ArtifactError, TokenStoreError};

/// When to try a change again while the cluster's store is out of reach:
/// NATS reconnects within seconds of a server coming back.
pub(crate) const STORE_RETRY_AFTER_SECS: u32 = 5;

/// The code of an error answer, kept in the response's extensions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ErrorCode(pub &'static str);

/// An error answer of the admin API.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds a client should wait before trying again (503s).
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn unauthorized(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 503 with `Retry-After`: a store out of reach for now (a cluster's
    /// NATS, a full disk), worth asking again.
    pub(crate) fn retry_later(code: &'static str, message: impl Into<String>) -> Self {
        let mut error = Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message);
        error.retry_after = Some(STORE_RETRY_AFTER_SECS);
        error
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        let (status, code) = match &e {
            ControlError::Manifest(ManifestError::TooLarge { .. }) => {
                (StatusCode::PAYLOAD_TOO_LARGE, "manifest_too_large")
            }
            ControlError::Manifest(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_manifest"),
            ControlError::Upload(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_upload"),
            ControlError::Component {
                source: RuntimeError::Invalid(_),
                ..
            } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_component"),
            // The component was fine but the node could not store its
            // compiled code (disk full, permissions): the node's fault.
            ControlError::Component { .. } => {
                tracing::error!("admin request failed: {e}");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
            ControlError::Limit { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "over_limit"),
            ControlError::Quota { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "over_quota"),
            ControlError::RouteConflict(_) => (StatusCode::CONFLICT, "route_conflict"),
            ControlError::CapabilitiesGained { .. } => {
                (StatusCode::CONFLICT, "capabilities_gained")
            }
            ControlError::AmbiguousFunction { .. } => (StatusCode::CONFLICT, "ambiguous_function"),
            ControlError::AppNotFound(_) => (StatusCode::NOT_FOUND, "app_not_found"),
            ControlError::VersionNotFound { .. } => (StatusCode::NOT_FOUND, "version_not_found"),
            ControlError::FunctionNotFound(_) => (StatusCode::NOT_FOUND, "function_not_found"),
            ControlError::NoEarlierVersion(_) => (StatusCode::CONFLICT, "no_earlier_version"),
            ControlError::Traffic(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_traffic"),
            ControlError::Apps(AppStoreError::Conflict(_)) => {
                (StatusCode::CONFLICT, "concurrent_change")
            }
            // A cluster whose NATS is out of reach: the apps keep serving,
            // changes wait until it is back.
            ControlError::Apps(AppStoreError::Unavailable(_))
            | ControlError::Artifacts(ArtifactError::Unavailable(_)) => {
                tracing::warn!("admin request refused: {e}");
                return ApiError::retry_later("store_unavailable", e.to_string());
            }
            ControlError::Apps(_)
            | ControlError::Artifacts(_)
            | ControlError::ComponentNotUploaded { .. }
            | ControlError::Internal(_) => {
                tracing::error!("admin request failed: {e}");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        ApiError::new(status, code, e.to_string())
    }
}

/// A ledger read that failed: retryable when a cluster's store is out of
/// reach, else the node's fault.
impl From<stratus_storage::LedgerError> for ApiError {
    fn from(e: stratus_storage::LedgerError) -> Self {
        if let stratus_storage::LedgerError::Unavailable(_) = e {
            tracing::warn!("ledger read refused: {e}");
            return ApiError::retry_later("ledger_unavailable", e.to_string());
        }
        tracing::error!("ledger read failed: {e}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    }
}

/// A queue operation that failed (disk full, database locked): retryable.
impl From<stratus_storage::QueueError> for ApiError {
    fn from(e: stratus_storage::QueueError) -> Self {
        tracing::error!("queue operation failed: {e}");
        ApiError::retry_later("queue_unavailable", e.to_string())
    }
}

/// A refusal another crate words as a platform error (a publish to a named
/// queue). The admin API's answers belong to no invocation, so it has no
/// `Retry-After` to carry either.
impl From<PlatformError> for ApiError {
    fn from(e: PlatformError) -> Self {
        ApiError::new(e.status, e.code, e.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody::new(self.code, self.message, None);
        let mut response = (self.status, Json(body)).into_response();
        // For the audit log's outcome, without reading the body back.
        response.extensions_mut().insert(ErrorCode(self.code));
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// Runs a blocking call (SQLite) off the async workers.
pub(crate) async fn blocking<T: Send + 'static, E: Into<ApiError> + Send + 'static>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::from(ControlError::Internal(e.to_string())))?
        .map_err(Into::into)
}

impl From<TokenStoreError> for ApiError {
    fn from(e: TokenStoreError) -> Self {
        match e {
            TokenStoreError::Unavailable(_) => {
                Self::retry_later("store_unavailable", e.to_string())
            }
            TokenStoreError::Conflict(_) => {
                Self::new(StatusCode::CONFLICT, "concurrent_change", e.to_string())
            }
            TokenStoreError::Backend(_) => {
                tracing::error!("token store failed: {e}");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            }
        }
    }
}
