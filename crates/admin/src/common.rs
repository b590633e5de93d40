//! What several areas read the same way: a period (`since`), a function's
//! name, how many items to list, and whether the node keeps a ledger.

use std::sync::Arc;
use std::time::SystemTime;

use http::StatusCode;
use stratus_control::{ControlError, Node};
use stratus_manifest::Namespace;
use stratus_storage::Ledger;

use crate::error::ApiError;

/// Items listed when no `limit` is given, and the most allowed.
pub(crate) const DEFAULT_LIMIT: usize = 100;
pub(crate) const MAX_LIMIT: usize = 10_000;

/// The ledger, or why there is none.
pub(crate) fn metered(ledger: &Option<Arc<Ledger>>) -> Result<Arc<Ledger>, ApiError> {
    ledger.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "metering_off",
            "this node runs with metering off (--no-metering): it keeps no usage or logs",
        )
    })
}

/// `since` as a duration back from now ("15m", "2h", "7d") or an RFC 3339
/// time.
pub(crate) fn parse_since(text: Option<&str>) -> Result<Option<SystemTime>, ApiError> {
    let Some(text) = text else { return Ok(None) };
    if let Ok(ago) = humantime::parse_duration(text) {
        return Ok(Some(
            SystemTime::now()
                .checked_sub(ago)
                .unwrap_or(SystemTime::UNIX_EPOCH),
        ));
    }
    humantime::parse_rfc3339_weak(text).map(Some).map_err(|_| {
        ApiError::bad_request(format!(
            "since \"{text}\" is neither a duration (e.g. \"15m\", \"2h\", \"7d\") nor an RFC 3339 time (e.g. \"2026-11-27T09:00:00Z\")"
        ))
    })
}

/// `NAME` or `APP/NAME` of a live function of `namespace`, as its app's
/// key and its name; a function no longer live can still be named
/// `APP/NAME` to read the logs it left.
pub(crate) fn resolve(
    node: &Node,
    namespace: &Namespace,
    function: &str,
) -> Result<(String, String), ApiError> {
    match node.find_function(namespace, function) {
        Ok(f) => Ok((f.app.clone(), f.name.clone())),
        Err(ControlError::FunctionNotFound(_)) if function.contains('/') => {
            let (app, name) = function.split_once('/').unwrap_or_default();
            Ok((app_key(namespace, app)?, name.to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

/// The key of `namespace`'s app `app`, as a path or query names it. A
/// name that cannot be an app's (one carrying a `/`, say) answers as an app
/// that is not there: it is never taken as another namespace's key.
pub(crate) fn app_key(namespace: &Namespace, app: &str) -> Result<String, ApiError> {
    namespace
        .app_key(app)
        .map_err(|_| ControlError::AppNotFound(app.to_owned()).into())
}

/// The key of `namespace`'s app `app` where the app need not exist (a
/// secret set before the first deploy, a publish, a listing's `?app=`): a
/// name that cannot be an app's is a bad request, naming the rule.
pub(crate) fn named_app(namespace: &Namespace, app: &str) -> Result<String, ApiError> {
    namespace
        .app_key(app)
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// The key of the app a listing is filtered to (`?app=`), if any.
pub(crate) fn app_filter(
    namespace: &Namespace,
    app: Option<&str>,
) -> Result<Option<String>, ApiError> {
    app.map(|app| named_app(namespace, app)).transpose()
}
