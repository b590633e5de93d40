//! Handlers over the invocation ledger: usage and cost, logs (also followed
//! live as server-sent events) and single invocations.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream::{self, Stream, StreamExt};
use http::HeaderMap;
use http::StatusCode;
use serde::Deserialize;
use stratus_control::ControlError;
use stratus_ledger::{Ledger, LogLine, LogQuery, UsageQuery};
use stratus_queue::{EventStatus, Queue, QueueError};
use tokio::sync::broadcast;

use crate::AdminState;
use crate::error::ApiError;
use crate::model::{
    DeadLetters, ErrorResponse, EventInfo, EventList, InvocationDetail, LogLineInfo, LogLines,
    Published, Redriven, UsageReport,
};

/// Log lines returned when no `limit` is given, and the most allowed.
const DEFAULT_LOG_LIMIT: usize = 100;
const MAX_LOG_LIMIT: usize = 10_000;

fn ledger(state: &AdminState) -> Result<Arc<Ledger>, ApiError> {
    state.ledger.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "metering_off",
            "this node runs with metering off (--no-metering): it keeps no usage or logs",
        )
    })
}

/// `since` as a duration back from now ("15m", "2h", "7d") or an RFC 3339
/// time.
fn parse_since(text: Option<&str>) -> Result<Option<SystemTime>, ApiError> {
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

/// Runs a blocking call (SQLite) off the async workers.
pub(crate) async fn blocking<T: Send + 'static, E: Into<ApiError> + Send + 'static>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::from(ControlError::Internal(e.to_string())))?
        .map_err(Into::into)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct UsageParams {
    /// Only this app.
    app: Option<String>,
    /// A duration back from now ("24h") or an RFC 3339 time; default: all
    /// usage kept.
    since: Option<String>,
}

/// Requests, GB-seconds, CPU-seconds and cost per function.
#[utoipa::path(get, path = "/v1/usage", params(UsageParams),
    responses((status = 200, body = UsageReport), (status = 400, body = ErrorResponse),
        (status = 503, body = ErrorResponse)),
    security(("bearer" = [])))]
pub async fn usage(
    State(state): State<AdminState>,
    Query(params): Query<UsageParams>,
) -> Result<Json<UsageReport>, ApiError> {
    let ledger = ledger(&state)?;
    let query = UsageQuery {
        app: params.app,
        since: parse_since(params.since.as_deref())?,
    };
    let report = blocking(move || ledger.usage(&query)).await?;
    Ok(Json(report.into()))
}

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
#[utoipa::path(get, path = "/v1/functions/{function}/logs",
    params(("function" = String, Path), LogParams),
    responses((status = 200, body = LogLines), (status = 404, body = ErrorResponse),
        (status = 503, body = ErrorResponse)),
    security(("bearer" = [])))]
pub async fn logs(
    State(state): State<AdminState>,
    Path(function): Path<String>,
    Query(params): Query<LogParams>,
) -> Result<Response, ApiError> {
    let ledger = ledger(&state)?;
    let (app, name) = resolve(&state, &function)?;
    let limit = params.limit.unwrap_or(DEFAULT_LOG_LIMIT);
    if limit == 0 || limit > MAX_LOG_LIMIT {
        return Err(ApiError::bad_request(format!(
            "limit {limit} is out of range; use 1 to {MAX_LOG_LIMIT}"
        )));
    }
    let query = LogQuery {
        app,
        function: name,
        since: parse_since(params.since.as_deref())?,
        invocation: params.invocation,
        limit,
    };
    // Subscribed before reading the history, so no line falls between.
    let live = params
        .follow
        .then(|| state.node.gateway().recorder().map(|r| r.subscribe()))
        .flatten();
    let history = {
        let (ledger, query) = (ledger.clone(), query.clone());
        blocking(move || ledger.logs(&query)).await?
    };
    match live {
        None => {
            let lines = history.iter().map(LogLineInfo::from).collect();
            Ok(Json(LogLines { lines }).into_response())
        }
        Some(live) => Ok(follow(history, live, query).into_response()),
    }
}

