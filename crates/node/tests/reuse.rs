//! Instance reuse (`reuse = N`) with guests that leave a request
//! unfinished: a client is answered at once rather than left waiting on an
//! idle instance, a guest that cannot serve a second request on one
//! instance (as componentize-js cannot) loses reuse after its first
//! failure, and a neighbour app answers throughout.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use stratus_node::Stratus;

use crate::common::{TOKEN, admin, deploy_request, get, manifest, node, testbed};

/// Long enough that a request held until the timeout cannot pass for one
/// answered at once.
const TIMEOUT: &str = "timeout = \"60s\"";

/// Each request is given this long: far less than the function's timeout.
const PATIENCE: Duration = Duration::from_secs(10);

async fn deploy(node: &Stratus, app: &str, extra: &str) {
    let request = deploy_request(
        "/v1/apps",
        TOKEN,
        &manifest(app, &format!("/{app}"), extra),
        ("testbed.wasm", testbed()),
    );
    let (status, body) = admin(node, request).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// A GET that must be answered, body and all, well within the function's
/// timeout.
async fn answered(node: &Stratus, path: &str) -> (StatusCode, String) {
    tokio::time::timeout(PATIENCE, get(node, path))
        .await
        .unwrap_or_else(|_| panic!("{path} was not answered within {PATIENCE:?}"))
}

#[tokio::test]
async fn a_reused_instance_that_does_not_answer_fails_at_once_and_ends_reuse() {
    let (node, _dir) = node().await;
    deploy(&node, "reused", &format!("reuse = 8\n{TIMEOUT}")).await;
    deploy(&node, "neighbour", "").await;

    // The first request of an instance is answered; the instance is kept,
    // and its second request returns unanswered. (A request that arrives
    // before the instance was put back gets a fresh one and is answered.)
    let mut failure = None;
    for _ in 0..50 {
        let started = Instant::now();
        let (status, body) = answered(&node, "/reused/once").await;
        if status == StatusCode::OK {
            assert_eq!(body, "first");
            continue;
        }
        failure = Some((status, body, started.elapsed()));
        break;
    }
    let (status, body, took) = failure.expect("no request reached a reused instance");
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(
        body.contains("reused instance") && body.contains("remove `reuse`"),
        "{body}"
    );
    assert!(took < Duration::from_secs(5), "answered after {took:?}");

    // Reuse is over for the function: each request has a fresh instance,
    // so every one is its instance's first.
    for _ in 0..20 {
        assert_eq!(
            answered(&node, "/reused/once").await,
            (StatusCode::OK, "first".into())
        );
        assert_eq!(
            answered(&node, "/reused/count").await,
            (StatusCode::OK, "1".into())
        );
    }
    assert_eq!(
        answered(&node, "/neighbour/count").await,
        (StatusCode::OK, "1".into())
    );
}

#[tokio::test]
async fn an_unfinished_body_is_cut_short_and_its_instance_not_kept() {
    let (node, _dir) = node().await;
    deploy(&node, "reused", &format!("reuse = 8\n{TIMEOUT}")).await;
    deploy(&node, "neighbour", "").await;

    for _ in 0..3 {
        let request = Request::get("/reused/unfinished")
            .header(header::HOST, "localhost")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = node.gateway().handle_request(request).await;
        assert_eq!(response.status(), StatusCode::OK);
        // The body ends (cut short) instead of waiting on a kept instance.
        let body = tokio::time::timeout(PATIENCE, response.into_body().collect())
            .await
            .expect("the unfinished body was held open");
        assert!(
            body.is_err() || body.is_ok_and(|b| b.to_bytes().len() <= "partial".len()),
            "the body ended cleanly although the guest never finished it"
        );
        assert_eq!(
            answered(&node, "/neighbour/count").await,
            (StatusCode::OK, "1".into())
        );
    }

    // Only that instance was dropped: the function still reuses instances
    // that finish their requests.
    let mut counts = Vec::new();
    for _ in 0..50 {
        let (status, count) = answered(&node, "/reused/count").await;
        assert_eq!(status, StatusCode::OK, "{count}");
        counts.push(count);
        if counts.last().is_some_and(|c| c != "1") {
            break;
        }
    }
    assert!(
        counts.last().is_some_and(|c| c != "1"),
        "no instance was reused: {counts:?}"
    );
}
