//! Outbound HTTP from a guest: to the node's in-process services, to other
//! functions, and to the network.
//!
//! A guest asks the node for something (publish an event, call another
//! function of its app) the same way it would ask any web service: an
//! outbound `wasi:http` request, here to `http://<name>.svc/…`. Such a
//! request never touches the network; the node answers it through the
//! [`InProcessServices`] registered with the runtime. Keeping the
//! guest-facing shape plain HTTP means no custom WIT interface to version
//! and any HTTP client library works in the guest. A request to any other
//! host leaves the node only if the function's `allowed_outbound` allows
//! it; every request, wherever it goes, counts against the invocation's
//! [`OutboundLimits`] and is metered.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::uri::Scheme;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use stratus_manifest::OutboundRule;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::capabilities::CapabilityStats;
use crate::meter::{CallInfo, Meter};

/// The largest request body a guest may send to a service. A service call
/// is buffered in host memory, so it is bounded well below what a function
/// may hold itself.
pub const SERVICE_BODY_LIMIT: usize = 1 << 20;

/// The answer of a service, once it is ready.
pub type ServiceFuture = Pin<Box<dyn Future<Output = http::Response<Bytes>> + Send>>;

/// Which deployed function is making a request, so a service can attribute
/// (and authorize) what it does on the function's behalf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionIdentity {
    pub app: String,
    pub function: String,
}

impl FunctionIdentity {
    pub fn new(app: impl Into<String>, function: impl Into<String>) -> Self {
        FunctionIdentity {
            app: app.into(),
            function: function.into(),
        }
    }
}

/// Who calls a service: the function and the invocation (its id and its
/// depth in a chain of calls).
#[derive(Debug, Clone)]
pub struct ServiceCaller {
    pub function: FunctionIdentity,
    pub invocation: CallInfo,
}

/// One service a node offers its functions under `http://<name>.svc/`.
///
/// Implemented outside the runtime (the runtime knows nothing of queues or
/// of other functions) and registered with [`crate::Runtime::add_service`].
pub trait InProcessServices: Send + Sync + 'static {
    /// Whether this service answers requests to `host` (which ends in
    /// `.svc`). Services are asked in the order they were added.
    fn handles(&self, host: &str) -> bool;

    /// Whether a function needs a grant in its `allowed_outbound` (e.g.
    /// `"http://pricing.svc"`) to reach this service. Node services such as
    /// `queue.svc` need none; other functions do.
    fn needs_grant(&self) -> bool {
        false
    }

    /// Answers `request` (its body is complete) made by `caller`.
    fn call(&self, caller: &ServiceCaller, request: http::Request<Bytes>) -> ServiceFuture;
}

/// What one invocation may do over outbound HTTP (the function's
/// `max_outbound_requests`, `max_outbound_bytes` and `outbound_timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboundLimits {
    /// Requests (to the network or to services) per invocation.
    pub max_requests: u32,
    /// Request and response bodies together, per invocation.
    pub max_bytes: u64,
    /// How long one request may wait to connect, for its answer to start,
    /// or between two parts of the answer.
    pub timeout: Duration,
}

impl Default for OutboundLimits {
    fn default() -> Self {
        OutboundLimits {
            max_requests: 50,
            max_bytes: 16 << 20,
            timeout: Duration::from_secs(10),
        }
    }
}

/// What a guest's completed outbound request resolves to.
type SendOutcome = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), Error>> + Send>,
    ),
    Error,
>;

/// The `wasi:http` hooks of one instance: requests to `*.svc` go to the
/// node's services, requests `allowed_outbound` allows go to the network,
/// and everything else is denied. Every request counts against the
/// invocation's outbound limits and is metered.
pub(crate) struct OutboundHooks {
    caller: Arc<FunctionIdentity>,
    services: Arc<Vec<Arc<dyn InProcessServices>>>,
    /// The function's `allowed_outbound`: what may leave the node.
    allowed: Arc<[OutboundRule]>,
    limits: OutboundLimits,
    /// The current invocation's meter (none between invocations).
    meter: Option<Arc<Meter>>,
    stats: Arc<CapabilityStats>,
}

impl OutboundHooks {
    pub(crate) fn new(
        caller: Arc<FunctionIdentity>,
        services: Arc<Vec<Arc<dyn InProcessServices>>>,
        allowed: Arc<[OutboundRule]>,
        limits: OutboundLimits,
        stats: Arc<CapabilityStats>,
    ) -> Self {
        OutboundHooks {
            caller,
            services,
            allowed,
            limits,
            meter: None,
            stats,
        }
    }

