//! Events and queues: a queued event's state, a function's events and dead
//! letters, a redrive, and a publish to an app's named queue. The
//! dispatcher owns the queue; the handlers ask it, by function, never by
//! the queue's internal names.

use std::sync::Arc;

use axum::extract::{Extension, FromRef, Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use stratus_control::Node;
use stratus_events::{Dispatcher, PublishError};
use stratus_invoke::PlatformError;
use stratus_manifest::Namespace;
use stratus_storage::{EventStatus, QueueFuture};

use crate::AdminState;
use crate::audit::AuditNote;
use crate::common::{limit, named_app, resolve};
use crate::error::ApiError;
use crate::model::{
    AsyncAccepted, DeadLetters, ErrorBody, EventInfo, EventList, Published, QueueInfo, QueueList,
    Redriven,
};

/// What the events area needs: the control plane (to name functions) and
/// the dispatcher (the queue and its delivery loop).
#[derive(Debug, Clone)]
pub struct EventsState {
    node: Arc<Node>,
    dispatcher: Arc<Dispatcher>,
}

impl FromRef<AdminState> for EventsState {
    fn from_ref(state: &AdminState) -> Self {
        EventsState {
            node: state.node.clone(),
            dispatcher: state.dispatcher.clone(),
        }
    }
}

pub(crate) fn router() -> Router<AdminState> {
    Router::new()
        .route("/events/{id}", get(event))
        .route("/apps/{app}/queues/{queue}/events", post(publish))
        .route("/queues/{queue}/events", post(publish_moved))
        .route("/functions/{function}/events", get(function_events))
        .route("/functions/{function}/dead-letters", get(dead_letters))
        .route("/functions/{function}/dead-letters/redrive", post(redrive))
        .route("/queues", get(queues))
        .route("/functions/{function}/events/{id}/replay", post(replay))
}

/// Each function's queue: the live functions that consume events, and any
/// function whose queue still holds some — what waits, since when, and
/// its dead letters.
#[utoipa::path(get, tag = "ledger", path = "/v1/queues",
    responses((status = 200, body = QueueList), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn queues(
    State(state): State<EventsState>,
    Extension(namespace): Extension<Namespace>,
) -> Result<Json<QueueList>, ApiError> {
    let Some(backlog) = state.dispatcher.backlog(BACKLOG_WAIT).await else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "queue_unavailable",
            format!(
                "the event queue did not answer within {}s; see /readyz",
                BACKLOG_WAIT.as_secs()
            ),
        ));
    };
    let now = std::time::SystemTime::now();
    let mut queues: std::collections::BTreeMap<(String, String), QueueInfo> = Default::default();
    for function in state.node.live_functions(None) {
        let consumed: Vec<String> = function
            .triggers
            .iter()
            .filter_map(|t| match t {
                stratus_manifest::TriggerSpec::Queue { queue, .. } => Some(queue.clone()),
                _ => None,
            })
            .collect();
        if consumed.is_empty() || !namespace.owns(&function.app) {
            continue;
        }
        let key = (function.app.clone(), function.name.clone());
        queues.insert(key, QueueInfo::new(&function.app, &function.name, consumed));
    }
    for queue in &backlog {
        let Some((app, function)) = stratus_events::queue_function(&queue.queue) else {
            continue;
        };
        if !namespace.owns(app) {
            continue;
        }
        let info = queues
            .entry((app.to_owned(), function.to_owned()))
            .or_insert_with(|| QueueInfo::new(app, function, Vec::new()));
        info.waiting = queue.waiting;
        info.dead_letters = queue.dead;
        info.oldest_event_age_seconds = queue
            .oldest
            .map(|t| now.duration_since(t).unwrap_or_default().as_secs_f64());
    }
    Ok(Json(QueueList {
        queues: queues.into_values().collect(),
    }))
}

