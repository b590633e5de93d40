//! `http://queue.svc/<queue>`: publishing to a named queue from inside a
//! function, as an in-process service of the runtime.
//!
//! `POST http://queue.svc/<queue>` publishes to the caller's app's queue,
//! `POST http://queue.svc/<app>/<queue>` to another app's, which reaches
//! only the functions whose trigger lists the caller's app in `from`. It
//! answers like the admin API's `POST /v1/apps/{app}/queues/{queue}/events`
//! (same consumer lookup and refusals, see `crate::publish`, same `ce-*`
//! headers), so a function and an operator publish the same way; only the
//! default `ce-source` differs, naming the function that published.

use std::sync::{Arc, Weak};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use stratus_invoke::PlatformError;
use stratus_manifest::Namespace;
use stratus_runtime::{FunctionIdentity, InProcessServices, ServiceCaller, ServiceFuture};

use crate::dispatcher::{Dispatcher, Published};
use crate::publish::PublishError;
use stratus_telemetry::trace_context;

/// The host this service answers for.
pub const QUEUE_SERVICE_HOST: &str = "queue.svc";

/// Publishes a function's `POST http://queue.svc/[<app>/]<queue>` to the
/// queue.
///
/// Holds the dispatcher weakly: the runtime keeps its services for its
/// whole life, and live functions keep the runtime, so a strong reference
/// would make a cycle that never drops.
pub struct QueueService {
    dispatcher: Weak<Dispatcher>,
}

impl std::fmt::Debug for QueueService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueService").finish_non_exhaustive()
    }
}

impl QueueService {
    pub fn new(dispatcher: &Arc<Dispatcher>) -> Arc<QueueService> {
        Arc::new(QueueService {
            dispatcher: Arc::downgrade(dispatcher),
        })
    }
}

impl InProcessServices for QueueService {
    fn call(&self, caller: &ServiceCaller, request: http::Request<Bytes>) -> ServiceFuture {
        let dispatcher = self.dispatcher.clone();
        let caller = caller.function.clone();
        Box::pin(async move { publish(dispatcher, caller, request).await })
    }
}

/// The app (its key) and queue a path addresses: `/<queue>` is the
/// caller's app's, `/<app>/<queue>` that app's of the caller's namespace
/// (the caller's own when it names it); another namespace's queues cannot
/// be addressed.
fn address<'a>(path: &'a str, caller_app: &str) -> Result<(String, &'a str), String> {
    let path = path.strip_prefix('/').unwrap_or(path);
    match path.split('/').collect::<Vec<_>>().as_slice() {
        [queue] => Ok((caller_app.to_owned(), queue)),
        [app, queue] => Namespace::of_key(caller_app)
            .app_key(app)
            .map(|key| (key, *queue))
            .map_err(|e| e.to_string()),
        _ => Err(format!(
            "\"/{path}\" is not a queue; publish to your app's queue with POST http://{QUEUE_SERVICE_HOST}/<queue>, or to another app's with POST http://{QUEUE_SERVICE_HOST}/<app>/<queue>"
        )),
    }
}

async fn publish(
    dispatcher: Weak<Dispatcher>,
    caller: FunctionIdentity,
    request: http::Request<Bytes>,
) -> http::Response<Bytes> {
    if request.method() != Method::POST {
        let mut response = PlatformError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!(
                "{} publishes with POST http://{QUEUE_SERVICE_HOST}/<queue>, not {}",
                QUEUE_SERVICE_HOST,
                request.method()
            ),
        )
        .into_bytes_response();
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let (app, queue) = match address(request.uri().path(), &caller.app) {
        Ok(address) => address,
        Err(message) => {
            return PlatformError::new(StatusCode::BAD_REQUEST, "bad_request", message)
                .into_bytes_response();
        }
    };
    let Some(dispatcher) = dispatcher.upgrade() else {
        return PlatformError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "queue_unavailable",
            "the node is shutting down",
        )
        .into_bytes_response();
    };
    let app = app.as_str();
    let event = event_of(&caller, app, request.headers(), request.body().clone());
    match dispatcher.publish(app, queue, event).await {
        Ok((id, consumers)) => {
            tracing::debug!(
                app = %caller.app, function = %caller.function, to_app = app, queue, event = %id,
                "a function published an event"
            );
            let body = serde_json::json!({
                "id": id,
                "app": app,
                "queue": queue,
                "consumers": consumers.len(),
            });
            let mut response = http::Response::new(Bytes::from(body.to_string()));
            *response.status_mut() = StatusCode::ACCEPTED;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(e) => {
            if let PublishError::Queue(e) = &e {
                tracing::error!(app, queue, "a function's event could not be queued: {e}");
            }
            PlatformError::from(e).into_bytes_response()
        }
    }
}

