//! A whole node in process: opened on a temporary data directory, driven
//! through its admin router and its gateway with `oneshot`, without a
//! socket or a process. What only a process shows (signals, restarts, the
//! CLI) stays in the binary's end-to-end tests.

use crate::common::{self, TOKEN, admin, get, manifest, node, testbed};
use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};

/// `POST /v1/apps` with a manifest and the testbed component.
fn deploy_request(manifest: &str, token: &str) -> Request<Full<Bytes>> {
    common::deploy_request("/v1/apps", token, manifest, ("testbed.wasm", testbed()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployed_function_answers_through_the_gateway() {
    let (node, _dir) = node().await;
    let (status, body) = admin(&node, deploy_request(&manifest("shop", "/shop", ""), TOKEN)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["version"], 1, "{body}");

    let (status, text) = get(&node, "/shop/echo").await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, ""));
    let (status, text) = get(&node, "/shop/status?code=418").await;
    assert_eq!(status, StatusCode::IM_A_TEAPOT, "{text}");

    let list = Request::get("/v1/functions")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, body) = admin(&node, list).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body[0]["name"], "bed", "{body}");
    assert_eq!(body[0]["state"], "resident", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_deploy_changes_nothing_and_the_neighbour_answers() {
    let (node, _dir) = node().await;
    let (status, _) = admin(&node, deploy_request(&manifest("shop", "/shop", ""), TOKEN)).await;
    assert_eq!(status, StatusCode::CREATED);

    // Without the token, with a broken manifest, and claiming another
    // app's route: each refused with a reason, nothing deployed.
    let (status, _) = admin(
        &node,
        deploy_request(&manifest("evil", "/evil", ""), "guess"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let broken = manifest("evil", "/evil", "").replace("routes", "routs");
    let (status, body) = admin(&node, deploy_request(&broken, TOKEN)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("routs"), "{body}");
    let (status, body) = admin(&node, deploy_request(&manifest("evil", "/shop", ""), TOKEN)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.to_string().contains("shop"), "{body}");

    let (status, _) = get(&node, "/evil/echo").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = get(&node, "/shop/echo").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_errors_are_json_with_the_invocation_id() {
    let (node, _dir) = node().await;
    let request = Request::get("/nowhere")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = node.gateway().handle_request(request).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let id = response.headers()["x-stratus-invocation-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "no_route");
    assert_eq!(body["error"]["invocation_id"], id.as_str());
}
