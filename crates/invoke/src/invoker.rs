//! The one path to run a function: admission, meter, `Function::handle`,
//! cost receipt, record. HTTP ingress, event delivery and `.svc` calls are
//! thin adapters over [`Invoker`], so every way in gets the same limits,
//! back-pressure, metering and logs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Body;
use stratus_manifest::split_key;
use stratus_runtime::{BodyError, CallInfo, Invocation, Meter, ResponseBody};
use stratus_storage::{Recorder, Trigger};
use stratus_telemetry::{Phases, Tracer};
use tracing::Instrument;

use crate::admission::Admission;
use crate::error::PlatformError;
use crate::live::{LiveFunction, LiveSet};
use crate::metering::meter_for;
use crate::series::PhaseSeries;
use crate::tenancy::Tenancy;
use crate::traces::{TraceShape, Traced, end_refused};
use stratus_runtime::SharedWarnLimit;

/// The response header carrying the invocation id, on every answer.
pub const INVOCATION_ID_HEADER: &str = "x-stratus-invocation-id";

/// The live set and the logic to invoke its functions.
#[derive(Debug)]
pub struct Invoker {
    live: ArcSwap<LiveSet>,
    admission: Admission,
    /// Namespaces' run-time quotas.
    tenancy: Tenancy,
    /// Invocation failures are logged, but a guest that fails on purpose
    /// thousands of times a second must not fill the node's log.
    failure_warnings: SharedWarnLimit,
    /// Calls between functions refused for depth or the tree's budget.
    pub(crate) calls_refused: AtomicU64,
    /// Where invocations are metered and their logs kept; `None` when the
    /// node runs with metering off.
    recorder: Option<Recorder>,
    /// Exports invocations' spans; `None` when the node does not trace,
    /// and then no invocation does any tracing work.
    tracer: Option<Arc<Tracer>>,
    /// Every invocation's phases, node-wide, for `/metrics`.
    phases: PhaseSeries,
    /// Bumped on every activation, for those who follow the live set (the
    /// triggers, which subscribe and unsubscribe as functions come and go).
    changes: tokio::sync::watch::Sender<u64>,
}

impl Invoker {
    pub fn new(
        admission: Admission,
        recorder: Option<Recorder>,
        tracer: Option<Arc<Tracer>>,
    ) -> Arc<Invoker> {
        Arc::new(Invoker {
            live: ArcSwap::default(),
            admission,
            tenancy: Tenancy::default(),
            failure_warnings: SharedWarnLimit::default(),
            calls_refused: AtomicU64::new(0),
            recorder,
            tracer,
            phases: PhaseSeries::default(),
            changes: tokio::sync::watch::Sender::new(0),
        })
    }

    /// A snapshot of the functions serving right now.
    pub fn live(&self) -> Arc<LiveSet> {
        self.live.load_full()
    }

    /// Makes `set` the serving set in one atomic step.
    pub fn activate(&self, set: LiveSet) {
        self.live.store(Arc::new(set));
        self.changes.send_modify(|n| *n += 1);
    }

    /// Wakes each time a new live set is activated.
    pub fn live_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Invokes a function with an in-memory body (admin `invoke`). The
    /// response carries the invocation id.
    pub async fn invoke_buffered(
        &self,
        function: &LiveFunction,
        request: hyper::Request<Bytes>,
        id: &str,
        trigger: Trigger,
    ) -> hyper::Response<ResponseBody> {
        let length = request.body().len() as u64;
        let request =
            request.map(|bytes| Full::new(bytes).map_err(|never| -> BodyError { match never {} }));
        with_id(
            self.invoke(function, request, id, trigger, length, None)
                .await,
            id,
        )
    }

    /// Invokes `function` for another function's invocation (`caller`), as
    /// a `http://<function>.svc/` call: the same admission, limits,
    /// metering and logs as a gateway request, with the caller recorded.
    pub async fn call_function(
        &self,
        function: &LiveFunction,
        request: hyper::Request<Bytes>,
        caller: &CallInfo,
    ) -> hyper::Response<ResponseBody> {
        let id = new_invocation_id();
        let length = request.body().len() as u64;
        let request =
            request.map(|bytes| Full::new(bytes).map_err(|never| -> BodyError { match never {} }));
        let response = self
            .invoke(
                function,
                request,
                &id,
                Trigger::Service,
                length,
                Some(caller),
            )
            .await;
        with_id(response, &id)
    }

    /// Calls between functions refused so far (too deep, or past the
    /// budget of their request), for `/metrics`.
    pub fn calls_refused(&self) -> u64 {
        self.calls_refused.load(Ordering::Relaxed)
    }