/// `NAME` or `APP/NAME` of a live function; a function no longer live can
/// still be named `APP/NAME` to read the logs it left.
fn resolve(state: &AdminState, function: &str) -> Result<(String, String), ApiError> {
    match state.node.find_function(function) {
        Ok(f) => Ok((f.app.clone(), f.name.clone())),
        Err(ControlError::FunctionNotFound(_)) if function.contains('/') => {
            let (app, name) = function.split_once('/').unwrap_or_default();
            Ok((app.to_string(), name.to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

fn follow(
    history: Vec<LogLine>,
    live: broadcast::Receiver<Arc<LogLine>>,
    query: LogQuery,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let seen: HashSet<String> = history.iter().map(|l| l.invocation_id.clone()).collect();
    let past = stream::iter(history.into_iter().map(|l| Ok(sse_event(&l))));
    let new = stream::unfold((live, seen, query), |(mut live, seen, query)| async move {
        loop {
            let event = match live.recv().await {
                Ok(line) => {
                    let wanted = line.app == query.app
                        && line.function == query.function
                        && query
                            .invocation
                            .as_ref()
                            .is_none_or(|id| *id == line.invocation_id)
                        && !seen.contains(&line.invocation_id);
                    if !wanted {
                        continue;
                    }
                    sse_event(&line)
                }
                Err(broadcast::error::RecvError::Lagged(skipped)) => Event::default().comment(
                    format!("{skipped} lines were skipped: the follower fell behind"),
                ),
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            return Some((Ok(event), (live, seen, query)));
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
#[utoipa::path(get, path = "/v1/invocations/{id}",
    params(("id" = String, Path)),
    responses((status = 200, body = InvocationDetail), (status = 404, body = ErrorResponse),
        (status = 503, body = ErrorResponse)),
    security(("bearer" = [])))]
pub async fn invocation(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<InvocationDetail>, ApiError> {
    let ledger = ledger(&state)?;
    let wanted = id.clone();
    let found = blocking(move || {
        let Some(record) = ledger.invocation(&wanted)? else {
            return Ok(None);
        };
        let logs = ledger.logs(&LogQuery {
            app: record.app.clone(),
            function: record.function.clone(),
            since: None,
            invocation: Some(wanted),
            limit: MAX_LOG_LIMIT,
        })?;
        Ok::<_, stratus_ledger::LedgerError>(Some((record, logs)))
    })
    .await?;
    match found {
        Some((record, logs)) => Ok(Json(InvocationDetail::new(&record, &logs))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "invocation_not_found",
            format!(
                "no invocation \"{id}\" is recorded: it has not finished yet, was pruned, or never ran here"
            ),
        )),
    }
}

/// A queued event (an async invocation): its state, attempts, last error
/// and, once handled, the function's answer.
#[utoipa::path(get, path = "/v1/events/{id}",
    params(("id" = String, Path)),
    responses((status = 200, body = EventInfo), (status = 404, body = ErrorResponse)),
    security(("bearer" = [])))]
pub async fn event(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<EventInfo>, ApiError> {
    let queue = state.dispatcher.queue().clone();
    let wanted = id.clone();
    let found = blocking(move || queue.status(&wanted)).await?;
    match found {
        Some(status) => Ok(Json(status.into())),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "event_not_found",
            format!("no event \"{id}\" is queued or kept here"),
        )),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct DeadLetterParams {
    /// The most events listed (default 100, at most 10000).
    limit: Option<usize>,
}

/// A function's dead letters: events that failed every attempt (or could
/// not be read as events), oldest first, with their last error.
#[utoipa::path(get, path = "/v1/functions/{function}/dead-letters",
    params(("function" = String, Path), DeadLetterParams),
    responses((status = 200, body = DeadLetters), (status = 404, body = ErrorResponse)),
    security(("bearer" = [])))]
pub async fn dead_letters(
    State(state): State<AdminState>,
    Path(function): Path<String>,
    Query(params): Query<DeadLetterParams>,
) -> Result<Json<DeadLetters>, ApiError> {
    let events = list_events(&state, &function, params, Queue::dead_letters).await?;
    Ok(Json(DeadLetters { events }))
}

/// A function's newest events in any state — async invocations, queue
/// messages, cron ticks, broker messages — newest first.
#[utoipa::path(get, path = "/v1/functions/{function}/events",
    params(("function" = String, Path), DeadLetterParams),
    responses((status = 200, body = EventList), (status = 404, body = ErrorResponse)),
    security(("bearer" = [])))]
pub async fn function_events(
    State(state): State<AdminState>,
    Path(function): Path<String>,
    Query(params): Query<DeadLetterParams>,
) -> Result<Json<EventList>, ApiError> {
    let events = list_events(&state, &function, params, Queue::recent).await?;
    Ok(Json(EventList { events }))
}

/// Reads a function's queue with `read` (a blocking query).
async fn list_events(
    state: &AdminState,
    function: &str,
    params: DeadLetterParams,
    read: fn(&Queue, &str, usize) -> Result<Vec<EventStatus>, QueueError>,
) -> Result<Vec<EventInfo>, ApiError> {
    let (app, name) = resolve(state, function)?;
    let limit = params
        .limit
        .unwrap_or(DEFAULT_LOG_LIMIT)
        .clamp(1, MAX_LOG_LIMIT);
    let queue = state.dispatcher.queue().clone();
    let found =
        blocking(move || read(&queue, &stratus_events::async_queue(&app, &name), limit)).await?;
    Ok(found.into_iter().map(EventInfo::from).collect())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct RedriveParams {
    /// Only the dead letter with this id (default: all of them).
    id: Option<String>,
}

/// Puts a function's dead letters (or one of them) back in its queue with
/// fresh attempts.
#[utoipa::path(post, path = "/v1/functions/{function}/dead-letters/redrive",
    params(("function" = String, Path), RedriveParams),
    responses((status = 200, body = Redriven), (status = 404, body = ErrorResponse)),
    security(("bearer" = [])))]
pub async fn redrive(
    State(state): State<AdminState>,
    Path(function): Path<String>,
    Query(params): Query<RedriveParams>,
) -> Result<Json<Redriven>, ApiError> {
    let (app, name) = resolve(&state, &function)?;
    let queue = stratus_events::async_queue(&app, &name);
    let redriven = state
        .dispatcher
        .queue()
        .redrive(&queue, params.id.as_deref())
        .await?;
    state.dispatcher.wake();
    if redriven == 0
        && let Some(id) = &params.id
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "event_not_found",
            format!("function \"{function}\" has no dead letter \"{id}\""),
        ));
    }
    Ok(Json(Redriven { redriven }))
}

