//! Prometheus metrics of the node, rendered on demand from its counters.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::AdminState;

pub async fn render(State(state): State<AdminState>) -> Response {
    let stats = state.node.stats();
    let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let mut registry = Registry::with_prefix("stratus");
    let residency = state.node.runtime().residency();
    let counters: [(&str, &str, &AtomicU64); 7] = [
        (
            "components_compiled",
            "Components compiled to native code",
            &stats.compiled,
        ),
        (
            "components_loaded_from_cache",
            "Components whose native code was loaded from the compile cache",
            &stats.loaded_from_cache,
        ),
        ("deploys", "Versions deployed", &stats.deploys),
        (
            "activations",
            "Versions activated by rollback or explicit activation",
            &stats.activations,
        ),
        (
            "cold_starts",
            "Requests whose function's compiled code had to be loaded first",
            &residency.cold_starts,
        ),
        (
            "warm_starts",
            "Requests whose function's compiled code was in memory",
            &residency.warm_starts,
        ),
        (
            "evictions",
            "Times an idle function's compiled code was dropped (scale to zero)",
            &residency.evictions,
        ),
    ];
    for (name, help, counter) in counters {
        registry.register(name, help, ConstCounter::new(read(counter)));
    }
    let live = state.node.gateway().live();
    registry.register(
        "live_functions",
        "Functions of live versions",
        ConstGauge::new(live.functions().count() as i64),
    );
    registry.register(
        "resident_functions",
        "Live functions whose compiled code is in memory",
        ConstGauge::new(
            live.functions()
                .filter(|f| f.function.is_resident())
                .count() as i64,
        ),
    );
    let mut text = String::new();
    if let Err(e) = encode(&mut text, &registry) {
        tracing::error!("cannot encode metrics: {e}");
    }
    (
        [(
            http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