    /// Points the hooks at the invocation now running, or at none.
    pub(crate) fn set_meter(&mut self, meter: Option<Arc<Meter>>) {
        self.meter = meter;
    }

    /// Whether the function's `allowed_outbound` lets `request` out.
    fn allows<B>(&self, request: &http::Request<B>) -> bool {
        let uri = request.uri();
        let https = uri.scheme() == Some(&Scheme::HTTPS);
        let (Some(host), true) = (uri.host(), https || uri.scheme() == Some(&Scheme::HTTP)) else {
            return false;
        };
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        self.allowed
            .iter()
            .any(|rule| rule.allows(https, host, port))
    }

    /// Counts the request against the invocation's limit, refusing it once
    /// the limit is passed.
    fn count_request(&self, meter: &Meter) -> Result<(), Error> {
        self.stats.outbound_requests.fetch_add(1, Ordering::Relaxed);
        let made = meter.add_outbound_request();
        if made > self.limits.max_requests {
            self.stats
                .outbound_over_limit
                .fetch_add(1, Ordering::Relaxed);
            let message = format!(
                "outbound request {made} refused: at most {} per invocation (the function's `max_outbound_requests`)",
                self.limits.max_requests
            );
            tracing::info!(app = %self.caller.app, function = %self.caller.function, "{message}");
            return Err(Error::InternalError(Some(message)));
        }
        Ok(())
    }

    fn deny(&self, host: &str) {
        self.stats.outbound_denied.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            app = %self.caller.app,
            function = %self.caller.function,
            host,
            "outbound HTTP request denied: no pattern of the function's `allowed_outbound` allows it"
        );
    }

    /// The guest's timeouts, none longer than the function's.
    fn options(&self, asked: Option<RequestOptions>) -> RequestOptions {
        let cap = |t: Option<Duration>| {
            Some(t.map_or(self.limits.timeout, |t| t.min(self.limits.timeout)))
        };
        let asked = asked.unwrap_or_default();
        RequestOptions {
            connect_timeout: cap(asked.connect_timeout),
            first_byte_timeout: cap(asked.first_byte_timeout),
            between_bytes_timeout: cap(asked.between_bytes_timeout),
        }
    }
}

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = SendOutcome> + Send> {
        let meter = self.meter.clone().unwrap_or_else(Meter::unread);
        if let Err(e) = self.count_request(&meter) {
            return Box::new(async move { Err(e) });
        }
        let budget = Budget {
            meter: meter.clone(),
            limit: self.limits.max_bytes,
        };
        let host = request.uri().host().unwrap_or_default().to_owned();
        if is_service_request(&request) {
            let service = self.services.iter().find(|s| s.handles(&host)).cloned();
            let Some(service) = service.filter(|s| !s.needs_grant() || self.allows(&request))
            else {
                self.deny(&host);
                return Box::new(async { Err(Error::HttpRequestDenied) });
            };
            self.stats.service_calls.fetch_add(1, Ordering::Relaxed);
            let caller = ServiceCaller {
                function: (*self.caller).clone(),
                invocation: meter.call(),
            };
            let timeout = self.limits.timeout;
            return Box::new(call_service(service, caller, request, budget, timeout));
        }
        if !self.allows(&request) {
            self.deny(&host);
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        let options = self.options(options);
        Box::new(async move {
            let started = Instant::now();
            let request = request
                .map(|body| Counted::new(body, budget.clone(), request_too_big).boxed_unsync());
            let sent = wasmtime_wasi_http::default_send_request(request, Some(options)).await;
            meter.add_outbound_time(started.elapsed());
            let (response, io) = sent?;
            let io: Box<dyn Future<Output = Result<(), Error>> + Send> = Box::new(io);
            let response = response.map(|body| {
                Counted::new(body.boxed_unsync(), budget, response_too_big).boxed_unsync()
            });
            Ok((response, io))
        })
    }
}

