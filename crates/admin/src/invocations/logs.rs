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
use stratus_storage::{LiveLog, LogFeed, LogLine, LogQuery};

use super::InvocationsState;
use crate::common::{MAX_LIMIT, invocation_id, limit, metered, parse_since, resolve};
use crate::error::ApiError;
use crate::model::{ErrorBody, InvocationDetail, LogLineInfo, LogLines};

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
                    invocation: Some(id),
                    limit: MAX_LIMIT,
                })
                .await?;
            Ok(Json(InvocationDetail::new(&record, &logs)))
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
