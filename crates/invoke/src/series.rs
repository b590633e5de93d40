//! Each live function's Prometheus series: what `/metrics` reports per
//! function and trigger — responses by status class, errors, duration,
//! cold starts, billed GB-seconds. Counted by every invocation as it ends,
//! whether or not the node keeps a ledger, with atomics only: no lock and
//! no lookup on the request path (a function's series are found once, when
//! its version goes live, and successive versions share them, so a deploy
//! does not reset a counter).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use stratus_storage::Trigger;

/// The upper bounds of the duration histogram's buckets, in seconds: a
/// 1-5-10 series from 5 ms to 10 s. Eight, not Prometheus's default
/// eleven: with a thousand functions every bucket is a thousand lines of
/// each scrape (`stratus-bench scrape`).
pub const DURATION_BUCKETS: [f64; 8] = [0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0];

/// A function's series, one set per trigger, and how the events delivered
/// to it were settled.
#[derive(Debug, Default)]
pub struct FunctionSeries {
    by_trigger: [TriggerSeries; Trigger::ALL.len()],
    events: [AtomicU64; EventOutcome::ALL.len()],
    /// The last hour minute by minute, for the console.
    pub timeline: crate::timeline::Timeline,
}

/// How the delivery of an event to a function was settled; in the order
/// of [`EventOutcome::ALL`], which indexes its counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    /// The function answered 2xx: the event is done.
    Handled,
    /// It failed, and the event waits for another attempt.
    Retried,
    /// It failed its last attempt, or could never be delivered: a dead
    /// letter.
    Dead,
    /// The function was at capacity: put back, no attempt used.
    Busy,
}

impl EventOutcome {
    pub const ALL: [EventOutcome; 4] = [
        EventOutcome::Handled,
        EventOutcome::Retried,
        EventOutcome::Dead,
        EventOutcome::Busy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventOutcome::Handled => "handled",
            EventOutcome::Retried => "retried",
            EventOutcome::Dead => "dead",
            EventOutcome::Busy => "busy",
        }
    }
}

/// What one trigger of one function did.
#[derive(Debug, Default)]
pub struct TriggerSeries {
    /// Answers by status class: 1xx to 5xx.
    responses: [AtomicU64; 5],
    /// Invocations that failed: a trap, a timeout, a limit, a refusal.
    errors: AtomicU64,
    cold_starts: AtomicU64,
    /// Billed MiB × milliseconds, as the ledger bills them.
    mib_ms: AtomicU64,
    /// Outbound HTTP requests and `.svc` calls made.
    outbound: AtomicU64,
    duration: Histogram,
}

/// Durations by the first of [`DURATION_BUCKETS`] they fit (the last
/// bucket: longer than every bound), and their sum.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; DURATION_BUCKETS.len() + 1],
    micros: AtomicU64,
}

/// A [`Histogram`] read: cumulative counts at or under each bound, then
/// all; the sum in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramReading {
    pub buckets: Vec<u64>,
    pub count: u64,
    pub sum_seconds: f64,
}

