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
    let counters: [(&str, &str, &AtomicU64); 9] = [
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
        (
            "reused_instances",
            "Requests served by an instance an earlier request used (reuse)",
            &residency.reused,
        ),
        (
            "kept_instances",
            "Times an instance was kept idle for reuse after a request",
            &residency.reused_kept,
        ),
    ];
    for (name, help, counter) in counters {
        registry.register(name, help, ConstCounter::new(read(counter)));
    }
    let capabilities = state.node.runtime().capability_stats();
    let counters: [(&str, &str, &AtomicU64); 8] = [
        (
            "keyvalue_operations",
            "Key-value operations functions made on their buckets",
            &capabilities.keyvalue_operations,
        ),
        (
            "keyvalue_errors",
            "Key-value operations the backend failed",
            &capabilities.keyvalue_errors,
        ),
        (
            "keyvalue_denied",
            "Buckets functions tried to open without a `keyvalue` grant",
            &capabilities.keyvalue_denied,
        ),
        (
            "secret_reads",
            "Secrets functions read through wasi:config",
            &capabilities.secret_reads,
        ),
        (
            "outbound_requests",
            "Outbound HTTP requests functions made (network and .svc)",
            &capabilities.outbound_requests,
        ),
        (
            "outbound_denied",
            "Outbound requests no `allowed_outbound` pattern allowed",
            &capabilities.outbound_denied,
        ),
        (
            "outbound_over_limit",
            "Outbound requests refused past the invocation's `max_outbound_requests`",
            &capabilities.outbound_over_limit,
        ),
        (
            "service_calls",
            "Outbound requests answered in process (queue.svc, other functions)",
            &capabilities.service_calls,
        ),
    ];
    for (name, help, counter) in counters {
        registry.register(name, help, ConstCounter::new(read(counter)));
    }
    let events = state.dispatcher.stats();
    for (name, help, counter) in [
        (
            "events_succeeded",
            "Queued events (async invocations) their function handled",
            &events.succeeded,
        ),
        (
            "events_retried",
            "Failed event deliveries queued again for a retry",
            &events.retried,
        ),
        (
            "events_dead",
            "Events moved to the dead letters after their last attempt",
            &events.dead,
        ),
        (
            "events_busy",
            "Event deliveries shed by a busy function and put back without using an attempt",
            &events.busy,
        ),
    ] {
        registry.register(name, help, ConstCounter::new(read(counter)));
    }
    if let Some(recorder) = state.node.gateway().recorder() {
        let ledger = recorder.stats();
        let counters: [(&str, &str, &AtomicU64); 5] = [
            (
                "invocation_records_written",
                "Invocation records committed to the ledger",
                &ledger.records_written,
            ),
            (
                "log_lines_written",
                "Function log lines committed to the ledger",
                &ledger.log_lines_written,
            ),
            (
                "ledger_batches",
                "Ledger transactions (each commits a batch of records)",
                &ledger.batches,
            ),
            (
                "ledger_write_failures",
                "Ledger batches that failed to commit and were retried",
                &ledger.write_failures,
            ),
            (
                "invocation_records_dropped",
                "Invocation records given up on (the disk refused them too long)",
                &ledger.records_dropped,
            ),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, ConstCounter::new(read(counter)));
        }
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
