//! The gateway's accept loop and per-request dispatch: route, check the
//! body, hand the request to the [`Invoker`].

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::header;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Incoming};
use stratus_invoke::{Invoker, PlatformError, new_invocation_id, with_id};
use stratus_manifest::{request_host, split_key};
use stratus_runtime::{BodyError, ResponseBody};
use stratus_storage::Trigger;
use tokio::net::TcpListener;

use crate::body::{ReadError, TimedBody};
use crate::conn::{ConnectionLimits, serve_connections};
use crate::tls::Tls;

/// The HTTP gateway: serves the invoker's live set by route.
#[derive(Debug)]
pub struct Gateway {
    invoker: Arc<Invoker>,
    limits: ConnectionLimits,
    draining: AtomicBool,
}

impl Gateway {
    pub fn new(invoker: Arc<Invoker>, limits: ConnectionLimits) -> Arc<Gateway> {
        Arc::new(Gateway {
            invoker,
            limits,
            draining: AtomicBool::new(false),
        })
    }

    /// What the gateway invokes through.
    pub fn invoker(&self) -> &Arc<Invoker> {
        &self.invoker
    }

    /// Accepts connections (over TLS with `tls`) until `shutdown`
    /// resolves, then stops accepting and waits (up to a limit) for
    /// requests in flight to finish.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Option<Arc<Tls>>,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let gateway = self.clone();
        let shutdown = async {
            shutdown.await;
            // Requests still arriving on open connections are told to go
            // elsewhere while those in flight finish.
            self.draining.store(true, Ordering::Relaxed);
        };
        let handler = move |request| {
            let gateway = gateway.clone();
            async move { gateway.handle(request).await }
        };
        serve_connections(listener, self.limits, tls, "gateway", handler, shutdown).await
    }

    /// Serves one gateway request: route, check the body, invoke.
    pub async fn handle(
        &self,
        request: hyper::Request<TimedBody<Incoming>>,
    ) -> hyper::Response<ResponseBody> {
        self.handle_request(request).await
    }

    /// [`Gateway::handle`] for any request body, so tests can drive the
    /// gateway in process. A body error that is a [`ReadError`] timeout is
    /// answered 408.
    pub async fn handle_request<B>(
        &self,
        mut request: hyper::Request<B>,
    ) -> hyper::Response<ResponseBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BodyError> + Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let id = new_invocation_id();
        let live = self.invoker.live();
        if self.draining.load(Ordering::Relaxed) {
            return with_id(PlatformError::draining().into_response(&id), &id);
        }
        // Read only when some app claims a host: most nodes route by path.
        let host = if live.routes().has_hosts() {
            request_host(
                request.uri().authority().map(|a| a.as_str()),
                request
                    .headers()
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok()),
            )
        } else {
            None
        };
        let path = request.uri().path();
        let Some(function) = live.route(host.as_deref(), path) else {
            let error = PlatformError::no_route(path);
            return with_id(error.into_response(&id), &id);
        };
        // During a canary, its share of the app's requests go to it.
        let function = live
            .split(function, host.as_deref(), path, request.headers())
            .clone();
        // The namespace's request rate, at the gateway (its budget and its
        // concurrency are the invoker's, for every trigger).
        let namespace = split_key(&function.app).0;
        if let Some(guard) = self.invoker.tenancy().guard(namespace)
            && let Err(wait) = guard.take_request()
        {
            let error = PlatformError::rate_limited(namespace, wait);
            return with_id(error.into_response(&id), &id);
        }
        if let Some(spin) = &function.spin {
            let uri = request.uri().clone();
            let client = request
                .extensions()
                .get::<crate::PeerAddr>()
                .map(|peer| peer.0);
            crate::spin::set_headers(spin, &uri, client, request.headers_mut());
        }
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
                self.invoker
                    .invoke(&function, request, &id, Trigger::Http, length, None)
                    .await
            }
            None if request.body().is_end_stream() => {
                self.invoker
                    .invoke(&function, request, &id, Trigger::Http, 0, None)
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
                        self.invoker
                            .invoke(&function, request, &id, Trigger::Http, length, None)
                            .await
                    }
                    Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                        PlatformError::body_too_large(limit).into_response(&id)
                    }
                    Err(e)
                        if e.downcast_ref::<ReadError>()
                            .is_some_and(ReadError::is_timeout) =>
                    {
                        PlatformError::new(
                            http::StatusCode::REQUEST_TIMEOUT,
                            "request_timeout",
                            e.to_string(),
                        )
                        .into_response(&id)
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
}