/// Publishes an event to a named queue: every function with a
/// `{ queue = "…" }` trigger on it gets it as a CloudEvent. The body is the
/// event's data; `ce-id`, `ce-type`, `ce-source` and `ce-subject` request
/// headers are used when given. Answers 202 once every copy is durable.
#[utoipa::path(post, path = "/v1/queues/{queue}/events",
    params(("queue" = String, Path)),
    request_body(content = String, content_type = "application/octet-stream"),
    responses((status = 202, body = Published), (status = 404, body = ErrorResponse),
        (status = 413, body = ErrorResponse)),
    security(("bearer" = [])))]
pub async fn publish(
    State(state): State<AdminState>,
    Path(queue): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Published>), ApiError> {
    let consumers = state.node.gateway().live().consumers(&queue);
    if consumers.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_consumer",
            format!(
                "no deployed function has a trigger on queue \"{queue}\"; add triggers = [{{ queue = \"{queue}\" }}] to one, or the event would be lost"
            ),
        ));
    }
    if let Some((f, _)) = consumers
        .iter()
        .find(|(f, _)| body.len() as u64 > f.max_body)
    {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "the event's data is {} bytes; function \"{}\" accepts at most {} (its `max_body`)",
                body.len(),
                f.name,
                f.max_body
            ),
        ));
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let event = stratus_events::Published {
        id: header("ce-id"),
        source: header("ce-source"),
        kind: header("ce-type"),
        subject: header("ce-subject"),
        content_type: header("content-type"),
        data: body,
    };
    let id = state.dispatcher.publish(&queue, &consumers, event).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Published {
            id,
            consumers: consumers
                .iter()
                .map(|(f, _)| format!("{}/{}", f.app, f.name))
                .collect(),
        }),
    ))
}
