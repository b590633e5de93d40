//! Host capabilities a function reaches as in-process HTTP services.
//!
//! A guest asks the node for something (publish an event, later perhaps a
//! key-value read) the same way it would ask any web service: an outbound
//! `wasi:http` request, here to `http://<name>.svc/…`. Such a request never
//! touches the network; the node answers it through the [`InProcessServices`]
//! it was given. Keeping the guest-facing shape plain HTTP means no custom
//! WIT interface to version and any HTTP client library works in the guest.
//! Every other outbound request is still denied.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::uri::Scheme;
use http_body_util::{BodyExt, Full};
use stratus_manifest::OutboundRule;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// The largest request body a guest may send to a service. A service call
/// is buffered in host memory, so it is bounded well below what a function
/// may hold itself.
pub const SERVICE_BODY_LIMIT: usize = 1 << 20;

/// The answer of a service, once it is ready.
pub type ServiceFuture = Pin<Box<dyn Future<Output = http::Response<Bytes>> + Send>>;

/// Which deployed function is making a request, so a service can attribute
/// (and later authorize) what it does on the function's behalf.
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

/// The services a node offers its functions under `http://<name>.svc/`.
///
/// Implemented outside the runtime (the runtime knows nothing of queues) and
/// registered once with [`crate::Runtime::set_services`].
pub trait InProcessServices: Send + Sync + 'static {
    /// Answers `request` (its host ends in `.svc`, its body is complete) made
    /// by `caller`, or `None` when no service of this node has that host: the
    /// guest then sees `HTTP-request-denied`, as for any other host.
    fn call(
        &self,
        caller: &FunctionIdentity,
        request: http::Request<Bytes>,
    ) -> Option<ServiceFuture>;
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
/// node's services, everything else is denied until a function can be
/// granted `allowed_outbound`.
pub(crate) struct OutboundHooks {
    caller: Arc<FunctionIdentity>,
    services: Option<Arc<dyn InProcessServices>>,
    /// The function's `allowed_outbound`: what may leave the node.
    allowed: Arc<[OutboundRule]>,
}

impl OutboundHooks {
    pub(crate) fn new(
        caller: Arc<FunctionIdentity>,
        services: Option<Arc<dyn InProcessServices>>,
        allowed: Arc<[OutboundRule]>,
    ) -> Self {
        OutboundHooks {
            caller,
            services,
            allowed,
        }
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
}

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = SendOutcome> + Send> {
        let caller = self.caller.clone();
        let services = match &self.services {
            Some(services) if is_service_request(&request) => services.clone(),
            _ if self.allows(&request) => {
                return Box::new(async move {
                    use http_body_util::BodyExt;
                    let (response, io) =
                        wasmtime_wasi_http::default_send_request(request, options).await?;
                    let io: Box<dyn Future<Output = Result<(), Error>> + Send> = Box::new(io);
                    Ok((response.map(BodyExt::boxed_unsync), io))
                });
            }
            _ => {
                deny(&caller, request.uri().host().unwrap_or_default());
                return Box::new(async { Err(Error::HttpRequestDenied) });
            }
        };
        // A service sees the whole body, so it is read first; a `.svc` host
        // that no service answers is denied only after that.
        Box::new(async move {
            let (parts, body) = request.into_parts();
            let request = http::Request::from_parts(parts, read_limited(body).await?);
            let host = request.uri().host().unwrap_or_default().to_owned();
            let Some(answer) = services.call(&caller, request) else {
                deny(&caller, &host);
                return Err(Error::HttpRequestDenied);
            };
            let response = to_wasi_response(answer.await);
            let done: Box<dyn Future<Output = Result<(), Error>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, done))
        })
    }
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

fn deny(caller: &FunctionIdentity, host: &str) {
    tracing::info!(
        app = %caller.app,
        function = %caller.function,
        host,
        "outbound HTTP request denied: no pattern of the function's `allowed_outbound` allows it"
    );
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

    /// Answers `kv.svc` with the method, path and body it was sent.
    struct Echo;

    impl InProcessServices for Echo {
        fn call(
            &self,
            caller: &FunctionIdentity,
            request: http::Request<Bytes>,
        ) -> Option<ServiceFuture> {
            if request.uri().host() != Some("kv.svc") {
                return None;
            }
            let text = format!(
                "{}/{} {} {} {}",
                caller.app,
                caller.function,
                request.method(),
                request.uri().path(),
                String::from_utf8_lossy(request.body())
            );
            Some(Box::pin(
                async move { http::Response::new(Bytes::from(text)) },
            ))
        }
    }

    fn hooks(services: Option<Arc<dyn InProcessServices>>) -> OutboundHooks {
        OutboundHooks::new(
            Arc::new(FunctionIdentity::new("shop", "cart")),
            services,
            Arc::from([]),
        )
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
        let mut hooks = hooks(Some(Arc::new(Echo)));
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
            let mut hooks = hooks(Some(Arc::new(Echo)));
            let answer = send(&mut hooks, request(uri, Vec::new())).await;
            assert!(
                matches!(answer, Err(Error::HttpRequestDenied)),
                "{uri}: {answer:?}"
            );
        }
        let mut without_services = hooks(None);
        let answer = send(&mut without_services, request("http://kv.svc/", Vec::new())).await;
        assert!(
            matches!(answer, Err(Error::HttpRequestDenied)),
            "{answer:?}"
        );
    }

    #[tokio::test]
    async fn a_body_beyond_the_limit_is_refused() {
        let mut hooks = hooks(Some(Arc::new(Echo)));
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
}
