//! The gateway's accept loop and per-request dispatch.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use stratus_ledger::{Recorder, Trigger};
use stratus_runtime::{BodyError, CallInfo, Invocation, Meter, ResponseBody};
use tokio::net::TcpListener;

use crate::admission::{Admission, Admitted};
use crate::error::PlatformError;
use crate::live::{LiveFunction, LiveSet};
use crate::metering::meter_for;

/// The response header carrying the invocation id, on every answer.
pub const INVOCATION_ID_HEADER: &str = "x-stratus-invocation-id";

/// How long a client may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long shutdown waits for in-flight requests before closing anyway.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// The HTTP gateway: the live set plus the logic to serve from it.
#[derive(Debug)]
pub struct Gateway {
    live: ArcSwap<LiveSet>,
    admission: Admission,
    draining: AtomicBool,
    /// Where invocations are metered and their logs kept; `None` when the
    /// node runs with metering off.
    recorder: Option<Recorder>,
    /// Bumped on every activation, for those who follow the live set (the
    /// triggers, which subscribe and unsubscribe as functions come and go).
    changes: tokio::sync::watch::Sender<u64>,
}

impl Gateway {
    pub fn new(admission: Admission, recorder: Option<Recorder>) -> Arc<Gateway> {
        Arc::new(Gateway {
            live: ArcSwap::default(),
            admission,
            draining: AtomicBool::new(false),
            recorder,
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

    /// Accepts connections until `shutdown` resolves, then stops accepting
    /// and waits (up to a limit) for requests in flight to finish.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let graceful = GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (stream, _peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // Out of file descriptors and the like: back off
                        // rather than spin, keep serving existing clients.
                        tracing::warn!("gateway accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let gateway = self.clone();
            let service = service_fn(move |request| {
                let gateway = gateway.clone();
                async move { Ok::<_, Infallible>(gateway.handle(request).await) }
            });
            let connection = http1::Builder::new()
                .keep_alive(true)
                // A client that trickles its headers cannot hold a
                // connection (and its task) forever.
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!("gateway connection ended: {e}");
                }
            });
        }
        self.draining.store(true, Ordering::Relaxed);
        drop(listener);
        if tokio::time::timeout(DRAIN_LIMIT, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("gave up waiting for in-flight requests after {DRAIN_LIMIT:?}");
        }
        Ok(())
    }

    /// Serves one gateway request: route, check the body, invoke.
    pub async fn handle(&self, request: hyper::Request<Incoming>) -> hyper::Response<ResponseBody> {
        let id = new_invocation_id();
        let live = self.live();
        if self.draining.load(Ordering::Relaxed) {
            return with_id(PlatformError::draining().into_response(&id), &id);
        }
        let Some(function) = live.route(request.uri().path()).cloned() else {
            let error = PlatformError::no_route(request.uri().path());
            return with_id(error.into_response(&id), &id);
        };
        let limit = function.max_body;
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let response = match declared {
            Some(length) if length > limit => {
                PlatformError::body_too_large(limit).into_response(&id)
            }
            // A declared length is enforced by hyper's framing: stream it.
            Some(length) => {
                self.invoke(&function, request, &id, Trigger::Http, length, None)
                    .await
            }
            None if request.body().is_end_stream() => {
                self.invoke(&function, request, &id, Trigger::Http, 0, None)
                    .await
            }
            // Chunked: the size is unknown until read, so read it (bounded)
            // before the function starts rather than cut it off midway.
            None => {
                let (parts, body) = request.into_parts();
                match Limited::new(body, limit as usize).collect().await {
                    Ok(collected) => {
                        let bytes = collected.to_bytes();
                        let length = bytes.len() as u64;
                        let body =
                            Full::new(bytes).map_err(|never| -> BodyError { match never {} });
                        let request = hyper::Request::from_parts(parts, body);
                        self.invoke(&function, request, &id, Trigger::Http, length, None)
                            .await
                    }
                    Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                        PlatformError::body_too_large(limit).into_response(&id)
                    }
                    Err(e) => PlatformError::new(
                        http::StatusCode::BAD_REQUEST,
                        "bad_request",
                        format!("could not read the request body: {e}"),
                    )
                    .into_response(&id),
                }
            }
        };
        with_id(response, &id)
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

    /// The node's invocation recorder, when metering is on.
    pub fn recorder(&self) -> Option<&Recorder> {
        self.recorder.as_ref()
    }

    async fn invoke<B>(
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
        let memory = function.function.limits().memory;
        let admitted = match self.admission.admit(&function.slots, memory).await {
            Ok(admitted) => admitted,
            Err(shed) => {
                let waited = self.admission.queue_timeout().as_millis();
                return PlatformError::shed(&function.name, shed, waited).into_response(id);
            }
        };
        let meter = meter_for(self.recorder.as_ref(), function, id, trigger, caller);
        meter.add_bytes_in(body_length);
        match function.function.handle(request, &meter).await {
            Ok((mut response, info)) => {
                meter.set_status(response.status().as_u16(), None);
                add_receipt(response.headers_mut(), admitted.waited, &info);
                // The guest may still be streaming the body: its slots stay
                // taken, and its meter open, until the body is done.
                response.map(|body| Holding::wrap(body, admitted, meter))
            }
            Err(error) => {
                tracing::warn!(
                    invocation_id = id,
                    app = %function.app,
                    function = %function.name,
                    "invocation failed: {error}"
                );
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

fn with_id(mut response: hyper::Response<ResponseBody>, id: &str) -> hyper::Response<ResponseBody> {
    if let Ok(value) = HeaderValue::from_str(id) {
        response.headers_mut().insert(INVOCATION_ID, value);
    }
    response
}

/// Time-ordered (UUIDv7), so ids sort by when the request arrived.
pub fn new_invocation_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// A response body that keeps the invocation's admission permits and its
/// meter until the body has been sent (or dropped), counting its bytes.
struct Holding {
    body: ResponseBody,
    _admitted: Admitted,
    meter: Arc<Meter>,
    /// The body ended, cleanly or with the guest's error.
    ended: bool,
}

impl Drop for Holding {
    /// Dropped before its end: the client went away mid-response. The guest
    /// may then fail writing (and trap); that is not the function's error.
    fn drop(&mut self) {
        if !self.ended && !self.body.is_end_stream() {
            self.meter.set_failure("client_disconnected");
        }
    }
}

impl Holding {
    fn wrap(body: ResponseBody, admitted: Admitted, meter: Arc<Meter>) -> ResponseBody {
        Holding {
            body,
            _admitted: admitted,
            meter,
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
        let frame = std::pin::Pin::new(&mut self.body).poll_frame(cx);
        match &frame {
            std::task::Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.meter.add_bytes_out(data.len() as u64);
                }
            }
            std::task::Poll::Ready(None | Some(Err(_))) => self.ended = true,
            std::task::Poll::Pending => {}
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