/// The event `caller` publishes to a queue of `app`, from its request's
/// `ce-*` and `content-type` headers, and its trace context: the runtime
/// puts the invocation's on the outbound request, so the consumers
/// continue the publishing invocation's trace.
fn event_of(caller: &FunctionIdentity, app: &str, headers: &HeaderMap, data: Bytes) -> Published {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let own = app == caller.app.as_str();
    let publisher = format!("/apps/{}/functions/{}", caller.app, caller.function);
    let (traceparent, tracestate) = trace_context(headers);
    Published {
        from: (!own).then(|| caller.app.clone()),
        id: header("ce-id"),
        // Another app's event always names the function that published it:
        // the consumer can tell who sent it, and no app can pose as another.
        source: if own {
            header("ce-source").or(Some(publisher))
        } else {
            Some(publisher)
        },
        kind: header("ce-type"),
        subject: header("ce-subject"),
        content_type: header("content-type"),
        data,
        traceparent,
        tracestate,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use stratus_invoke::{Admission, Invoker};
    use stratus_manifest::valid_queue_name;
    use stratus_queue::SqliteQueue;
    use stratus_storage::RetryPolicy;

    use super::*;
    use crate::dispatcher::DispatchConfig;

    fn node(dir: &std::path::Path) -> Arc<Dispatcher> {
        let invoker = Invoker::new(
            Admission::new(4, 64 << 20, Duration::from_secs(1)),
            None,
            None,
        );
        let queue = SqliteQueue::open(
            &dir.join(SqliteQueue::FILE),
            RetryPolicy::default(),
            Duration::from_secs(60),
        )
        .unwrap();
        Dispatcher::new(Arc::new(queue), invoker, DispatchConfig::default())
    }

    async fn answer(
        service: &QueueService,
        method: Method,
        uri: &str,
    ) -> (StatusCode, serde_json::Value) {
        let request = http::Request::builder()
            .method(method)
            .uri(uri)
            .body(Bytes::from_static(b"data"))
            .unwrap();
        let caller = ServiceCaller {
            function: FunctionIdentity::new("app", "fn"),
            invocation: Default::default(),
        };
        let response = service.call(&caller, request).await;
        let body = serde_json::from_slice(response.body()).unwrap();
        (response.status(), body)
    }

    #[tokio::test]
    async fn malformed_publishes_are_refused_with_the_api_error_shape() {
        let dir = tempfile::tempdir().unwrap();
        let dispatcher = node(dir.path());
        let service = QueueService::new(&dispatcher);
        let cases = [
            (
                Method::GET,
                "http://queue.svc/orders",
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
            ),
            (
                Method::POST,
                "http://queue.svc/Orders",
                StatusCode::BAD_REQUEST,
                "bad_request",
            ),
            (
                Method::POST,
                "http://queue.svc/",
                StatusCode::BAD_REQUEST,
                "bad_request",
            ),
            (
                Method::POST,
                "http://queue.svc/a/b/c",
                StatusCode::BAD_REQUEST,
                "bad_request",
            ),
            (
                Method::POST,
                "http://queue.svc/Shop/orders",
                StatusCode::BAD_REQUEST,
                "bad_request",
            ),
            (
                Method::POST,
                "http://queue.svc/shop/",
                StatusCode::BAD_REQUEST,
                "bad_request",
            ),
            (
                Method::POST,
                "http://queue.svc/orders",
                StatusCode::NOT_FOUND,
                "no_consumer",
            ),
            (
                Method::POST,
                "http://queue.svc/shop/orders",
                StatusCode::NOT_FOUND,
                "no_consumer",
            ),
        ];
        for (method, uri, status, code) in cases {
            let (got, body) = answer(&service, method.clone(), uri).await;
            assert_eq!(
                (got, body["error"]["code"].as_str()),
                (status, Some(code)),
                "{method} {uri}: {body}"
            );
        }
    }

    #[tokio::test]
    async fn a_node_going_away_answers_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let dispatcher = node(dir.path());
        let service = QueueService::new(&dispatcher);
        drop(dispatcher);
        let (status, body) = answer(&service, Method::POST, "http://queue.svc/orders").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    }

    #[test]
    fn another_apps_event_names_its_publisher_whatever_it_claims() {
        let caller = FunctionIdentity::new("shop", "checkout");
        let mut headers = HeaderMap::new();
        headers.insert(
            "ce-source",
            HeaderValue::from_static("/apps/billing/internal"),
        );
        headers.insert("ce-id", HeaderValue::from_static("inv-1"));
        let data = Bytes::from_static(b"{}");

        let own = event_of(&caller, "shop", &headers, data.clone());
        assert_eq!(own.from, None);
        assert_eq!(own.source.as_deref(), Some("/apps/billing/internal"));

        let other = event_of(&caller, "billing", &headers, data.clone());
        assert_eq!(other.from.as_deref(), Some("shop"));
        assert_eq!(
            other.source.as_deref(),
            Some("/apps/shop/functions/checkout")
        );
        assert_eq!(other.id.as_deref(), Some("inv-1"));

        let unnamed = event_of(&caller, "shop", &HeaderMap::new(), data);
        assert_eq!(
            unnamed.source.as_deref(),
            Some("/apps/shop/functions/checkout")
        );
        assert_eq!((unnamed.traceparent, unnamed.tracestate), (None, None));
    }

    #[test]
    fn a_published_event_keeps_the_publishing_invocations_trace() {
        const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let caller = FunctionIdentity::new("shop", "checkout");
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", HeaderValue::from_static(PARENT));
        headers.insert("tracestate", HeaderValue::from_static("rojo=1"));
        let event = event_of(&caller, "billing", &headers, Bytes::new());
        assert_eq!(event.traceparent.as_deref(), Some(PARENT));
        assert_eq!(event.tracestate.as_deref(), Some("rojo=1"));

        // A guest writing its own malformed one publishes without one.
        headers.insert(
            "traceparent",
            HeaderValue::from_static("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
        );
        let event = event_of(&caller, "billing", &headers, Bytes::new());
        assert_eq!((event.traceparent, event.tracestate), (None, None));
    }

    #[test]
    fn queue_names_follow_the_manifest_rule() {
        assert!(valid_queue_name("orders.eu-1_x"));
        assert!(valid_queue_name(&"a".repeat(64)));
        for bad in ["", "-x", ".x", "Orders", "a/b", "a b", &"a".repeat(65)] {
            assert!(!valid_queue_name(bad), "{bad:?}");
        }
    }
}
