//! `/healthz` and `/readyz`: whether the node is up, and whether it serves
//! what it should — its stored live versions, its triggers' brokers, its
//! key-value store. Outside `/v1`, without a token, for probes.

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use stratus_control::Node;

use crate::AdminState;
use crate::model::{BrokerHealth, Health, KeyValueHealth, TriggerHealth};

/// What the health checks read: the control plane and the triggers.
#[derive(Debug, Clone)]
pub struct HealthState {
    node: Arc<Node>,
    triggers: Arc<stratus_triggers::Health>,
    data_dir: Arc<crate::disk::DataDir>,
}

impl FromRef<AdminState> for HealthState {
    fn from_ref(state: &AdminState) -> Self {
        HealthState {
            node: state.node.clone(),
            triggers: state.triggers.clone(),
            data_dir: state.data_dir.clone(),
        }
    }
}

pub(crate) fn router() -> Router<AdminState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// Liveness: the process is up and answering.
#[utoipa::path(get, tag = "handlers", path = "/healthz", responses((status = 200, body = Health)))]
pub async fn healthz(State(state): State<HealthState>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        live_apps: state.node.live_app_count(),
        problems: Vec::new(),
        brokers: Vec::new(),
        triggers: Vec::new(),
        keyvalue: None,
        disk: None,
    })
}

/// Readiness: the stored live versions are loaded and serving.
#[utoipa::path(get, tag = "handlers", path = "/readyz", responses(
    (status = 200, body = Health), (status = 503, body = Health)))]
pub async fn readyz(State(state): State<HealthState>) -> Response {
    let ready = state.node.is_ready();
    // A broker that is down is detail, not unreadiness: the node serves
    // HTTP all the same, and its triggers retry.
    let mut problems = state.node.problems();
    problems.extend(state.triggers.problems());
    // Requests are served all the same; their records wait or are dropped.
    if let Some(stats) = state.node.ledger_stats()
        && let Some(why) = stats.failing()
    {
        let dropped = stats
            .records_dropped
            .load(std::sync::atomic::Ordering::Relaxed);
        problems.push(format!(
            "the invocation ledger cannot write: {why}; {dropped} records dropped so far"
        ));
    }
    let disk = state.data_dir.health().await;
    if disk.error.is_none() && disk.disk_free_bytes < crate::disk::LOW_DISK_BYTES {
        problems.push(format!(
            "the data directory's disk ({}) has {} bytes free: records, logs, events and deploys are about to be refused",
            disk.data_dir, disk.disk_free_bytes
        ));
    }
    let keyvalue = keyvalue_health(&state).await;
    if let Some(KeyValueHealth {
        location,
        error: Some(error),
        ..
    }) = &keyvalue
    {
        problems.push(format!("key-value store {location}: {error}"));
    }
    let time = |t| stratus_storage::format_time(t);
    let body = Health {
        status: if ready { "ready" } else { "starting" }.into(),
        live_apps: state.node.live_app_count(),
        problems,
        brokers: state
            .triggers
            .brokers()
            .into_iter()
            .map(|b| BrokerHealth {
                broker: b.broker.into(),
                url: b.url,
                connected: b.connected,
                error: b.error,
                since: time(b.since),
                connections: b.connections,
            })
            .collect(),
        triggers: state
            .triggers
            .triggers()
            .into_iter()
            .map(|t| TriggerHealth {
                function: t.function,
                trigger: t.trigger,
                state: t.state.as_str().into(),
                error: t.error,
                since: time(t.since),
            })
            .collect(),
        keyvalue,
        disk: Some(disk),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// How long `/readyz` waits for the key-value store: well under the usual
/// one-second timeout of a readiness probe, so a store that hangs shows as
/// a problem instead of making the probe itself fail.
const KEYVALUE_CHECK: std::time::Duration = std::time::Duration::from_millis(250);

/// Asks the key-value store for a sign of life, briefly.
async fn keyvalue_health(state: &HealthState) -> Option<KeyValueHealth> {
    let store = state.node.keyvalue()?;
    let answer = tokio::time::timeout(KEYVALUE_CHECK, store.check()).await;
    let error = match answer {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!("no answer within {KEYVALUE_CHECK:?}")),
    };
    Some(KeyValueHealth {
        backend: store.kind().into(),
        location: store.location(),
        reachable: error.is_none(),
        error,
    })
}
