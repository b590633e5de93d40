//! What several areas read the same way: a period (`since`), a function's
//! name, how many items to list, and whether the node keeps a ledger.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::StatusCode;
use stratus_control::{ControlError, Node};
use stratus_manifest::Namespace;
use stratus_storage::Ledger;

use crate::error::ApiError;

/// Items listed when no `limit` is given, and the most allowed.
pub(crate) const DEFAULT_LIMIT: usize = 100;
pub(crate) const MAX_LIMIT: usize = 10_000;

/// How many items a listing's `limit` asks for: 1 to [`MAX_LIMIT`], else
/// refused (not clamped: a client asking for more than it can have should
/// hear so).
pub(crate) fn limit(asked: Option<usize>) -> Result<usize, ApiError> {
    match asked.unwrap_or(DEFAULT_LIMIT) {
        limit @ 1..=MAX_LIMIT => Ok(limit),
        limit => Err(ApiError::bad_request(format!(
            "limit {limit} is out of range; use 1 to {MAX_LIMIT}"
        ))),
    }
}

/// A JSON object body read into `T`, or a 400 naming what is wrong. Read
/// as JSON Schema reads JSON, as the OpenAPI document describes it: an
/// object and nothing else (serde would take an array for a struct too),
/// and a number with no fraction (`3.0`) is an integer.
pub(crate) fn json_object<T: serde::de::DeserializeOwned>(
    body: &[u8],
    what: &str,
) -> Result<T, ApiError> {
    let mut value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request(format!(
            "the body must be a JSON object of {what}"
        )));
    }
    integral(&mut value);
    serde_json::from_value(value).map_err(|e| ApiError::bad_request(format!("not {what}: {e}")))
}

/// Numbers with no fraction as integers, all through `value`.
fn integral(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(n) => {
            // Beyond 64 bits the number stays a float, which an integer
            // field refuses.
            if let Some(f) = n.as_f64().filter(|f| n.is_f64() && f.fract() == 0.0) {
                if (0.0..18_446_744_073_709_551_616.0).contains(&f) {
                    *value = serde_json::Value::from(f as u64);
                } else if (-9_223_372_036_854_775_808.0..0.0).contains(&f) {
                    *value = serde_json::Value::from(f as i64);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integral),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(integral),
        _ => {}
    }
}

/// An invocation's id as a filter names it: 32 lowercase hex digits
/// (`stratus_invoke::new_invocation_id`), else a 400.
pub(crate) fn invocation_id(text: String) -> Result<String, ApiError> {
    if valid_invocation_id(&text) {
        Ok(text)
    } else {
        Err(ApiError::bad_request(format!(
            "\"{text}\" is not an invocation id (32 lowercase hex digits)"
        )))
    }
}

pub(crate) fn valid_invocation_id(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

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

/// A span of time as the API spells it: a whole number and a unit, `s`,
/// `m`, `h` or `d` (`90s`, `15m`, `24h`, `7d`). One grammar, stated in the
/// OpenAPI document as this pattern, so that what the document calls valid
/// the node takes and what it calls invalid the node refuses.
pub(crate) const SPAN_PATTERN: &str = "^[0-9]{1,6}[smhd]$";

/// A span following [`SPAN_PATTERN`].
pub(crate) fn parse_span(text: &str) -> Option<Duration> {
    let digits = text.get(..text.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let count: u64 = digits.parse().ok()?;
    let unit = match text.as_bytes().last()? {
        b's' => 1,
        b'm' => 60,
        b'h' => 3_600,
        b'd' => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(count * unit))
}

/// `since` as a span back from now ("15m", "2h", "7d") or an RFC 3339
/// time. A time before 1970 is 1970.
pub(crate) fn parse_since(text: Option<&str>) -> Result<Option<SystemTime>, ApiError> {
    let Some(text) = text else { return Ok(None) };
    if let Some(ago) = parse_span(text) {
        return Ok(Some(
            SystemTime::now()
                .checked_sub(ago)
                .unwrap_or(SystemTime::UNIX_EPOCH),
        ));
    }
    match chrono::DateTime::parse_from_rfc3339(text) {
        Ok(time) => Ok(Some(
            u64::try_from(time.timestamp_millis()).map_or(SystemTime::UNIX_EPOCH, |ms| {
                SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
            }),
        )),
        Err(_) => Err(ApiError::bad_request(format!(
            "since \"{text}\" is neither a span back from now (a number and s, m, h or d: \"15m\", \"2h\", \"7d\") nor an RFC 3339 time (\"2026-11-27T09:00:00Z\")"
        ))),
    }
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
