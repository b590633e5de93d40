//! `GET /v1/functions/{function}/series`: a live function's last hour,
//! minute by minute, from the timeline the node keeps of it
//! (`stratus_invoke::timeline`), for the console's charts.

use axum::Json;
use axum::extract::{Extension, Path, State};
use stratus_invoke::timeline::STEP;
use stratus_manifest::{Namespace, split_key};

use super::InvocationsState;
use crate::error::ApiError;
use crate::model::{ErrorBody, FunctionTimeline, TimelinePoint};

/// A live function's last hour, sixty points a minute apart, oldest first;
/// the last point is the current minute, still filling. Counted on this
/// node since it started (earlier minutes read as zero).
#[utoipa::path(get, tag = "functions", path = "/v1/functions/{function}/series",
    params(("function" = String, Path)),
    responses((status = 200, body = FunctionTimeline), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn series(
    State(state): State<InvocationsState>,
    Extension(namespace): Extension<Namespace>,
    Path(function): Path<String>,
) -> Result<Json<FunctionTimeline>, ApiError> {
    let live = state.node.find_function(&namespace, &function)?;
    let points = live
        .series
        .timeline
        .read(std::time::SystemTime::now())
        .into_iter()
        .map(|p| TimelinePoint {
            at: stratus_storage::format_time(p.at),
            requests: p.requests,
            errors: p.errors,
            cold_starts: p.cold_starts,
            p50_ms: p.p50_ms,
            p99_ms: p.p99_ms,
            in_flight: p.peak_in_flight,
            capacity: live.max_concurrency,
        })
        .collect();
    Ok(Json(FunctionTimeline {
        app: split_key(&live.app).1.to_owned(),
        function: live.name.clone(),
        step_seconds: STEP.as_secs(),
        points,
    }))
}
