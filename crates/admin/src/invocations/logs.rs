//! A function's logs (also followed live as server-sent events) and one
//! invocation as the ledger recorded it.

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream, StreamExt};
use http::StatusCode;
use serde::Deserialize;
use stratus_manifest::Namespace;
use stratus_storage::{
    InvocationQuery, LiveLog, LogFeed, LogLine, LogQuery, StatusFilter, Trigger,
};

use super::InvocationsState;
use crate::common::{MAX_LIMIT, invocation_id, limit, metered, parse_since, resolve};
use crate::error::ApiError;
use crate::model::{
    ErrorBody, InvocationDetail, InvocationList, InvocationSummary, LogLineInfo, LogLines,
};

/// Past the end of an invocation, how long a call it made may seem to
/// have started (the two times are taken at different moments).
const CALL_SLACK: Duration = Duration::from_millis(100);

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct LogParams {
    /// A duration back from now ("10m") or an RFC 3339 time.
    since: Option<String>,
    /// Only the lines of this invocation.
    invocation: Option<String>,
    /// The newest this many lines (default 100, at most 10000).
    limit: Option<usize>,
    /// Keep the response open and send new lines as server-sent events.
    #[serde(default)]
    follow: bool,
}

/// A function's invocation logs, oldest first; with `follow=true`, a
/// `text/event-stream` that sends those lines and then new ones as they
/// are written, each event's data one JSON log line.
#[utoipa::path(get, tag = "ledger", path = "/v1/functions/{function}/logs",
    params(("function" = String, Path), LogParams),
    responses((status = 200, description = "the lines; with `follow=true`, a stream of them", content(
            (LogLines = "application/json"),
            (String = "text/event-stream"),
        )),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn logs(
    State(state): State<InvocationsState>,
    Extension(namespace): Extension<Namespace>,
    Path(function): Path<String>,
    Query(params): Query<LogParams>,
) -> Result<Response, ApiError> {
    let ledger = metered(&state.ledger)?;
    let (app, name) = resolve(&state.node, &namespace, &function)?;
    let limit = limit(params.limit)?;
    let query = LogQuery {
        app,
        function: name,
        since: parse_since(params.since.as_deref())?,
        invocation: params.invocation.map(invocation_id).transpose()?,
        limit,
    };
    if !params.follow {
        let history = ledger.logs(query).await?;
        let lines = history.iter().map(LogLineInfo::from).collect();
        return Ok(Json(LogLines { lines }).into_response());
    }
    // Followed before reading the history, so no line falls between.
    let live = ledger.follow(query.clone()).await?;
    let history = ledger.logs(query).await?;
    Ok(follow(history, live).into_response())
}

fn follow(
    history: Vec<LogLine>,
    live: LogFeed,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // An invocation's lines are recorded together: one in the history is
    // not sent again.
    let seen: HashSet<String> = history.iter().map(|l| l.invocation_id.clone()).collect();
    let past = stream::iter(history.into_iter().map(|l| Ok(sse_event(&l))));
    let new = stream::unfold((live, seen), |(mut live, seen)| async move {
        loop {
            let event = match live.recv().await? {
                LiveLog::Line(line) if seen.contains(&line.invocation_id) => continue,
                LiveLog::Line(line) => sse_event(&line),
                LiveLog::Skipped(skipped) => Event::default().comment(format!(
                    "{skipped} lines were skipped: the follower fell behind"
                )),
            };
            return Some((Ok(event), (live, seen)));
        }
    });
    Sse::new(past.chain(new)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

fn sse_event(line: &LogLine) -> Event {
    let info = LogLineInfo::from(line);
    Event::default()
        .json_data(&info)
        .unwrap_or_else(|_| Event::default().data(info.text))
}

/// One invocation: what it used, how it ended, and its log.
#[utoipa::path(get, tag = "ledger", path = "/v1/invocations/{id}",
    params(("id" = String, Path)),
    responses((status = 200, body = InvocationDetail), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn invocation(
    State(state): State<InvocationsState>,
    Extension(namespace): Extension<Namespace>,
    Path(id): Path<String>,
) -> Result<Json<InvocationDetail>, ApiError> {
    let ledger = metered(&state.ledger)?;
    // Another namespace's invocation answers as one never recorded.
    match ledger.invocation(id.clone()).await? {
        Some(record) if namespace.owns(&record.app) => {
            let logs = ledger
                .logs(LogQuery {
                    app: record.app.clone(),
                    function: record.function.clone(),
                    since: None,
                    invocation: Some(id.clone()),
                    limit: MAX_LIMIT,
                })
                .await?;
            let mut calls = ledger
                .calls(
                    id,
                    record.started_at,
                    record.started_at + record.wall + CALL_SLACK,
                )
                .await?;
            calls.retain(|call| namespace.owns(&call.app));
            Ok(Json(InvocationDetail::new(&record, &logs, &calls)))
        }
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "invocation_not_found",
            format!(
                "no invocation \"{id}\" is recorded: it has not finished yet, was pruned, or never ran here"
            ),
        )),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct InvocationParams {
    /// Only invocations that started at or after: a duration back from
    /// now ("1h") or an RFC 3339 time.
    since: Option<String>,
    /// Only invocations that started before: an RFC 3339 time or a
    /// duration back from now.
    until: Option<String>,
    /// `ok`, `error` (a trap, a timeout, a limit, a refusal or a 5xx), or
    /// one status code.
    #[param(pattern = "^(ok|error|[1-5][0-9][0-9])$")]
    status: Option<String>,
    /// `http`, `api`, `event` or `service`.
    #[param(pattern = "^(http|api|event|service)$")]
    trigger: Option<String>,
    /// Only invocations that took at least this many milliseconds.
    min_duration_ms: Option<u64>,
    /// The newest this many (default 100, at most 10000).
    limit: Option<usize>,
}

/// A function's recorded invocations, newest first, filtered by time,
/// outcome, trigger and duration. Sampled-out invocations (`--sample`)
/// are counted in usage but not listed.
#[utoipa::path(get, tag = "ledger", path = "/v1/functions/{function}/invocations",
    operation_id = "list_invocations",
    params(("function" = String, Path), InvocationParams),
    responses((status = 200, body = InvocationList), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn invocations(
    State(state): State<InvocationsState>,
    Extension(namespace): Extension<Namespace>,
    Path(function): Path<String>,
    Query(params): Query<InvocationParams>,
) -> Result<Json<InvocationList>, ApiError> {
    let ledger = metered(&state.ledger)?;
    let (app, name) = resolve(&state.node, &namespace, &function)?;
    let status = match params.status.as_deref() {
        None => None,
        Some("ok") => Some(StatusFilter::Ok),
        Some("error") => Some(StatusFilter::Error),
        Some(text) => match text.parse::<u16>() {
            Ok(code @ 100..=599) if text.len() == 3 => Some(StatusFilter::Code(code)),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "status {text:?} is not ok, error or a status code (100 to 599)"
                )));
            }
        },
    };
    let trigger = match params.trigger.as_deref() {
        None => None,
        Some(text) => Some(
            Trigger::ALL
                .into_iter()
                .find(|t| t.as_str() == text)
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "trigger {text:?} is not http, api, event or service"
                    ))
                })?,
        ),
    };
    let query = InvocationQuery {
        app,
        function: name,
        since: parse_since(params.since.as_deref())?,
        until: parse_since(params.until.as_deref())?,
        status,
        trigger,
        min_duration: params.min_duration_ms.map(Duration::from_millis),
        limit: limit(params.limit)?,
    };
    let records = ledger.invocations(query).await?;
    Ok(Json(InvocationList {
        invocations: records.iter().map(InvocationSummary::from).collect(),
    }))
}
