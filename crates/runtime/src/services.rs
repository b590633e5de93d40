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
//! it, and a name it allows is refused if it resolves to a loopback,
//! private or link-local address (`egress.rs`) unless the node runs with
//! `--outbound-allow-private` or the pattern names that IP address itself;
//! every request, wherever it goes, counts against the invocation's
//! [`OutboundLimits`] and is metered.

use crate::SharedWarnLimit;
use std::collections::HashMap;
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
use crate::egress;
use crate::meter::{CallInfo, Meter};
use crate::traced;

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
    /// The app's version the function belongs to (0: not said), so a call
    /// from a canary's function stays in the canary.
    pub version: u32,
}

impl FunctionIdentity {
    pub fn new(app: impl Into<String>, function: impl Into<String>) -> Self {
        FunctionIdentity {
            app: app.into(),
            function: function.into(),
            version: 0,
        }
    }

    /// The same function, of `version` of its app.
    pub fn with_version(mut self, version: u32) -> Self {
        self.version = version;
        self
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
/// of other functions) and registered with [`crate::Runtime::add_service`]
/// under its exact host name (a node service such as `queue.svc`, which
/// every function may call), or with [`crate::Runtime::set_function_calls`]
/// for every other `*.svc` host (another function of the caller's app,
/// which its `allowed_outbound` must grant, e.g. `"http://pricing.svc"`).
pub trait InProcessServices: Send + Sync + 'static {
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

/// The node's side of every function's outbound HTTP, shared by all
/// instances: the services it answers in process and where on the network
/// a request may go.
#[derive(Clone)]
pub(crate) struct NodeOutbound {
    /// Node services by exact host (`queue.svc`), which need no grant;
    /// they win over a function of the same name.
    services: HashMap<String, Arc<dyn InProcessServices>>,
    /// Every other `*.svc` host: calls to the caller's app's functions,
    /// which need a grant.
    function_calls: Option<Arc<dyn InProcessServices>>,
    /// `--outbound-allow-private`: an allowed name may resolve to a
    /// loopback, private or link-local address.
    allow_private: bool,
    /// Refusals are logged rate-limited, one limit per kind, so a guest
    /// repeating a refused request cannot flood the node's log (nor hide
    /// one kind behind the other).
    denied_log: Arc<SharedWarnLimit>,
    reserved_log: Arc<SharedWarnLimit>,
}

impl NodeOutbound {
    pub(crate) fn new(allow_private: bool) -> Self {
        NodeOutbound {
            services: HashMap::new(),
            function_calls: None,
            allow_private,
            denied_log: Arc::default(),
            reserved_log: Arc::default(),
        }
    }

    /// The same, with `service` answering `host` (replacing any service
    /// there before).
    pub(crate) fn with_service(&self, host: &str, service: Arc<dyn InProcessServices>) -> Self {
        let mut services = self.services.clone();
        services.insert(host.to_ascii_lowercase(), service);
        NodeOutbound {
            services,
            ..self.clone()
        }
    }

    /// The same, with `service` answering every `*.svc` host no node
    /// service has.
    pub(crate) fn with_function_calls(&self, service: Arc<dyn InProcessServices>) -> Self {
        NodeOutbound {
            function_calls: Some(service),
            ..self.clone()
        }
    }

    /// The service answering `host` and whether the caller needs a grant
    /// for it.
    fn service(&self, host: &str) -> Option<(&Arc<dyn InProcessServices>, bool)> {
        match self.services.get(&host.to_ascii_lowercase()) {
            Some(service) => Some((service, false)),
            None => self.function_calls.as_ref().map(|s| (s, true)),
        }
    }
}

/// A host name or address from a guest's request, as logged: escaped by
/// the `?` formatting of the field, and cut short.
fn shown(host: &str) -> String {
    host.chars().take(255).collect()
}

/// Where a request `allowed_outbound` lets out goes.
struct Destination {
    https: bool,
    /// Without the brackets of an IPv6 address.
    host: String,
    port: u16,
    /// Whether a pattern that allows it names this IP address itself: then
    /// the address is what the operator wrote, reserved or not.
    literal: bool,
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
    node: Arc<NodeOutbound>,
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
        node: Arc<NodeOutbound>,
        allowed: Arc<[OutboundRule]>,
        limits: OutboundLimits,
        stats: Arc<CapabilityStats>,
    ) -> Self {
        OutboundHooks {
            caller,
            node,
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

    /// Where `request` goes, if the function's `allowed_outbound` lets it
    /// out.
    fn destination<B>(&self, request: &http::Request<B>) -> Option<Destination> {
        let uri = request.uri();
        let https = uri.scheme() == Some(&Scheme::HTTPS);
        let (Some(host), true) = (uri.host(), https || uri.scheme() == Some(&Scheme::HTTP)) else {
            return None;
        };
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let mut allowing = self
            .allowed
            .iter()
            .filter(|rule| rule.allows(https, host, port))
            .peekable();
        allowing.peek()?;
        let literal = allowing.any(|rule| rule.ip_literal().is_some());
        Some(Destination {
            https,
            host: egress::bare_host(host).to_owned(),
            port,
            literal,
        })
    }

    /// Whether the function's `allowed_outbound` lets `request` out.
    fn allows<B>(&self, request: &http::Request<B>) -> bool {
        self.destination(request).is_some()
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
        if let Some(occurrences) = self.node.denied_log.hit() {
            tracing::info!(
                app = %self.caller.app,
                function = %self.caller.function,
                host = ?shown(host),
                occurrences,
                "outbound HTTP request denied: no pattern of the function's `allowed_outbound` allows it"
            );
        }
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
        mut request: http::Request<WasiBody>,
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
        let traced = traced::begin(&meter, &mut request);
        let host = request.uri().host().unwrap_or_default().to_owned();
        if is_service_request(&request) {
            let service = self
                .node
                .service(&host)
                .filter(|(_, needs_grant)| !needs_grant || self.allows(&request))
                .map(|(service, _)| service.clone());
            let Some(service) = service else {
                self.deny(&host);
                traced::end(traced, Err(&Error::HttpRequestDenied));
                return Box::new(async { Err(Error::HttpRequestDenied) });
            };
            self.stats.service_calls.fetch_add(1, Ordering::Relaxed);
            let caller = ServiceCaller {
                function: (*self.caller).clone(),
                invocation: meter.call(),
            };
            let timeout = self.limits.timeout;
            return Box::new(async move {
                let outcome = call_service(service, caller, request, budget, timeout).await;
                traced::end(traced, status_of(&outcome));
                outcome
            });
        }
        let Some(destination) = self.destination(&request) else {
            self.deny(&host);
            traced::end(traced, Err(&Error::HttpRequestDenied));
            return Box::new(async { Err(Error::HttpRequestDenied) });
        };
        let options = self.options(options);
        let refusal = Refusal {
            caller: self.caller.clone(),
            node: self.node.clone(),
            stats: self.stats.clone(),
        };
        let connect_timeout = options.connect_timeout.unwrap_or(self.limits.timeout);
        Box::new(async move {
            let started = Instant::now();
            let sent = async {
                // Resolved once: the connection goes to an address checked
                // here, so a second lookup cannot answer differently.
                let addrs =
                    egress::resolve(&destination.host, destination.port, connect_timeout).await?;
                if !(refusal.node.allow_private || destination.literal) {
                    refusal.check(&destination.host, &addrs)?;
                }
                let request = request
                    .map(|body| Counted::new(body, budget.clone(), request_too_big).boxed_unsync());
                egress::send(
                    request,
                    &addrs,
                    &destination.host,
                    destination.https,
                    options,
                )
                .await
            }
            .await;
            meter.add_outbound_time(started.elapsed());
            traced::end(traced, sent.as_ref().map(|(r, _)| r.status().as_u16()));
            let (response, io) = sent?;
            let response =
                response.map(|body| Counted::new(body, budget, response_too_big).boxed_unsync());
            Ok((response, io))
        })
    }
}

/// The status of a service's answer, or why there was none, for the trace.
fn status_of(outcome: &SendOutcome) -> Result<u16, &Error> {
    outcome
        .as_ref()
        .map(|(response, _)| response.status().as_u16())
}

/// What refusing a request for where its host resolves needs, once the
/// hooks' borrow has ended.
struct Refusal {
    caller: Arc<FunctionIdentity>,
    node: Arc<NodeOutbound>,
    stats: Arc<CapabilityStats>,
}

impl Refusal {
    /// `HTTP-request-denied` (counted, and logged rate-limited) if any of
    /// `addrs` is reserved: one such address is enough for a resolver to
    /// hand it out, or for the connection to fall back to it.
    fn check(&self, host: &str, addrs: &[std::net::SocketAddr]) -> Result<(), Error> {
        let Some((addr, range)) = addrs
            .iter()
            .find_map(|addr| egress::reserved(addr.ip()).map(|range| (addr, range)))
        else {
            return Ok(());
        };
        self.stats.outbound_denied.fetch_add(1, Ordering::Relaxed);
        if let Some(occurrences) = self.node.reserved_log.hit() {
            tracing::warn!(
                app = %self.caller.app,
                function = %self.caller.function,
                host = ?shown(host),
                address = %addr.ip(),
                range = %range,
                occurrences,
                "outbound HTTP request refused: the host resolves to a loopback, private or link-local address; an `allowed_outbound` pattern naming that IP address itself, or a node started with --outbound-allow-private, reaches it"
            );
        }
        Err(Error::HttpRequestDenied)
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

    /// Answers with the caller, method, path and body it was sent.
    struct Echo;

    impl InProcessServices for Echo {
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

    fn hooks_with(node: NodeOutbound, allowed: &[&str], limits: OutboundLimits) -> OutboundHooks {
        hooks_on(node, allowed, limits)
    }

    fn hooks_on(node: NodeOutbound, allowed: &[&str], limits: OutboundLimits) -> OutboundHooks {
        let allowed: Vec<OutboundRule> = allowed
            .iter()
            .map(|p| OutboundRule::parse(p).unwrap())
            .collect();
        OutboundHooks::new(
            Arc::new(FunctionIdentity::new("shop", "cart")),
            Arc::new(node),
            allowed.into(),
            limits,
            Arc::default(),
        )
    }

    /// Hooks for network requests: no services, the node's address policy
    /// as `allow_private` says.
    fn network_hooks(allow_private: bool, allowed: &[&str]) -> OutboundHooks {
        hooks_on(
            NodeOutbound::new(allow_private),
            allowed,
            OutboundLimits {
                timeout: Duration::from_secs(5),
                ..OutboundLimits::default()
            },
        )
    }

    /// A server on 127.0.0.1 that answers every connection with `answer`
    /// as soon as anything arrives (whatever it is: a TLS hello too), or,
    /// with `None`, never answers. Returns its port.
    async fn loopback_server(answer: Option<&'static str>) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buffer = [0u8; 4096];
                    let _ = stream.read(&mut buffer).await;
                    match answer {
                        Some(answer) => {
                            let _ = stream.write_all(answer.as_bytes()).await;
                        }
                        // Holds the connection open without a word.
                        None => std::future::pending::<()>().await,
                    }
                });
            }
        });
        port
    }