impl Histogram {
    pub fn observe(&self, length: Duration) {
        let seconds = length.as_secs_f64();
        let bucket = DURATION_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(DURATION_BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(length.as_micros()).unwrap_or(u64::MAX);
        self.micros.fetch_add(micros, Ordering::Relaxed);
    }

    pub fn read(&self) -> HistogramReading {
        let mut cumulative = 0;
        let buckets = self
            .buckets
            .iter()
            .map(|c| {
                cumulative += c.load(Ordering::Relaxed);
                cumulative
            })
            .collect::<Vec<_>>();
        HistogramReading {
            buckets,
            count: cumulative,
            sum_seconds: self.micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

/// The node's invocations by phase: the time each waited for a slot, took
/// to instantiate, and ran until it answered. Per node rather than per
/// function: three more histograms for each function would triple the largest
/// part of a scrape with a thousand functions (each invocation's own
/// phases are in its trace and its `server-timing` header).
#[derive(Debug, Default)]
pub struct PhaseSeries {
    queue: Histogram,
    instantiate: Histogram,
    execution: Histogram,
}

impl PhaseSeries {
    pub fn observe(&self, phases: &stratus_telemetry::Phases) {
        self.queue.observe(phases.queued);
        self.instantiate.observe(phases.instantiate);
        self.execution.observe(phases.execution);
    }

    /// Each phase's name and reading.
    pub fn read(&self) -> [(&'static str, HistogramReading); 3] {
        [
            ("queue", self.queue.read()),
            ("instantiate", self.instantiate.read()),
            ("execution", self.execution.read()),
        ]
    }
}

/// How one invocation ended, as the series count it.
#[derive(Debug, Clone, Copy)]
pub struct Ending {
    pub trigger: Trigger,
    /// The status the caller got (0: none).
    pub status: u16,
    pub failed: bool,
    pub cold: bool,
    pub wall: Duration,
    pub mib_ms: u64,
    pub outbound_requests: u32,
    /// Invocations of the function running as this one ended (itself
    /// included).
    pub in_flight: u32,
}

impl FunctionSeries {
    pub fn count(&self, ending: Ending) {
        let series = &self.by_trigger[ending.trigger.index()];
        if let Some(class) = (ending.status / 100).checked_sub(1)
            && let Some(counter) = series.responses.get(usize::from(class))
        {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        if ending.failed {
            series.errors.fetch_add(1, Ordering::Relaxed);
        }
        if ending.cold {
            series.cold_starts.fetch_add(1, Ordering::Relaxed);
        }
        series.mib_ms.fetch_add(ending.mib_ms, Ordering::Relaxed);
        series
            .outbound
            .fetch_add(u64::from(ending.outbound_requests), Ordering::Relaxed);
        series.duration.observe(ending.wall);
        self.timeline.mark(crate::timeline::Mark {
            at: std::time::SystemTime::now(),
            failed: ending.failed,
            cold: ending.cold,
            wall: ending.wall,
            in_flight: ending.in_flight,
        });
    }

    /// Counts an event delivery settled as `outcome`.
    pub fn count_event(&self, outcome: EventOutcome) {
        self.events[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Event deliveries by how they were settled.
    pub fn events(&self) -> [(EventOutcome, u64); EventOutcome::ALL.len()] {
        let mut read = EventOutcome::ALL.map(|o| (o, 0));
        for ((_, n), counter) in read.iter_mut().zip(&self.events) {
            *n = counter.load(Ordering::Relaxed);
        }
        read
    }

    /// A reading of each trigger that has been invoked.
    pub fn read(&self) -> Vec<TriggerReading> {
        Trigger::ALL
            .into_iter()
            .zip(&self.by_trigger)
            .map(|(trigger, s)| {
                let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
                TriggerReading {
                    trigger,
                    responses: s.responses.each_ref().map(load),
                    errors: load(&s.errors),
                    cold_starts: load(&s.cold_starts),
                    gb_seconds: load(&s.mib_ms) as f64 / 1024.0 / 1000.0,
                    outbound_requests: load(&s.outbound),
                    duration: s.duration.read(),
                }
            })
            .filter(|r| r.duration.count > 0)
            .collect()
    }
}

/// What a trigger of a function did so far.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerReading {
    pub trigger: Trigger,
    /// Answers with status 1xx, 2xx, 3xx, 4xx, 5xx.
    pub responses: [u64; 5],
    pub errors: u64,
    pub cold_starts: u64,
    pub gb_seconds: f64,
    pub outbound_requests: u64,
    /// Invocations by duration.
    pub duration: HistogramReading,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ending(trigger: Trigger, status: u16, ms: u64) -> Ending {
        Ending {
            trigger,
            status,
            failed: status >= 500,
            cold: false,
            wall: Duration::from_millis(ms),
            mib_ms: 2 * ms,
            outbound_requests: 1,
            in_flight: 1,
        }
    }

    #[test]
    fn counts_by_trigger_class_and_bucket() {
        let series = FunctionSeries::default();
        series.count(ending(Trigger::Http, 200, 3));
        series.count(ending(Trigger::Http, 503, 40));
        series.count(ending(Trigger::Http, 0, 20_000));
        series.count(ending(Trigger::Event, 204, 5));
        let read = series.read();
        assert_eq!(read.len(), 2, "{read:?}");
        let http = &read[0];
        assert_eq!(http.trigger, Trigger::Http);
        assert_eq!(http.responses, [0, 1, 0, 0, 1]);
        assert_eq!(http.errors, 1);
        assert_eq!(http.duration.count, 3);
        // 3 ms in the first bucket, 40 ms by 0.05 s, 20 s past them all.
        assert_eq!(http.duration.buckets, [1, 1, 2, 2, 2, 2, 2, 2, 3]);
        assert!((http.duration.sum_seconds - 20.043).abs() < 1e-9);
        assert!((http.gb_seconds - 2.0 * 20_043.0 / 1024.0 / 1000.0).abs() < 1e-12);
        assert_eq!(read[1].trigger, Trigger::Event);
        assert_eq!(read[1].duration.buckets[0], 1, "5 ms is at most 0.005 s");
        assert_eq!((http.outbound_requests, read[1].outbound_requests), (3, 1));
        series.count_event(EventOutcome::Retried);
        series.count_event(EventOutcome::Handled);
        series.count_event(EventOutcome::Retried);
        assert_eq!(
            series.events().map(|(o, n)| (o.as_str(), n)),
            [("handled", 1), ("retried", 2), ("dead", 0), ("busy", 0)]
        );
    }
}
