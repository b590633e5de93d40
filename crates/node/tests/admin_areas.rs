//! The admin API by area, in process: every route of every area behind the
//! token, and each area's refusals in the platform's one error shape. No
//! function is deployed, so no guest is built: what is checked here is the
//! routing, the token check and the error answers the areas share.

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use stratus_node::{NodeConfig, Stratus};
use tower::ServiceExt;

const TOKEN: &str = "admin-areas-token";

/// Every route under `/v1`, one line per route and method, by area.
const ROUTES: &[(&str, &str)] = &[
    // apps and versions
    ("GET", "/v1/apps"),
    ("POST", "/v1/apps"),
    ("GET", "/v1/apps/shop"),
    ("DELETE", "/v1/apps/shop"),
    ("GET", "/v1/apps/shop/versions"),
    ("POST", "/v1/apps/shop/versions/1/activate"),
    ("POST", "/v1/apps/shop/rollback"),
    ("GET", "/v1/deploys"),
    ("GET", "/v1/apps/shop/traffic"),
    ("PUT", "/v1/apps/shop/traffic"),
    // invocations and logs
    ("GET", "/v1/functions"),
    ("POST", "/v1/functions/bed/invocations"),
    ("GET", "/v1/functions/bed/logs"),
    ("GET", "/v1/invocations/some-id"),
    ("GET", "/v1/functions/bed/invocations"),
    ("GET", "/v1/functions/bed/series"),
    // events and queues
    ("GET", "/v1/events/some-id"),
    ("POST", "/v1/apps/shop/queues/orders/events"),
    ("POST", "/v1/queues/orders/events"),
    ("GET", "/v1/functions/bed/events"),
    ("GET", "/v1/functions/bed/dead-letters"),
    ("POST", "/v1/functions/bed/dead-letters/redrive"),
    ("GET", "/v1/queues"),
    ("POST", "/v1/functions/bed/events/some-id/replay"),
    // secrets
    ("GET", "/v1/apps/shop/secrets"),
    ("PUT", "/v1/apps/shop/secrets/stripe"),
    ("DELETE", "/v1/apps/shop/secrets/stripe"),
    // usage
    ("GET", "/v1/usage"),
    // namespaces and tokens
    ("GET", "/v1/namespaces"),
    ("GET", "/v1/namespaces/team-a/apps"),
    ("GET", "/v1/tokens"),
    ("POST", "/v1/tokens"),
    ("DELETE", "/v1/tokens/some-id"),
    ("GET", "/v1/whoami"),
    // the audit log, quotas
    ("GET", "/v1/audit"),
    ("GET", "/v1/quotas"),
    ("PUT", "/v1/quotas"),
];

async fn node() -> (Stratus, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let node = Stratus::open(NodeConfig::default(), dir.path(), TOKEN)
        .await
        .unwrap();
    (node, dir)
}

fn request(method: &str, path: &str, token: Option<&str>) -> Request<Full<Bytes>> {
    let mut builder = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(path);
    if let Some(token) = token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    builder.body(Full::new(Bytes::new())).unwrap()
}

/// The status, the content type and the body as JSON (`Null` if it is not).
async fn send(
    node: &Stratus,
    request: Request<Full<Bytes>>,
) -> (StatusCode, Option<String>, serde_json::Value) {
    let response = node.admin().oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        serde_json::from_slice(&body).unwrap_or_default(),
    )
}