/// Sends a request to an in-process service: its body read whole first,
/// the answer buffered, both counted against the invocation's budget.
async fn call_service(
    service: Arc<dyn InProcessServices>,
    caller: ServiceCaller,
    request: http::Request<WasiBody>,
    budget: Budget,
    timeout: Duration,
) -> SendOutcome {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let body = read_limited(body).await?;
    budget.spend(body.len() as u64, request_too_big)?;
    let answer = tokio::time::timeout(
        timeout,
        service.call(&caller, http::Request::from_parts(parts, body)),
    )
    .await;
    budget.meter.add_outbound_time(started.elapsed());
    let response = answer.map_err(|_| Error::ConnectionReadTimeout)?;
    budget.spend(response.body().len() as u64, response_too_big)?;
    let done: Box<dyn Future<Output = Result<(), Error>> + Send> = Box::new(async { Ok(()) });
    Ok((to_wasi_response(response), done))
}

/// Plain `http` to a host named `<something>.svc`: the only requests a
/// service may see. (`https` is refused: there is no certificate to check
/// for a host that is the node itself.)
fn is_service_request<B>(request: &http::Request<B>) -> bool {
    let uri = request.uri();
    uri.scheme() == Some(&Scheme::HTTP)
        && uri
            .host()
            .and_then(|host| host.strip_suffix(".svc"))
            .is_some_and(|name| !name.is_empty())
}

fn request_too_big() -> Error {
    Error::HttpRequestBodySize(None)
}

fn response_too_big() -> Error {
    Error::HttpResponseBodySize(None)
}

/// The invocation's outbound byte budget.
#[derive(Clone)]
struct Budget {
    meter: Arc<Meter>,
    limit: u64,
}

impl Budget {
    /// Counts `n` bytes; `over` once the invocation's total passes its limit.
    fn spend(&self, n: u64, over: fn() -> Error) -> Result<(), Error> {
        if self.meter.add_outbound_bytes(n) > self.limit {
            Err(over())
        } else {
            Ok(())
        }
    }
}

/// A body whose bytes are counted against the invocation's budget as they
/// pass, failing with `over` once the budget is spent.
struct Counted {
    inner: WasiBody,
    budget: Budget,
    over: fn() -> Error,
}

impl Counted {
    fn new(inner: WasiBody, budget: Budget, over: fn() -> Error) -> Self {
        Counted {
            inner,
            budget,
            over,
        }
    }
}

