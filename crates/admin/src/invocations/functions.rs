//! `GET /v1/functions`: every live function at a glance — where it is
//! reached, what feeds it, whether it is in memory, how busy it is and how
//! it last failed — so `stratus functions` needs one request.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Extension, Query, State};
use serde::Deserialize;
use stratus_manifest::Namespace;
use utoipa::IntoParams;

use super::InvocationsState;
use crate::common::app_filter;
use crate::error::ApiError;
use crate::model::{FunctionStatus, FunctionTrigger, LastErrorInfo};

#[derive(Debug, Deserialize, IntoParams)]
pub struct FunctionsQuery {
    /// Only this app's functions.
    pub app: Option<String>,
}

/// Lists the live functions, by app and name.
#[utoipa::path(get, tag = "functions", path = "/v1/functions", operation_id = "list_functions", params(FunctionsQuery),
    responses((status = 200, body = [FunctionStatus])),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<InvocationsState>,
    Extension(namespace): Extension<Namespace>,
    Query(query): Query<FunctionsQuery>,
) -> Result<Json<Vec<FunctionStatus>>, ApiError> {
    let app = app_filter(&namespace, query.app.as_deref())?;
    let mut health: HashMap<(String, String), (String, Option<String>)> = state
        .triggers
        .triggers()
        .into_iter()
        .map(|t| {
            (
                (t.function, t.trigger),
                (t.state.as_str().to_owned(), t.error),
            )
        })
        .collect();
    let time = |t| stratus_storage::format_time(t);
    let functions = state
        .node
        .live_functions(app.as_deref())
        .into_iter()
        .filter(|f| namespace.owns(&f.app))
        .map(|f| {
            let qualified = format!("{}/{}", f.app, f.name);
            let triggers = f
                .triggers
                .iter()
                .map(|spec| {
                    let trigger = spec.to_string();
                    let (state, error) = health
                        .remove(&(qualified.clone(), trigger.clone()))
                        .map_or((None, None), |(s, e)| (Some(s), e));
                    FunctionTrigger {
                        trigger,
                        state,
                        error,
                    }
                })
                .collect();
            let limits = f.function.limits();
            FunctionStatus {
                app: f.app.clone(),
                name: f.name.clone(),
                version: f.version,
                routes: f.routes.iter().map(ToString::to_string).collect(),
                triggers,
                state: if f.function.is_resident() {
                    "resident"
                } else {
                    "scaled_to_zero"
                }
                .into(),
                tier: f.function.tier().map(|tier| tier.name().to_owned()),
                min_warm: f.function.keeps_warm(),
                idle_seconds: f.function.idle_for().as_secs(),
                in_flight: f.in_flight(),
                max_concurrency: f.max_concurrency,
                memory_bytes: limits.memory,
                timeout_ms: u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX),
                last_error: state
                    .ledger
                    .as_ref()
                    .and_then(|l| l.last_error(&f.app, &f.name))
                    .map(|e| LastErrorInfo {
                        at: time(e.at),
                        invocation_id: e.invocation_id,
                        version: e.version,
                        status: e.status,
                        code: e.code,
                    }),
            }
        })
        .collect();
    Ok(Json(functions))
}