/// Checks `body` is the platform's error shape with `code`, and nothing
/// else: no invocation id, since an admin answer belongs to no invocation.
fn assert_error(body: &serde_json::Value, code: &str, context: &str) {
    let error = body["error"].as_object().unwrap_or_else(|| {
        panic!("{context}: not the error shape: {body}");
    });
    assert_eq!(error["code"], code, "{context}: {body}");
    assert!(
        !error["message"].as_str().unwrap_or_default().is_empty(),
        "{context}: {body}"
    );
    let mut keys: Vec<&str> = error.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["code", "message"], "{context}: {body}");
    assert_eq!(body.as_object().unwrap().len(), 1, "{context}: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_of_every_area_needs_the_token() {
    let (node, _dir) = node().await;
    for (method, path) in ROUTES {
        let context = format!("{method} {path} without a token");
        let (status, content_type, body) = send(&node, request(method, path, None)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{context}: {body}");
        assert_eq!(
            content_type.as_deref(),
            Some("application/json"),
            "{context}"
        );
        assert_error(&body, "unauthorized", &context);
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("Authorization: Bearer"),
            "{context}: {body}"
        );

        let context = format!("{method} {path} with a wrong token");
        let (status, _, body) = send(&node, request(method, path, Some("guess"))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{context}: {body}");
        assert_error(&body, "unauthorized", &context);
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("not valid"), "{context}: {body}");

        // The right token gets past the check: whatever the area answers,
        // it is not the token's refusal.
        let (status, _, body) = send(&node, request(method, path, Some(TOKEN))).await;
        assert_ne!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_and_the_api_description_need_no_token() {
    let (node, _dir) = node().await;
    for path in ["/healthz", "/readyz", "/metrics", "/v1/openapi.json"] {
        let (status, _, _) = send(&node, request("GET", path, None)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_path_is_a_404_in_the_error_shape_with_or_without_a_token() {
    let (node, _dir) = node().await;
    for token in [None, Some(TOKEN)] {
        let (status, content_type, body) = send(&node, request("GET", "/v1/nope", token)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(content_type.as_deref(), Some("application/json"));
        assert_eq!(
            body,
            serde_json::json!({"error": {
                "code": "not_found",
                "message": "no admin endpoint at /v1/nope; see /v1/openapi.json",
            }})
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_area_refuses_in_the_one_error_shape() {
    let (node, _dir) = node().await;
    let cases = [
        // apps and versions
        (
            "GET",
            "/v1/apps/ghost",
            StatusCode::NOT_FOUND,
            "app_not_found",
        ),
        (
            "POST",
            "/v1/apps",
            StatusCode::BAD_REQUEST,
            "bad_request", // not a multipart form
        ),
        // invocations and logs
        (
            "POST",
            "/v1/functions/ghost/invocations",
            StatusCode::NOT_FOUND,
            "function_not_found",
        ),
        (
            "GET",
            "/v1/invocations/ghost",
            StatusCode::NOT_FOUND,
            "invocation_not_found",
        ),
        (
            "GET",
            "/v1/functions/shop%2Fbed/logs?limit=0",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        // events and queues
        (
            "GET",
            "/v1/events/ghost",
            StatusCode::NOT_FOUND,
            "event_not_found",
        ),
        (
            "POST",
            "/v1/apps/shop/queues/orders/events",
            StatusCode::NOT_FOUND,
            "no_consumer",
        ),
        (
            "POST",
            "/v1/apps/Shop/queues/orders/events",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "POST",
            "/v1/queues/orders/events",
            StatusCode::GONE,
            "moved",
        ),
        (
            "GET",
            "/v1/functions/ghost/dead-letters",
            StatusCode::NOT_FOUND,
            "function_not_found",
        ),
        // secrets
        (
            "DELETE",
            "/v1/apps/shop/secrets/stripe",
            StatusCode::NOT_FOUND,
            "secret_not_found",
        ),
        (
            "GET",
            "/v1/apps/Not%20An%20App/secrets",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        // usage
        (
            "GET",
            "/v1/usage?since=yesterday-ish",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
    ];
    for (method, path, status, code) in cases {
        let context = format!("{method} {path}");
        let (got, content_type, body) = send(&node, request(method, path, Some(TOKEN))).await;
        assert_eq!(got, status, "{context}: {body}");
        assert_eq!(
            content_type.as_deref(),
            Some("application/json"),
            "{context}"
        );
        assert_error(&body, code, &context);
    }
}