    const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 8\r\nconnection: close\r\n\r\nloopback";

    fn get(uri: &str) -> http::Request<WasiBody> {
        let body = Full::new(Bytes::new())
            .map_err(|never| match never {})
            .boxed_unsync();
        http::Request::get(uri).body(body).unwrap()
    }

    fn hooks(node: NodeOutbound) -> OutboundHooks {
        hooks_with(node, &[], OutboundLimits::default())
    }

    /// `Echo` as the node service `kv.svc`, or (`as_functions`) as the
    /// calls to functions, answering every `*.svc` host with a grant.
    fn echo(as_functions: bool) -> NodeOutbound {
        let node = NodeOutbound::new(false);
        if as_functions {
            node.with_function_calls(Arc::new(Echo))
        } else {
            node.with_service("kv.svc", Arc::new(Echo))
        }
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
        let mut without_services = hooks(NodeOutbound::new(false));
        let answer = send(&mut without_services, request("http://kv.svc/", Vec::new())).await;
        assert!(
            matches!(answer, Err(Error::HttpRequestDenied)),
            "{answer:?}"
        );
    }

    #[tokio::test]
    async fn a_node_service_wins_over_a_function_of_its_name() {
        struct Fixed(&'static str);
        impl InProcessServices for Fixed {
            fn call(&self, _: &ServiceCaller, _: http::Request<Bytes>) -> ServiceFuture {
                let text = self.0;
                Box::pin(async move { http::Response::new(Bytes::from(text)) })
            }
        }
        // Registered in either order, the node's own service answers its
        // host, and the functions every other.
        let node = NodeOutbound::new(false)
            .with_function_calls(Arc::new(Fixed("function")))
            .with_service("queue.svc", Arc::new(Fixed("node")));
        let allowed = ["http://queue.svc", "http://pricing.svc"];
        let mut hooks = hooks_with(node, &allowed, OutboundLimits::default());
        let answer = send(&mut hooks, request("http://QUEUE.svc/x", Vec::new())).await;
        assert_eq!(answer.unwrap().1, "node");
        let answer = send(&mut hooks, request("http://pricing.svc/x", Vec::new())).await;
        assert_eq!(answer.unwrap().1, "function");
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

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused_and_counted() {
        let port = loopback_server(Some(OK)).await;
        let mut hooks = network_hooks(false, &["http://localhost:*"]);
        let answer = send(&mut hooks, get(&format!("http://localhost:{port}/"))).await;
        assert!(
            matches!(answer, Err(Error::HttpRequestDenied)),
            "{answer:?}"
        );
        assert_eq!(hooks.stats.outbound_denied.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn the_node_flag_lets_a_name_reach_a_reserved_address() {
        let port = loopback_server(Some(OK)).await;
        let mut hooks = network_hooks(true, &["http://localhost:*"]);
        let answer = send(&mut hooks, get(&format!("http://localhost:{port}/"))).await;
        assert_eq!(answer.unwrap(), (200, "loopback".to_string()));
        assert_eq!(hooks.stats.outbound_denied.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn only_a_pattern_naming_the_address_itself_reaches_it() {
        let port = loopback_server(Some(OK)).await;
        let uri = format!("http://127.0.0.1:{port}/");
        let mut literal = network_hooks(false, &[&format!("http://127.0.0.1:{port}")]);
        assert_eq!(
            send(&mut literal, get(&uri)).await.unwrap(),
            (200, "loopback".to_string())
        );
        // A wildcard that happens to match the address is no literal.
        let mut wildcard = network_hooks(false, &["http://*.0.0.1:*"]);
        let answer = send(&mut wildcard, get(&uri)).await;
        assert!(
            matches!(answer, Err(Error::HttpRequestDenied)),
            "{answer:?}"
        );
    }

    #[tokio::test]
    async fn a_redirect_is_handed_to_the_guest_not_followed() {
        const REDIRECT: &str = "HTTP/1.1 302 Found\r\nlocation: http://localhost:1/\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
        let port = loopback_server(Some(REDIRECT)).await;
        let mut hooks = network_hooks(false, &[&format!("http://127.0.0.1:{port}")]);
        let answer = send(&mut hooks, get(&format!("http://127.0.0.1:{port}/"))).await;
        assert_eq!(answer.unwrap().0, 302);
    }

    #[tokio::test]
    async fn https_speaks_tls_to_the_checked_address() {
        // A plain HTTP answer to the TLS hello: the request failed in TLS,
        // so it went through TLS (and was not denied).
        let port = loopback_server(Some(OK)).await;
        let mut hooks = network_hooks(false, &[&format!("https://127.0.0.1:{port}")]);
        let answer = send(&mut hooks, get(&format!("https://127.0.0.1:{port}/"))).await;
        assert!(matches!(answer, Err(Error::Tls(_))), "{answer:?}");
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out() {
        let port = loopback_server(None).await;
        let mut hooks = hooks_on(
            NodeOutbound::new(false),
            &[&format!("http://127.0.0.1:{port}")],
            OutboundLimits {
                timeout: Duration::from_millis(200),
                ..OutboundLimits::default()
            },
        );
        let answer = send(&mut hooks, get(&format!("http://127.0.0.1:{port}/"))).await;
        assert!(
            matches!(answer, Err(Error::ConnectionReadTimeout)),
            "{answer:?}"
        );
    }
}