/// How long `/v1/queues` waits for the queue's backlog.
const BACKLOG_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A queued event (an async invocation): its state, attempts, last error
/// and, once handled, the function's answer.
#[utoipa::path(get, tag = "ledger", path = "/v1/events/{id}",
    params(("id" = String, Path)),
    responses((status = 200, body = EventInfo), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn event(
    State(state): State<EventsState>,
    Extension(namespace): Extension<Namespace>,
    Path(id): Path<String>,
) -> Result<Json<EventInfo>, ApiError> {
    // Another namespace's event answers as one that is not there.
    match state.dispatcher.event(&id).await? {
        Some(status) if queue_owned(&namespace, &status.queue) => Ok(Json(status.into())),
        _ => Err(ApiError::new(
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
#[utoipa::path(get, tag = "ledger", path = "/v1/functions/{function}/dead-letters",
    params(("function" = String, Path), DeadLetterParams),
    responses((status = 200, body = DeadLetters), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn dead_letters(
    State(state): State<EventsState>,
    Extension(namespace): Extension<Namespace>,
    Path(function): Path<String>,
    Query(params): Query<DeadLetterParams>,
) -> Result<Json<DeadLetters>, ApiError> {
    let events = list_events(
        &state,
        &namespace,
        &function,
        params,
        Dispatcher::dead_letters,
    )
    .await?;
    Ok(Json(DeadLetters { events }))
}

/// A function's newest events in any state — async invocations, queue
/// messages, cron ticks, broker messages — newest first.
#[utoipa::path(get, tag = "ledger", path = "/v1/functions/{function}/events",
    params(("function" = String, Path), DeadLetterParams),
    responses((status = 200, body = EventList), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn function_events(
    State(state): State<EventsState>,
    Extension(namespace): Extension<Namespace>,
    Path(function): Path<String>,
    Query(params): Query<DeadLetterParams>,
) -> Result<Json<EventList>, ApiError> {
    let events = list_events(
        &state,
        &namespace,
        &function,
        params,
        Dispatcher::recent_events,
    )
    .await?;
    Ok(Json(EventList { events }))
}

/// A read of a function's events: app, function, limit.
type ReadEvents = fn(&Dispatcher, &str, &str, usize) -> QueueFuture<Vec<EventStatus>>;

/// Reads a function's queue with `read`.
async fn list_events(
    state: &EventsState,
    namespace: &Namespace,
    function: &str,
    params: DeadLetterParams,
    read: ReadEvents,
) -> Result<Vec<EventInfo>, ApiError> {
    let (app, name) = resolve(&state.node, namespace, function)?;
    let limit = limit(params.limit)?;
    let found = read(&state.dispatcher, &app, &name, limit).await?;
    Ok(found.into_iter().map(EventInfo::from).collect())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct RedriveParams {
    /// Only the dead letter with this id (default: all of them).
    id: Option<String>,
}

/// Puts a function's dead letters (or one of them) back in its queue with
/// fresh attempts.
#[utoipa::path(post, tag = "ledger", path = "/v1/functions/{function}/dead-letters/redrive",
    params(("function" = String, Path), RedriveParams),
    responses((status = 200, body = Redriven), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn redrive(
    State(state): State<EventsState>,
    Extension(namespace): Extension<Namespace>,
    Path(function): Path<String>,
    Query(params): Query<RedriveParams>,
) -> Result<(Extension<AuditNote>, Json<Redriven>), ApiError> {
    let (app, name) = resolve(&state.node, &namespace, &function)?;
    let redriven = state
        .dispatcher
        .redrive(&app, &name, params.id.as_deref())
        .await?;
    if redriven == 0
        && let Some(id) = &params.id
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "event_not_found",
            format!("function \"{function}\" has no dead letter \"{id}\""),
        ));
    }
    let note = AuditNote {
        target: Some(format!("{app}/{name}")),
        detail: format!("{redriven} redriven"),
        node_wide: false,
    };
    Ok((Extension(note), Json(Redriven { redriven })))
}

/// Publishes a copy of one of a function's events (waiting, dead, or —
/// with the SQLite queue — handled and not yet pruned) to it again, under a
/// new id with fresh attempts: to try a fixed function on an event it
/// handled wrongly. Answers 202 with the copy's id once it is durable.
#[utoipa::path(post, tag = "ledger", path = "/v1/functions/{function}/events/{id}/replay",
    params(("function" = String, Path), ("id" = String, Path)),
    responses((status = 202, body = AsyncAccepted), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn replay(
    State(state): State<EventsState>,
    Extension(namespace): Extension<Namespace>,
    Path((function, id)): Path<(String, String)>,
) -> Result<(StatusCode, Extension<AuditNote>, Json<AsyncAccepted>), ApiError> {
    let (app, name) = resolve(&state.node, &namespace, &function)?;
    let Some(copy) = state.dispatcher.replay(&app, &name, &id).await? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "event_not_found",
            format!(
                "function \"{function}\" has no event \"{id}\" whose body is kept: it never came, was pruned, or was handled (a JetStream queue keeps only waiting and dead events)"
            ),
        ));
    };
    let note = AuditNote {
        target: Some(format!("{app}/{name}")),
        detail: format!("replayed {id} as {copy}"),
        node_wide: false,
    };
    let status_url = crate::namespaces::v1_path(&namespace, &format!("/events/{copy}"));
    let accepted = AsyncAccepted {
        id: copy,
        state: "queued".into(),
        status_url,
    };
    Ok((StatusCode::ACCEPTED, Extension(note), Json(accepted)))
}

/// Publishes an event to the named queue `queue` of app `app`: every
/// function of the app with a `{ queue = "…" }` trigger on it gets it as a
/// CloudEvent (queues belong to their app, and the operator publishes as
/// the app itself). The body is the event's data; `ce-id`, `ce-type`,
/// `ce-source` and `ce-subject` request headers are used when given, and a
/// valid W3C `traceparent` (with its `tracestate`) is kept, so the
/// consumers' invocations continue the caller's trace (a malformed one is
/// ignored). Answers 202 once every copy is durable.
#[utoipa::path(post, tag = "ledger", path = "/v1/apps/{app}/queues/{queue}/events",
    params(("app" = String, Path), ("queue" = String, Path)),
    request_body(content = String, content_type = "application/octet-stream"),
    responses((status = 202, body = Published), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn publish(
    State(state): State<EventsState>,
    Extension(namespace): Extension<Namespace>,
    Path((app, queue)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Published>), ApiError> {
    let app = named_app(&namespace, &app)?;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    // A malformed trace context is dropped, never refused: see `trace_context`.
    let (traceparent, tracestate) = stratus_events::trace_context(&headers);
    let event = stratus_events::Published {
        from: None,
        id: header("ce-id"),
        source: header("ce-source"),
        kind: header("ce-type"),
        subject: header("ce-subject"),
        content_type: header("content-type"),
        data: body,
        traceparent,
        tracestate,
    };
    let (id, consumers) = match state.dispatcher.publish(&app, &queue, event).await {
        Ok(published) => published,
        // Through the API's own mapping, so it is logged as every failed
        // queue operation of the API is.
        Err(PublishError::Queue(e)) => return Err(e.into()),
        Err(refused) => return Err(PlatformError::from(refused).into()),
    };
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

/// The path queues were published on before they belonged to an app:
/// answered 410 naming the path that replaced it, since which app's queue
/// was meant cannot be guessed.
pub async fn publish_moved(Path(queue): Path<String>) -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "moved",
        format!("queues belong to an app: publish with POST /v1/apps/<app>/queues/{queue}/events"),
    )
}

/// Whether the function queue `queue` belongs to an app of `namespace`.
fn queue_owned(namespace: &Namespace, queue: &str) -> bool {
    stratus_events::queue_function(queue).is_some_and(|(app, _)| namespace.owns(app))
}
