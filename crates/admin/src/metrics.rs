//! Prometheus metrics of the node, read on demand from its counters and
//! written in the format the scraper asked for (`exposition`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use axum::extract::{FromRef, State};
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use http::header::{ACCEPT, CONTENT_TYPE, VARY};
use stratus_control::Node;
use stratus_events::Dispatcher;

use crate::AdminState;
use crate::exposition::{Family, Format, Kind, render};

/// Whose counters are scraped: the control plane's (which answers for the
/// runtime, the invoker and the ledger's writer) and the dispatcher's.
#[derive(Debug, Clone)]
pub struct MetricsState {
    node: Arc<Node>,
    dispatcher: Arc<Dispatcher>,
}

impl FromRef<AdminState> for MetricsState {
    fn from_ref(state: &AdminState) -> Self {
        MetricsState {
            node: state.node.clone(),
            dispatcher: state.dispatcher.clone(),
        }
    }
}

/// The node's counters and gauges, as the classic Prometheus text format or
/// as OpenMetrics, by the `Accept` header.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    params(("Accept" = Option<String>, Header, description = "OpenMetrics is served when this prefers `application/openmetrics-text` (as Prometheus's scrapes do); otherwise the classic text format")),
    responses((status = 200, description = "Every family has its samples; counters end in `_total`", content(
        (String = "text/plain; version=0.0.4; charset=utf-8"),
        (String = "application/openmetrics-text; version=1.0.0; charset=utf-8"),
    )))
)]
pub async fn scrape(State(state): State<MetricsState>, headers: HeaderMap) -> Response {
    let accept = headers.get(ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::negotiate(accept);
    let backlog = state.dispatcher.backlog(BACKLOG_WAIT).await;
    let mut families = families(&state);
    if let Some(backlog) = backlog {
        families.extend(crate::function_metrics::queue_families(
            &backlog,
            SystemTime::now(),
        ));
    }
    let text = render(format, "stratus", &families);
    (
        [(CONTENT_TYPE, format.content_type()), (VARY, "Accept")],
        text,
    )
        .into_response()
}

/// How long a scrape waits for the queues' backlog (in a cluster, a few
/// JetStream requests) before it answers without it.
const BACKLOG_WAIT: Duration = Duration::from_secs(2);

fn families(state: &MetricsState) -> Vec<Family> {
    let stats = state.node.stats();
    let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let mut families = Vec::new();
    let mut counter = |name, help, value| families.push(Family::counter(name, help, value));
    let residency = state.node.residency();
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
    for (name, help, value) in counters {
        counter(name, help, read(value));
    }
    let tiers = state.node.tier_stats();
    let counters: [(&str, &str, &AtomicU64); 3] = [
        (
            "baseline_compiles",
            "Components compiled with the baseline compiler (Winch) to serve at once",
            &tiers.baseline_compiles,
        ),
        (
            "tier_ups",
            "Components whose optimized code (Cranelift) replaced their baseline code",
            &tiers.tier_ups,
        ),
        (
            "tier_up_failures",
            "Optimized compiles in the background that failed or could not be queued (the component keeps its baseline code)",
            &tiers.tier_up_failures,
        ),
    ];
    for (name, help, value) in counters {
        counter(name, help, read(value));
    }
    let capabilities = state.node.capability_stats();
    let counters: [(&str, &str, &AtomicU64); 9] = [
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
            "keyvalue_over_quota",
            "Key-value writes refused for taking the app past --keyvalue-max-bytes-per-app or --keyvalue-max-keys-per-app",
            &capabilities.keyvalue_over_quota,
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
            "Outbound requests refused: no `allowed_outbound` pattern allowed them, or their host resolved to a loopback, private or link-local address",
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
    for (name, help, value) in counters {
        counter(name, help, read(value));
    }
    let events = state.dispatcher.stats();
    for (name, help, value) in [
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
        counter(name, help, read(value));
    }
    if let Some(ledger) = state.node.ledger_stats() {
        let counters: [(&str, &str, &AtomicU64); 8] = [
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
            (
                "log_lines_over_budget",
                "Function log lines dropped because their app had logged its daily budget (--log-max-per-app-day)",
                &ledger.log_lines_over_budget,
            ),
            (
                "invocation_records_sampled",
                "Invocations counted in usage whose raw record was not kept (sampled past --ledger-sample-above per function and second)",
                &ledger.records_sampled,
            ),
            (
                "log_followers_dropped",
                "Followers of logs (logs --follow) dropped because they stopped reading",
                &ledger.log_followers_dropped,
            ),
        ];
        for (name, help, value) in counters {
            counter(name, help, read(value));
        }
    }
    counter(
        "calls_refused",
        "Calls between functions refused: too deep a chain, or past their request's budget (--max-calls-per-request)",
        state.node.calls_refused(),
    );
    let live = state.node.live_counts();
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    families.push(Family::gauge(
        "live_functions",
        "Functions of live versions",
        count(live.functions),
    ));
    families.push(Family::gauge(
        "resident_functions",
        "Live functions whose compiled code is in memory",
        count(live.resident),
    ));
    families.push(Family::gauge(
        "baseline_functions",
        "Live functions serving baseline code (Winch) while their optimized code compiles",
        count(live.baseline),
    ));
    families.push(Family::gauge(
        "tier_up_queue",
        "Optimized compiles queued or running in the background",
        count(state.node.tier_up_waiting()),
    ));
    let mut canaries = Family {
        name: "canary_share_percent",
        help: "Each running canary's share of its app's requests, by its version (absent when the app has none)",
        kind: Kind::Gauge,
        samples: Vec::new(),
    };
    for (app, version, percent) in state.node.canaries() {
        let (namespace, name) = stratus_manifest::split_key(&app);
        canaries.samples.push(crate::exposition::Sample::new(
            vec![
                ("namespace", namespace.to_owned()),
                ("app", name.to_owned()),
                ("version", version.to_string()),
            ],
            crate::exposition::Number::Int(i64::from(percent)),
        ));
    }
    families.push(canaries);
    // The scaling signal: in flight against capacity, per node.
    let admission = state.node.invoker().admission();
    families.push(Family::gauge(
        "inflight_requests",
        "Invocations running now (HTTP, events, calls between functions)",
        i64::from(admission.in_flight()),
    ));
    families.push(Family::gauge(
        "node_capacity",
        "Invocations the node runs at once at most (its instance slots: --max-instances less the idle reserve)",
        i64::from(admission.capacity()),
    ));
    let mut phases = Family {
        name: "invocation_phase_seconds",
        help: "Invocations' time by phase: waiting for a slot (queue), making the instance (instantiate), running until the answer (execution)",
        kind: Kind::Histogram,
        samples: Vec::new(),
    };
    for (phase, reading) in state.node.invoker().phases().read() {
        let labels = || vec![("phase", phase.to_owned())];
        crate::function_metrics::histogram(&mut phases, labels, &reading);
    }
    families.push(phases);
    families.extend(crate::function_metrics::families(
        &state.node.live_functions(None),
    ));
    families
}