impl Body for Counted {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
            && let Err(e) = this.budget.spend(data.len() as u64, this.over)
        {
            return Poll::Ready(Some(Err(e)));
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The guest's whole request body, or `HTTP-request-body-size` once it
/// passes [`SERVICE_BODY_LIMIT`].
async fn read_limited(mut body: WasiBody) -> Result<Bytes, Error> {
    let mut data = BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(chunk) = frame?.into_data() {
            if data.len() + chunk.len() > SERVICE_BODY_LIMIT {
                return Err(Error::HttpRequestBodySize(None));
            }
            data.extend_from_slice(&chunk);
        }
    }
    Ok(data.freeze())
}

/// A service's buffered answer as the body type the guest reads.
fn to_wasi_response(response: http::Response<Bytes>) -> http::Response<WasiBody> {
    response.map(|body| {
        Full::new(body)
            .map_err(|never| match never {})
            .boxed_unsync()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers `kv.svc` with the caller, method, path and body it was sent.
    struct Echo {
        grant: bool,
    }

    impl InProcessServices for Echo {
        fn handles(&self, host: &str) -> bool {
            host == "kv.svc"
        }

        fn needs_grant(&self) -> bool {
            self.grant
        }

        fn call(&self, caller: &ServiceCaller, request: http::Request<Bytes>) -> ServiceFuture {
            let text = format!(
                "{}/{} {} {} {}",
                caller.function.app,
                caller.function.function,
                request.method(),
                request.uri().path(),
                String::from_utf8_lossy(request.body())
            );
            Box::pin(async move { http::Response::new(Bytes::from(text)) })
        }
    }

    fn hooks_with(
        services: Vec<Arc<dyn InProcessServices>>,
        allowed: &[&str],
        limits: OutboundLimits,
    ) -> OutboundHooks {
        let allowed: Vec<OutboundRule> = allowed
            .iter()
            .map(|p| OutboundRule::parse(p).unwrap())
            .collect();
        OutboundHooks::new(
            Arc::new(FunctionIdentity::new("shop", "cart")),
            Arc::new(services),
            allowed.into(),
            limits,
            Arc::default(),
        )
    }

    fn hooks(services: Vec<Arc<dyn InProcessServices>>) -> OutboundHooks {
        hooks_with(services, &[], OutboundLimits::default())
    }

    fn echo(grant: bool) -> Vec<Arc<dyn InProcessServices>> {
        vec![Arc::new(Echo { grant })]
    }

    fn request(uri: &str, body: Vec<u8>) -> http::Request<WasiBody> {
        let body = Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed_unsync();
        http::Request::post(uri).body(body).unwrap()
    }

    async fn send(
        hooks: &mut OutboundHooks,
        request: http::Request<WasiBody>,
    ) -> Result<(u16, String), Error> {
        let future = hooks.send_request(request, None, Box::new(async { Ok(()) }));
        let (response, _) = Pin::from(future).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    #[tokio::test]
    async fn a_service_answers_its_host_with_the_callers_identity() {
        let mut hooks = hooks(echo(false));
        let answer = send(&mut hooks, request("http://kv.svc/a?b=c", b"data".to_vec())).await;
        assert_eq!(answer.unwrap(), (200, "shop/cart POST /a data".to_string()));
    }

    #[tokio::test]
    async fn every_other_request_is_denied() {
        let uris = [
            "http://example.com/",
            "https://kv.svc/",
            "http://other.svc/",
            "http://.svc/",
            "http://kv.svc.example.com/",
        ];
        for uri in uris {
            let mut hooks = hooks(echo(false));
            let answer = send(&mut hooks, request(uri, Vec::new())).await;
            assert!(
                matches!(answer, Err(Error::HttpRequestDenied)),
                "{uri}: {answer:?}"
            );
        }
        let mut without_services = hooks(Vec::new());
        let answer = send(&mut without_services, request("http://kv.svc/", Vec::new())).await;
        assert!(
            matches!(answer, Err(Error::HttpRequestDenied)),
            "{answer:?}"
        );
    }

    #[tokio::test]
    async fn a_service_that_needs_a_grant_is_denied_without_one() {
        let mut ungranted = hooks(echo(true));
        let answer = send(&mut ungranted, request("http://kv.svc/", Vec::new())).await;
        assert!(
            matches!(answer, Err(Error::HttpRequestDenied)),
            "{answer:?}"
        );
        let mut granted = hooks_with(echo(true), &["http://kv.svc"], OutboundLimits::default());
        let answer = send(&mut granted, request("http://kv.svc/", Vec::new())).await;
        assert_eq!(answer.unwrap().0, 200);
    }

    #[tokio::test]
    async fn a_body_beyond_the_limit_is_refused() {
        let mut hooks = hooks(echo(false));
        let at_limit = send(
            &mut hooks,
            request("http://kv.svc/", vec![b'x'; SERVICE_BODY_LIMIT]),
        )
        .await;
        assert_eq!(at_limit.unwrap().0, 200);
        let over = send(
            &mut hooks,
            request("http://kv.svc/", vec![b'x'; SERVICE_BODY_LIMIT + 1]),
        )
        .await;
        assert!(
            matches!(over, Err(Error::HttpRequestBodySize(None))),
            "{over:?}"
        );
    }

    #[tokio::test]
    async fn requests_and_bytes_are_limited_per_invocation_and_metered() {
        let limits = OutboundLimits {
            max_requests: 2,
            max_bytes: 100,
            timeout: Duration::from_secs(1),
        };
        let meter = Meter::unread();
        let mut hooks = hooks_with(echo(false), &[], limits);
        hooks.set_meter(Some(meter.clone()));
        // 3 request bytes + 26 answer bytes.
        assert_eq!(
            send(&mut hooks, request("http://kv.svc/a", b"abc".to_vec()))
                .await
                .unwrap()
                .0,
            200
        );
        let big = send(&mut hooks, request("http://kv.svc/a", vec![b'x'; 80])).await;
        assert!(
            matches!(big, Err(Error::HttpRequestBodySize(None))),
            "{big:?}"
        );
        let third = send(&mut hooks, request("http://kv.svc/a", Vec::new())).await;
        match third {
            Err(Error::InternalError(Some(message))) => {
                assert!(message.contains("max_outbound_requests"), "{message}")
            }
            other => panic!("the third request must be refused: {other:?}"),
        }
        // A new invocation starts a new count.
        hooks.set_meter(Some(Meter::unread()));
        assert_eq!(
            send(&mut hooks, request("http://kv.svc/a", Vec::new()))
                .await
                .unwrap()
                .0,
            200
        );
    }
}