    /// The node's invocation recorder, when metering is on.
    /// Where invocations wait for capacity: its size and what runs now.
    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    /// Namespaces' run-time quotas.
    pub fn tenancy(&self) -> &Tenancy {
        &self.tenancy
    }

    /// Where invocations' time went, by phase, node-wide.
    pub fn phases(&self) -> &PhaseSeries {
        &self.phases
    }

    pub fn recorder(&self) -> Option<&Recorder> {
        self.recorder.as_ref()
    }

    /// Invokes `function` with a streamed body of `body_length` bytes
    /// (known, or already read): admission (429 when shed), a meter that
    /// records the invocation when both the guest and the response body
    /// are done, the guest, then the cost receipt on its answer. Platform
    /// failures are answered as [`PlatformError`]s. The caller adds the
    /// invocation id header ([`with_id`]). Whatever the node logs while it
    /// runs is in the span `invocation`, so every such line carries the
    /// invocation's id, app and function (`--log-format json`), and its
    /// trace id when it is traced.
    pub async fn invoke<B>(
        &self,
        function: &LiveFunction,
        request: hyper::Request<B>,
        id: &str,
        trigger: Trigger,
        body_length: u64,
        caller: Option<&CallInfo>,
    ) -> hyper::Response<ResponseBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BodyError>,
    {
        let span = tracing::info_span!(
            "invocation",
            invocation_id = id,
            app = %function.app,
            function = %function.name,
            trigger = trigger.as_str(),
            // Set when the invocation is traced, so a log line leads to
            // its trace.
            trace_id = tracing::field::Empty,
        );
        let mut response = self
            .run(function, request, id, trigger, body_length, caller)
            .instrument(span)
            .await;
        // Which version answered: during a rollout or after a rollback, a
        // client (or a test) tells the versions apart by it.
        response
            .headers_mut()
            .insert(VERSION, HeaderValue::from(function.version));
        response
    }

    async fn run<B>(
        &self,
        function: &LiveFunction,
        mut request: hyper::Request<B>,
        id: &str,
        trigger: Trigger,
        body_length: u64,
        caller: Option<&CallInfo>,
    ) -> hyper::Response<ResponseBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BodyError>,
    {
        // wasi:http needs an authority; HTTP/1.0 clients may send none.
        if !request.headers().contains_key(header::HOST) && request.uri().authority().is_none() {
            request
                .headers_mut()
                .insert(header::HOST, HeaderValue::from_static("localhost"));
        }
        // The caller's trace is continued; the guest sees this
        // invocation's span as its request's parent.
        let trace = self.tracer.as_ref().map(|tracer| {
            let begun = tracer.begin(request.headers(), trigger == Trigger::Event);
            begun.trace.inject(request.headers_mut());
            tracing::Span::current().record("trace_id", begun.trace.trace_id());
            let shape = TraceShape::of(function, id, trigger, &request);
            Traced {
                tracer: tracer.clone(),
                begun,
                shape,
            }
        });
        let memory = function.function.limits().memory;
        let namespace_name = split_key(&function.app).0;
        let guard = self.tenancy.guard(namespace_name);
        // A spent `reject` budget stops every trigger, not only HTTP: an
        // event is put back without using an attempt (429 and
        // `Retry-After`), a `.svc` caller hears why.
        if guard.as_ref().is_some_and(|g| g.exhausted()) {
            let error = PlatformError::budget_exhausted(namespace_name);
            end_refused(trace, &error);
            return error.into_response(id);
        }
        let namespace = guard.as_ref().and_then(|g| g.concurrency());
        let admitted = match self
            .admission
            .admit(&function.slots, namespace, memory)
            .await
        {
            Ok(admitted) => admitted,
            Err(shed) => {
                let waited = self.admission.queue_timeout().as_millis();
                let error = PlatformError::shed(&function.name, shed, waited);
                end_refused(trace, &error);
                return error.into_response(id);
            }
        };
        let meter = meter_for(self.recorder.as_ref(), function, id, trigger, caller, trace);
        meter.add_bytes_in(body_length);
        let waited = admitted.waited;
        match function.function.handle(request, &meter, admitted).await {
            Ok((mut response, info)) => {
                meter.set_status(response.status().as_u16(), None);
                let phases = Phases {
                    queued: waited,
                    instantiate: info.instantiate,
                    execution: info.execution,
                };
                self.phases.observe(&phases);
                meter.set_phases(phases);
                add_receipt(response.headers_mut(), waited, &info);
                // The guest may still be streaming the body: its meter stays
                // open until the body is done (its admission only until the
                // guest is).
                let length = declared_length(response.headers());
                response.map(|body| Holding::wrap(body, meter, length))
            }
            Err(error) => {
                if let Some(count) = self.failure_warnings.hit() {
                    // The span names the invocation, app and function.
                    tracing::warn!("invocation failed: {error}{}", suppressed(count));
                }
                let error = PlatformError::from_invoke(&function.name, &error);
                meter.set_status(error.status.as_u16(), Some(error.code));
                error.into_response(id)
            }
        }
    }
}

