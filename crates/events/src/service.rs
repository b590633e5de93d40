//! `http://queue.svc/<queue>`: publishing to a named queue from inside a
//! function, as an in-process service of the runtime.
//!
//! It answers like the admin API's `POST /v1/queues/{queue}/events` (same
//! consumer lookup, same `no_consumer` refusal, same `ce-*` headers), so a
//! function and an operator publish the same way; only the default
//! `ce-source` differs, naming the function that published.

use std::sync::{Arc, Weak};

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use stratus_gateway::Gateway;
use stratus_manifest::valid_queue_name;
use stratus_runtime::{FunctionIdentity, InProcessServices, ServiceCaller, ServiceFuture};

use crate::dispatcher::{Dispatcher, Published};

/// The host this service answers for.
pub const QUEUE_SERVICE_HOST: &str = "queue.svc";

/// Publishes a function's `POST http://queue.svc/<queue>` to the queue.
///
/// Holds the dispatcher and gateway weakly: the runtime keeps its services
/// for its whole life, and live functions keep the runtime, so strong
/// references would make a cycle that never drops.
pub struct QueueService {
    dispatcher: Weak<Dispatcher>,
    gateway: Weak<Gateway>,
}

impl std::fmt::Debug for QueueService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueService").finish_non_exhaustive()
    }
}

impl QueueService {
    pub fn new(dispatcher: &Arc<Dispatcher>, gateway: &Arc<Gateway>) -> Arc<QueueService> {
        Arc::new(QueueService {
            dispatcher: Arc::downgrade(dispatcher),
            gateway: Arc::downgrade(gateway),
        })
    }
}

impl InProcessServices for QueueService {
    fn handles(&self, host: &str) -> bool {
        host.eq_ignore_ascii_case(QUEUE_SERVICE_HOST)
    }

    fn call(&self, caller: &ServiceCaller, request: http::Request<Bytes>) -> ServiceFuture {
        let (dispatcher, gateway) = (self.dispatcher.clone(), self.gateway.clone());
        let caller = caller.function.clone();
        Box::pin(async move { publish(dispatcher, gateway, caller, request).await })
    }
}

async fn publish(
    dispatcher: Weak<Dispatcher>,
    gateway: Weak<Gateway>,
    caller: FunctionIdentity,
    request: http::Request<Bytes>,
) -> http::Response<Bytes> {
    if request.method() != Method::POST {
        let mut response = error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!(
                "{} publishes with POST http://{QUEUE_SERVICE_HOST}/<queue>, not {}",
                QUEUE_SERVICE_HOST,
                request.method()
            ),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let queue = request.uri().path().trim_start_matches('/');
    if !valid_queue_name(queue) {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!(
                "\"{queue}\" is not a queue name; use 1 to 64 of a-z, 0-9, '.', '-', '_', starting with a letter or digit"
            ),
        );
    }
    let (Some(dispatcher), Some(gateway)) = (dispatcher.upgrade(), gateway.upgrade()) else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "queue_unavailable",
            "the node is shutting down",
        );
    };
    let consumers = gateway.live().consumers(queue);
    if consumers.is_empty() {
        return error(
            StatusCode::NOT_FOUND,
            "no_consumer",
            format!(
                "no deployed function has a trigger on queue \"{queue}\"; add triggers = [{{ queue = \"{queue}\" }}] to one, or the event would be lost"
            ),
        );
    }
    let data = request.body();
    if let Some((f, _)) = consumers
        .iter()
        .find(|(f, _)| data.len() as u64 > f.max_body)
    {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "the event's data is {} bytes; function \"{}\" accepts at most {} (its `max_body`)",
                data.len(),
                f.name,
                f.max_body
            ),
        );
    }
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let event = Published {
        id: header("ce-id"),
        source: header("ce-source").or_else(|| {
            Some(format!(
                "/apps/{}/functions/{}",
                caller.app, caller.function
            ))
        }),
        kind: header("ce-type"),
        subject: header("ce-subject"),
        content_type: header("content-type"),
        data: data.clone(),
    };
    match dispatcher.publish(queue, &consumers, event).await {
        Ok(id) => {
            tracing::debug!(
                app = %caller.app, function = %caller.function, queue, event = %id,
                "a function published an event"
            );
            let body = serde_json::json!({
                "id": id,
                "queue": queue,
                "consumers": consumers.len(),
            });
            json(StatusCode::ACCEPTED, &body)
        }
        Err(e) => {
            tracing::error!(queue, "a function's event could not be queued: {e}");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "queue_unavailable",
                e.to_string(),
            )
        }
    }
}

/// The platform's JSON error shape, as the admin API answers it.
fn error(status: StatusCode, code: &str, message: impl Into<String>) -> http::Response<Bytes> {
    let body = serde_json::json!({ "error": { "code": code, "message": message.into() } });
    json(status, &body)
}

fn json(status: StatusCode, body: &serde_json::Value) -> http::Response<Bytes> {
    let mut response = http::Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use stratus_gateway::Admission;
    use stratus_queue::{Queue, RetryPolicy};

    use super::*;
    use crate::dispatcher::DispatchConfig;

    fn node(dir: &std::path::Path) -> (Arc<Dispatcher>, Arc<Gateway>) {
        let gateway = Gateway::new(Admission::new(4, 64 << 20, Duration::from_secs(1)), None);
        let queue = Queue::open(
            &dir.join(Queue::FILE),
            RetryPolicy::default(),
            Duration::from_secs(60),
        )
        .unwrap();
        let dispatcher =
            Dispatcher::new(Arc::new(queue), gateway.clone(), DispatchConfig::default());
        (dispatcher, gateway)
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
    async fn only_queue_svc_is_served() {
        let dir = tempfile::tempdir().unwrap();
        let (dispatcher, gateway) = node(dir.path());
        let service = QueueService::new(&dispatcher, &gateway);
        assert!(service.handles("queue.svc"));
        assert!(service.handles("QUEUE.svc"));
        for host in ["kv.svc", "example.com", "queue.svc.example.com", ""] {
            assert!(!service.handles(host), "{host}");
        }
    }

    #[tokio::test]
    async fn malformed_publishes_are_refused_with_the_api_error_shape() {
        let dir = tempfile::tempdir().unwrap();
        let (dispatcher, gateway) = node(dir.path());
        let service = QueueService::new(&dispatcher, &gateway);
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
                "http://queue.svc/a/b",
                StatusCode::BAD_REQUEST,
                "bad_request",
            ),
            (
                Method::POST,
                "http://queue.svc/orders",
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
        let (dispatcher, gateway) = node(dir.path());
        let service = QueueService::new(&dispatcher, &gateway);
        drop((dispatcher, gateway));
        let (status, body) = answer(&service, Method::POST, "http://queue.svc/orders").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
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
