//! Turning an invocation's [`Meter`] reading into a ledger record.

use std::sync::Arc;
use std::time::SystemTime;

use stratus_runtime::{CallInfo, Meter, OutputKind, Reading};
use stratus_storage::{
    InvocationRecord, LogLine, LogStream, Outbound, Recorder, Trigger, billed_mib, billed_ms,
};

use crate::canary::VersionOutcomes;
use crate::error::invoke_error_code;
use crate::live::LiveFunction;
use crate::series::{Ending, FunctionSeries};
use crate::traces::Traced;

/// A meter that, when the invocation ends, counts it in its function's
/// series (`/metrics`), exports its spans (when it is traced) and records
/// it in the ledger (unless metering is off).
pub(crate) fn meter_for(
    recorder: Option<&Recorder>,
    function: &LiveFunction,
    id: &str,
    trigger: Trigger,
    caller: Option<&CallInfo>,
    trace: Option<Traced>,
) -> Arc<Meter> {
    let parent = trace.as_ref().map(|t| t.begun.trace.clone());
    let meter = record_on_done(recorder, function, id, trigger, caller, trace);
    if let Some(parent) = parent {
        meter.set_trace(parent);
    }
    // The invocation's own id and depth, for the calls it makes in turn.
    meter.set_call(CallInfo {
        id: id.to_owned(),
        depth: caller.map_or(0, |c| c.depth + 1),
        tree: caller.map(|c| c.tree.clone()).unwrap_or_default(),
    });
    meter
}

fn record_on_done(
    recorder: Option<&Recorder>,
    function: &LiveFunction,
    id: &str,
    trigger: Trigger,
    caller: Option<&CallInfo>,
    trace: Option<Traced>,
) -> Arc<Meter> {
    let series = function.series.clone();
    let outcomes = function.outcomes.clone();
    let (slots, max_concurrency) = (function.slots.clone(), function.max_concurrency);
    let in_flight = move || {
        let available = u32::try_from(slots.available_permits()).unwrap_or(u32::MAX);
        max_concurrency.saturating_sub(available).max(1)
    };
    let Some(recorder) = recorder.cloned() else {
        return Meter::new(move |mut reading: Reading| {
            count(&series, &outcomes, ending(trigger, &reading, in_flight()));
            if let Some(trace) = trace {
                trace.end(&mut reading);
            }
        });
    };
    let started_at = SystemTime::now();
    let (app, name, version, id) = (
        function.app.clone(),
        function.name.clone(),
        function.version,
        id.to_owned(),
    );
    let caller = caller.map(|c| c.id.clone());
    Meter::new(move |mut reading: Reading| {
        count(&series, &outcomes, ending(trigger, &reading, in_flight()));
        if let Some(trace) = trace {
            trace.end(&mut reading);
        }
        let mut logs: Vec<LogLine> = reading
            .output
            .iter()
            .map(|line| LogLine {
                invocation_id: id.clone(),
                app: app.clone(),
                function: name.clone(),
                at: line.at,
                stream: match line.stream {
                    OutputKind::Stdout => LogStream::Stdout,
                    OutputKind::Stderr => LogStream::Stderr,
                },
                text: line.text.clone(),
            })
            .collect();
        // The record keeps only the error's code; its cause (a stack
        // overflow, an exit code, the limit hit) goes into the log, where
        // `stratus logs` and `GET /v1/invocations/{id}` show it after the
        // function's own last words.
        if let Some(error) = &reading.error {
            logs.push(LogLine {
                invocation_id: id.clone(),
                app: app.clone(),
                function: name.clone(),
                at: SystemTime::now(),
                stream: LogStream::Stderr,
                text: format!("[stratus] {error}"),
            });
        }
        // The caller's answer names the failure when there was one; a guest
        // that failed after its response started shows only here.
        let error = reading
            .failure
            .or_else(|| reading.error.as_ref().map(|e| invoke_error_code(e).1));
        let record = InvocationRecord {
            id,
            app,
            function: name,
            version,
            trigger,
            started_at,
            wall: reading.wall,
            cpu: reading.cpu,
            peak_memory: reading.peak_memory,
            peak_host_memory: reading.peak_host_memory,
            bytes_in: reading.bytes_in,
            bytes_out: reading.bytes_out,
            status: reading.status,
            error: error.map(str::to_owned),
            cold: reading.cold,
            caller,
            outbound: Outbound {
                requests: reading.outbound_requests,
                bytes: reading.outbound_bytes,
                time: reading.outbound_time,
            },
        };
        recorder.record(record, logs);
    })
}

/// Counts an ended invocation in its function's series and, unless it
/// was an event's (which only the stable version takes), in its version's
/// outcomes.
fn count(series: &FunctionSeries, outcomes: &VersionOutcomes, ending: Ending) {
    if ending.trigger != Trigger::Event {
        outcomes.count(ending.failed || ending.status >= 500, ending.wall);
    }
    series.count(ending);
}

/// How the invocation `reading` tells of ended, for its function's series.
fn ending(trigger: Trigger, reading: &Reading, in_flight: u32) -> Ending {
    Ending {
        in_flight,
        trigger,
        status: reading.status,
        failed: reading.failure.is_some() || reading.error.is_some(),
        cold: reading.cold,
        wall: reading.wall,
        mib_ms: billed_mib(reading.peak_memory) * billed_ms(reading.wall),
        outbound_requests: reading.outbound_requests,
    }
}
