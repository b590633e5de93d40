//! Metering one invocation while it runs.
//!
//! An invocation ends at two independent moments: the guest's task finishes,
//! and the gateway finishes sending the response body. Whichever comes last
//! ends the invocation, so the [`Meter`] is shared (`Arc`) by both and
//! reports itself when the last reference drops — no task waits for it and
//! nothing on the request path blocks on the ledger.

use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use stratus_telemetry::{MAX_OUTBOUND_SPANS, OutboundCall, Phases, TraceParent};

use crate::capture::OutputLine;
use crate::error::InvokeError;

type OnDone = Box<dyn FnOnce(Reading) + Send>;

/// What one invocation used, filled in as it runs.
pub struct Meter {
    started: Instant,
    cpu_ns: AtomicU64,
    peak_memory: AtomicU64,
    peak_host_memory: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    cold: AtomicBool,
    reused: AtomicBool,
    status: AtomicU16,
    outbound_requests: AtomicU32,
    outbound_bytes: AtomicU64,
    outbound_ns: AtomicU64,
    /// Who this invocation is, for the calls it makes to other functions.
    call: OnceLock<CallInfo>,
    /// The invocation's span, when the node traces: the parent of every
    /// outbound call it makes.
    trace: OnceLock<TraceParent>,
    /// Its outbound calls, kept for the trace (at most
    /// [`MAX_OUTBOUND_SPANS`], and only when the trace is sampled).
    calls: Mutex<Vec<OutboundCall>>,
    phases: OnceLock<Phases>,
    failure: OnceLock<&'static str>,
    guest: OnceLock<GuestEnd>,
    on_done: Mutex<Option<OnDone>>,
}

struct GuestEnd {
    at: Instant,
    error: Option<InvokeError>,
    output: Vec<OutputLine>,
}

/// An invocation's place in a chain of `.svc` calls: its own id (which
/// the functions it calls record as their caller), how deep it is, and the
/// count of calls made so far in its whole tree.
#[derive(Debug, Clone, Default)]
pub struct CallInfo {
    pub id: String,
    /// 0 for an invocation nobody called (a request, an event); n + 1 for a
    /// call made by an invocation at depth n.
    pub depth: u32,
    /// Shared by every invocation of one tree of calls.
    pub tree: CallTree,
}

/// The calls made in one tree of `.svc` calls, from the invocation nobody
/// called down: bounding them bounds what one request can set off (a
/// fan-out of 50 at each of 8 levels is billions of invocations).
#[derive(Debug, Clone, Default)]
pub struct CallTree(Arc<AtomicU32>);

impl CallTree {
    /// Counts one more call in the tree; returns how many there are now.
    pub fn add_call(&self) -> u32 {
        self.0.fetch_add(1, Ordering::Relaxed).saturating_add(1)
    }
}

/// The final reading of a [`Meter`].
#[derive(Debug)]
pub struct Reading {
    /// From the meter's creation (admission) until the guest finished, or
    /// until the last reference dropped if the guest never ran.
    pub wall: Duration,
    /// Time the guest spent running: the sum of the polls of its task
    /// (instantiation, the handler and the host calls it made), excluding
    /// time it spent waiting on I/O, timers or the scheduler.
    pub cpu: Duration,
    pub peak_memory: u64,
    /// Peak host memory the guest made the host hold (headers it built),
    /// in bytes, sampled while it ran.
    pub peak_host_memory: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The code had to be loaded first (a start from zero).
    pub cold: bool,
    /// An earlier request's instance served this one (`reuse`).
    pub reused: bool,
    /// The status the caller got, as set with [`Meter::set_status`].
    pub status: u16,
    /// Outbound HTTP requests and `.svc` calls made.
    pub outbound_requests: u32,
    /// Their request and response bodies, in bytes.
    pub outbound_bytes: u64,
    /// Time spent waiting for their answers.
    pub outbound_time: Duration,
    /// Queue, instantiation and execution, once the guest answered.
    pub phases: Option<Phases>,
    /// Outbound calls kept for the trace (none when it is not sampled).
    pub calls: Vec<OutboundCall>,
    /// The platform's error code for the caller's answer, if it was one.
    pub failure: Option<&'static str>,
    /// How the guest failed, if it did — including after its response had
    /// started, which the caller's status code cannot show.
    pub error: Option<InvokeError>,
    /// The lines the guest wrote to stdout and stderr.
    pub output: Vec<OutputLine>,
}

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter").finish_non_exhaustive()
    }
}

impl Meter {
    /// A meter whose reading goes to `on_done` when the invocation ends.
    pub fn new(on_done: impl FnOnce(Reading) + Send + 'static) -> Arc<Meter> {
        Arc::new(Meter::with(Some(Box::new(on_done))))
    }

    /// A meter nobody reads (probes, benchmarks of the runtime alone).
    pub fn unread() -> Arc<Meter> {
        Arc::new(Meter::with(None))
    }