/// The cost receipt: where the time went (`server-timing`, shown by browser
/// dev tools) and what the invocation is billed for (`x-stratus-billed`):
/// its duration up to the response, rounded up to the millisecond, and its
/// peak linear memory, rounded up to the MiB.
fn add_receipt(headers: &mut http::HeaderMap, queued: Duration, info: &Invocation) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let timing = format!(
        "queue;dur={:.3}, instantiate;dur={:.3}, exec;dur={:.3}",
        ms(queued),
        ms(info.instantiate),
        ms(info.execution)
    );
    let billed_ms = (ms(info.instantiate + info.execution).ceil() as u64).max(1);
    let billed_mib = info.peak_memory.div_ceil(1 << 20).max(1);
    let billed = format!("duration-ms={billed_ms}, memory-mib={billed_mib}");
    for (name, value) in [(SERVER_TIMING, timing), (BILLED_HEADER, billed)] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
}

/// The response header with what an invocation is billed for.
const BILLED_HEADER: HeaderName = HeaderName::from_static("x-stratus-billed");
const SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");
const INVOCATION_ID: HeaderName = HeaderName::from_static(INVOCATION_ID_HEADER);
/// The response header naming the version of the app that answered.
const VERSION: HeaderName = HeaderName::from_static("x-stratus-version");

/// Adds the invocation id header to an answer.
pub fn with_id(
    mut response: hyper::Response<ResponseBody>,
    id: &str,
) -> hyper::Response<ResponseBody> {
    if let Ok(value) = HeaderValue::from_str(id) {
        response.headers_mut().insert(INVOCATION_ID, value);
    }
    response
}

/// Time-ordered (UUIDv7), so ids sort by when the request arrived.
pub fn new_invocation_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// ` (and N more failures since the last warning)` when warnings were held
/// back, else nothing.
fn suppressed(count: u64) -> String {
    match count {
        0 | 1 => String::new(),
        n => format!(" (and {} more failures since the last warning)", n - 1),
    }
}

/// The response's `content-length`, when the guest declared one.
fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// A response body that keeps the invocation's meter until the body has
/// been sent (or dropped), counting its bytes, and that fails rather than
/// ends when the guest failed mid-body.
struct Holding {
    body: ResponseBody,
    meter: Arc<Meter>,
    /// The `content-length` the guest declared: once that much is sent the
    /// answer is complete, though hyper may drop the body without polling
    /// it to its end.
    length: Option<u64>,
    sent: u64,
    /// The body ended, cleanly or with the guest's error.
    ended: bool,
}

impl Drop for Holding {
    /// Dropped before its end: the client went away mid-response. The guest
    /// may then fail writing (and trap); that is not the function's error.
    fn drop(&mut self) {
        let complete = self.length.is_some_and(|length| self.sent >= length);
        if !self.ended && !complete && !self.body.is_end_stream() {
            self.meter.set_failure("client_disconnected");
        }
    }
}

impl Holding {
    fn wrap(body: ResponseBody, meter: Arc<Meter>, length: Option<u64>) -> ResponseBody {
        Holding {
            body,
            meter,
            length,
            sent: 0,
            ended: false,
        }
        .boxed_unsync()
    }
}

impl Body for Holding {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BodyError>>> {
        use std::task::Poll;
        let frame = std::pin::Pin::new(&mut self.body).poll_frame(cx);
        match &frame {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.sent += data.len() as u64;
                    self.meter.add_bytes_out(data.len() as u64);
                }
            }
            Poll::Ready(None) => {
                self.ended = true;
                // A guest that traps or times out mid-body drops its end of
                // the body as if it had finished it; the meter knows
                // better. The client must not take a cut-off answer for a
                // whole one: failing the body makes hyper close the
                // connection without the final chunk.
                if let Some(error) = self.meter.guest_error() {
                    return Poll::Ready(Some(Err(BodyError::InternalError(Some(format!(
                        "the function failed after its response began: {error}"
                    ))))));
                }
            }
            Poll::Ready(Some(Err(_))) => self.ended = true,
            Poll::Pending => {}
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
