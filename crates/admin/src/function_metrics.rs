//! The per-function families of `/metrics`: each live function's series
//! (`stratus_invoke::FunctionSeries`), labelled by `namespace`, `app`,
//! `function` and `trigger` (and `code`, the status class, for responses).
//! Every label is bounded: the live functions, four triggers, five classes.
//! `docs/metrics.md` maps them to OpenTelemetry's FaaS conventions.

use std::sync::Arc;
use std::time::SystemTime;

use stratus_events::queue_function;
use stratus_invoke::{DURATION_BUCKETS, HistogramReading, LiveFunction};
use stratus_manifest::split_key;
use stratus_storage::Backlog;

use crate::exposition::{Family, Kind, Number, Sample, float};

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The families of every live function, each family holding the samples
/// of all functions (one `# TYPE` each, as the formats require).
pub(crate) fn families(functions: &[Arc<LiveFunction>]) -> Vec<Family> {
    let mut requests = family(
        "function_requests",
        "Invocations answered, by status class of the answer",
        Kind::Counter,
    );
    let mut errors = family(
        "function_errors",
        "Invocations that failed: a trap, a timeout, a limit hit, the platform refusing",
        Kind::Counter,
    );
    let mut duration = family(
        "function_duration_seconds",
        "Invocations' duration from admission to the end of the response",
        Kind::Histogram,
    );
    let mut cold = family(
        "function_cold_starts",
        "Invocations whose function's compiled code had to be loaded first",
        Kind::Counter,
    );
    let mut billed = family(
        "function_billed_gigabyte_seconds",
        "Billed GB-seconds (peak memory in MiB, rounded up, times milliseconds, rounded up)",
        Kind::Counter,
    );
    let mut inflight = family(
        "function_inflight",
        "Invocations of the function running now, on any of its versions",
        Kind::Gauge,
    );
    let mut limit = family(
        "function_concurrency_limit",
        "Invocations of the function that may run at once (manifest max_concurrency)",
        Kind::Gauge,
    );
    let mut outbound = family(
        "function_outbound_requests",
        "Outbound HTTP requests and calls to other functions (.svc) the function's invocations made",
        Kind::Counter,
    );
    let mut events = family(
        "function_events",
        "Event deliveries to the function, by how they were settled: handled, retried, dead (a dead letter), busy (put back at capacity)",
        Kind::Counter,
    );
    let mut tier = family(
        "function_tier",
        "1 for the compiler of the code the function serves with: baseline (Winch) until its optimized code (Cranelift) is compiled in the background; absent when scaled to zero",
        Kind::Gauge,
    );
    for function in functions {
        let (namespace, app) = split_key(&function.app);
        let labels = || {
            vec![
                ("namespace", namespace.to_owned()),
                ("app", app.to_owned()),
                ("function", function.name.clone()),
            ]
        };
        if let Some(code) = function.function.tier() {
            let mut labels = labels();
            labels.push(("tier", code.name().to_owned()));
            tier.samples.push(Sample::new(labels, Number::Int(1)));
        }
        inflight.samples.push(Sample::new(
            labels(),
            Number::Int(i64::from(function.in_flight())),
        ));
        limit.samples.push(Sample::new(
            labels(),
            Number::Int(i64::from(function.max_concurrency)),
        ));
        for (outcome, n) in function.series.events() {
            if n > 0 {
                let mut labels = labels();
                labels.push(("outcome", outcome.as_str().to_owned()));
                events.samples.push(Sample::new(labels, Number::Uint(n)));
            }
        }
        for reading in function.series.read() {
            let labels = || {
                let mut labels = labels();
                labels.push(("trigger", reading.trigger.as_str().to_owned()));
                labels
            };
            for (class, n) in CLASSES
                .iter()
                .zip(reading.responses)
                .filter(|(_, n)| *n > 0)
            {
                let mut labels = labels();
                labels.push(("code", (*class).to_owned()));
                requests.samples.push(Sample::new(labels, Number::Uint(n)));
            }
            // As a client library's labelled counter does, a series of
            // errors or cold starts appears with the first one: most
            // functions have neither, and each line is a thousand lines
            // of a scrape with a thousand functions.
            if reading.errors > 0 {
                errors
                    .samples
                    .push(Sample::new(labels(), Number::Uint(reading.errors)));
            }
            if reading.outbound_requests > 0 {
                outbound.samples.push(Sample::new(
                    labels(),
                    Number::Uint(reading.outbound_requests),
                ));
            }
            if reading.cold_starts > 0 {
                cold.samples
                    .push(Sample::new(labels(), Number::Uint(reading.cold_starts)));
            }
            billed
                .samples
                .push(Sample::new(labels(), Number::Float(reading.gb_seconds)));
            histogram(&mut duration, labels, &reading.duration);
        }
    }
    vec![
        requests, errors, duration, cold, billed, inflight, limit, outbound, events, tier,
    ]
}

/// Each function queue's backlog: what waits, since when, and its dead
/// letters — only for queues that hold some (a function whose events are
/// all handled has none of these series; read an absent one as 0).
pub(crate) fn queue_families(backlog: &[Backlog], now: SystemTime) -> Vec<Family> {
    let mut waiting = family(
        "function_queue_waiting_events",
        "Events for the function not yet handled: queued, waiting for a retry, or being delivered",
        Kind::Gauge,
    );
    let mut age = family(
        "function_queue_oldest_event_age_seconds",
        "How long the oldest event waiting for the function has waited",
        Kind::Gauge,
    );
    let mut dead = family(
        "function_dead_letters",
        "Dead letters of the function: events whose last attempt failed, until redriven or pruned",
        Kind::Gauge,
    );
    for queue in backlog {
        let Some((key, function)) = queue_function(&queue.queue) else {
            continue;
        };
        let (namespace, app) = split_key(key);
        let labels = || {
            vec![
                ("namespace", namespace.to_owned()),
                ("app", app.to_owned()),
                ("function", function.to_owned()),
            ]
        };
        let count = |n: u64| Number::Int(i64::try_from(n).unwrap_or(i64::MAX));
        waiting
            .samples
            .push(Sample::new(labels(), count(queue.waiting)));
        dead.samples.push(Sample::new(labels(), count(queue.dead)));
        if let Some(oldest) = queue.oldest {
            let waited = now.duration_since(oldest).unwrap_or_default();
            age.samples
                .push(Sample::new(labels(), Number::Float(waited.as_secs_f64())));
        }
    }
    vec![waiting, age, dead]
}

fn family(name: &'static str, help: &'static str, kind: Kind) -> Family {
    Family {
        name,
        help,
        kind,
        samples: Vec::new(),
    }
}

/// A histogram's buckets (cumulative, `le` the upper bound), sum and count.
pub(crate) fn histogram(
    family: &mut Family,
    labels: impl Fn() -> Vec<(&'static str, String)>,
    reading: &HistogramReading,
) {
    let bounds = DURATION_BUCKETS.iter().copied().chain([f64::INFINITY]);
    for (bound, n) in bounds.zip(&reading.buckets) {
        let mut labels = labels();
        labels.push(("le", float(bound)));
        family.samples.push(Sample {
            suffix: "_bucket",
            labels,
            value: Number::Uint(*n),
        });
    }
    family.samples.push(Sample {
        suffix: "_sum",
        labels: labels(),
        value: Number::Float(reading.sum_seconds),
    });
    family.samples.push(Sample {
        suffix: "_count",
        labels: labels(),
        value: Number::Uint(reading.count),
    });
}