    fn with(on_done: Option<OnDone>) -> Meter {
        Meter {
            started: Instant::now(),
            cpu_ns: AtomicU64::new(0),
            peak_memory: AtomicU64::new(0),
            peak_host_memory: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            cold: AtomicBool::new(false),
            reused: AtomicBool::new(false),
            status: AtomicU16::new(0),
            outbound_requests: AtomicU32::new(0),
            outbound_bytes: AtomicU64::new(0),
            outbound_ns: AtomicU64::new(0),
            call: OnceLock::new(),
            trace: OnceLock::new(),
            calls: Mutex::new(Vec::new()),
            phases: OnceLock::new(),
            failure: OnceLock::new(),
            guest: OnceLock::new(),
            on_done: Mutex::new(on_done),
        }
    }

    /// Records the answer the caller got: its status and, for a platform
    /// error, its code.
    pub fn set_status(&self, status: u16, failure: Option<&'static str>) {
        self.status.store(status, Ordering::Relaxed);
        if let Some(code) = failure {
            let _ = self.failure.set(code);
        }
    }

    /// Records a failure code unless one was recorded already.
    pub fn set_failure(&self, code: &'static str) {
        let _ = self.failure.set(code);
    }

    pub fn add_bytes_in(&self, n: u64) {
        self.bytes_in.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add_bytes_out(&self, n: u64) {
        self.bytes_out.fetch_add(n, Ordering::Relaxed);
    }

    /// Names the invocation for the calls it makes (set once, before it
    /// runs).
    pub fn set_call(&self, call: CallInfo) {
        let _ = self.call.set(call);
    }

    /// The invocation's id and call depth; an anonymous depth-0 invocation
    /// when they were not set.
    pub fn call(&self) -> CallInfo {
        self.call.get().cloned().unwrap_or_default()
    }

    /// Puts the invocation in a trace (set once, before it runs).
    pub fn set_trace(&self, trace: TraceParent) {
        let _ = self.trace.set(trace);
    }

    /// The invocation's span, when the node traces.
    pub fn trace(&self) -> Option<&TraceParent> {
        self.trace.get()
    }

    /// Where the time went until the guest answered.
    pub fn set_phases(&self, phases: Phases) {
        let _ = self.phases.set(phases);
    }

    /// Keeps an outbound call for the trace, up to the bound.
    pub(crate) fn add_call(&self, call: OutboundCall) {
        let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        if calls.len() < MAX_OUTBOUND_SPANS {
            calls.push(call);
        }
    }

    /// Counts one outbound request; returns how many there are now.
    pub(crate) fn add_outbound_request(&self) -> u32 {
        self.outbound_requests.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Counts outbound body bytes; returns the total now.
    pub(crate) fn add_outbound_bytes(&self, n: u64) -> u64 {
        self.outbound_bytes.fetch_add(n, Ordering::Relaxed) + n
    }

    pub(crate) fn add_outbound_time(&self, spent: Duration) {
        self.outbound_ns
            .fetch_add(spent.as_nanos() as u64, Ordering::Relaxed);
    }

    pub fn peak_memory(&self) -> u64 {
        self.peak_memory.load(Ordering::Relaxed)
    }

    pub(crate) fn add_cpu(&self, spent: Duration) {
        self.cpu_ns
            .fetch_add(spent.as_nanos() as u64, Ordering::Relaxed);
    }

    pub(crate) fn host_memory_at(&self, bytes: u64) {
        self.peak_host_memory.fetch_max(bytes, Ordering::Relaxed);
    }

    pub(crate) fn memory_at(&self, bytes: u64) {
        self.peak_memory.fetch_max(bytes, Ordering::Relaxed);
    }

    pub(crate) fn set_cold(&self) {
        self.cold.store(true, Ordering::Relaxed);
    }

    pub(crate) fn set_reused(&self) {
        self.reused.store(true, Ordering::Relaxed);
    }

    /// How the guest failed, once it has finished with an error; `None`
    /// while it runs or when it finished cleanly. A response body that ends
    /// after this is set was cut short by the failure, not finished.
    pub fn guest_error(&self) -> Option<&InvokeError> {
        self.guest.get().and_then(|end| end.error.as_ref())
    }

    pub(crate) fn guest_finished(&self, error: Option<InvokeError>, output: Vec<OutputLine>) {
        let _ = self.guest.set(GuestEnd {
            at: Instant::now(),
            error,
            output,
        });
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        let on_done = self
            .on_done
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(on_done) = on_done else { return };
        let guest = self.guest.take();
        let ended = guest.as_ref().map_or_else(Instant::now, |g| g.at);
        let (error, output) = guest.map(|g| (g.error, g.output)).unwrap_or_default();
        on_done(Reading {
            wall: ended.saturating_duration_since(self.started),
            cpu: Duration::from_nanos(*self.cpu_ns.get_mut()),
            peak_memory: *self.peak_memory.get_mut(),
            peak_host_memory: *self.peak_host_memory.get_mut(),
            bytes_in: *self.bytes_in.get_mut(),
            bytes_out: *self.bytes_out.get_mut(),
            cold: *self.cold.get_mut(),
            reused: *self.reused.get_mut(),
            status: *self.status.get_mut(),
            outbound_requests: *self.outbound_requests.get_mut(),
            outbound_bytes: *self.outbound_bytes.get_mut(),
            outbound_time: Duration::from_nanos(*self.outbound_ns.get_mut()),
            phases: self.phases.get().copied(),
            calls: std::mem::take(self.calls.get_mut().unwrap_or_else(PoisonError::into_inner)),
            failure: self.failure.get().copied(),
            error,
            output,
        });
    }
}
