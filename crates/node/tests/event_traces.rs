//! Events carry their publisher's W3C trace context (the CloudEvents
//! distributed-tracing extension) from the admin API to the function: a
//! valid one is delivered as `traceparent`/`tracestate` and
//! `ce-traceparent`/`ce-tracestate`; a hostile one (a malformed
//! `traceparent`, a `tracestate` far past its limit) is dropped, never
//! refused: the event is accepted and delivered without one.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::common::{TOKEN, admin, manifest, node, testbed};
use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::Full;
use stratus_control::Upload;
use stratus_events::{Attempt, request_for};
use stratus_manifest::Namespace;
use stratus_node::Stratus;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const STATE: &str = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE";

/// `traceparent`s the specification forbids: uppercase hex, an all-zero
/// trace id, the forbidden version.
fn hostile_parents() -> [String; 3] {
    [
        PARENT.to_uppercase(),
        format!("00-{}-00f067aa0ba902b7-01", "0".repeat(32)),
        PARENT.replacen("00", "ff", 1),
    ]
}

/// A `tracestate` twenty times its limit.
fn huge_state() -> String {
    format!("rojo={}", "x".repeat(10 * 1024))
}

/// The testbed as app `shop`, its function `bed` consuming queue `orders`.
async fn deploy(node: &Stratus) {
    let upload = Upload {
        namespace: Namespace::default(),
        manifest: manifest("shop", "/shop", "triggers = [{ queue = \"orders\" }]"),
        components: BTreeMap::from([("testbed.wasm".to_owned(), testbed())]),
    };
    node.control().deploy(upload).await.unwrap();
}

/// `POST` to the admin API with this trace context: status and JSON body.
async fn post_traced(
    node: &Stratus,
    path: &str,
    parent: &str,
    state: &str,
    ce_id: &str,
) -> (StatusCode, serde_json::Value) {
    let request = Request::post(path)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "text/plain")
        .header("ce-id", ce_id)
        .header("traceparent", parent)
        .header("tracestate", state)
        .body(Full::new(Bytes::from_static(b"data")))
        .unwrap();
    admin(node, request).await
}

/// Async-invokes `bed` at `/shop/header?name=<header>` with this trace
/// context: the event's id.
async fn invoke_async(node: &Stratus, header: &str, parent: &str, state: &str) -> String {
    let path =
        format!("/v1/functions/bed/invocations?mode=async&path=%2Fshop%2Fheader%3Fname%3D{header}");
    let (status, body) = post_traced(node, &path, parent, state, "ignored").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// The event `id` once its first delivery has ended: succeeded, or failed
/// with the function's answer as its last error.
async fn first_outcome(node: &Stratus, id: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let request = Request::get(format!("/v1/events/{id}"))
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let (status, event) = admin(node, request).await;
        assert_eq!(status, StatusCode::OK, "{event}");
        if event["state"] == "succeeded" || !event["last_error"].is_null() {
            return event;
        }
        assert!(
            Instant::now() < deadline,
            "event {id} never delivered: {event}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_invocation_continues_the_callers_trace_and_a_hostile_one_is_dropped() {
    let (node, _dir) = node().await;
    deploy(&node).await;
    let delivering = node.dispatcher().spawn();

    // Valid: the function reads the caller's context as the CloudEvents
    // attributes, exactly as sent.
    for (header, expected) in [("ce-traceparent", PARENT), ("ce-tracestate", STATE)] {
        let id = invoke_async(&node, header, PARENT, STATE).await;
        let event = first_outcome(&node, &id).await;
        assert_eq!(
            (&event["state"], &event["result"]),
            (&"succeeded".into(), &expected.into()),
            "{header}: {event}"
        );
    }
    // Its `traceparent` is in the caller's trace (the invocation's own
    // span may stand in for the caller's as the parent, so only the trace
    // id is the caller's for sure).
    let id = invoke_async(&node, "traceparent", PARENT, STATE).await;
    let event = first_outcome(&node, &id).await;
    assert_eq!(event["state"], "succeeded", "{event}");
    let seen = event["result"].as_str().unwrap();
    assert!(seen.starts_with(&format!("00-{TRACE_ID}-")), "{seen}");

    // Hostile: accepted, delivered, and the function finds no trace
    // context of the caller's: its 404 `unset` answer is the proof that it
    // ran and the header was not there.
    for parent in hostile_parents() {
        for header in ["ce-traceparent", "ce-tracestate"] {
            let id = invoke_async(&node, header, &parent, &huge_state()).await;
            let event = first_outcome(&node, &id).await;
            let error = event["last_error"].as_str().unwrap_or_default();
            assert!(
                error.contains("404") && error.ends_with("unset"),
                "{parent} {header}: {event}"
            );
        }
        // Whatever `traceparent` the function gets (none, or a trace the
        // node began), it is not the hostile caller's.
        let id = invoke_async(&node, "traceparent", &parent, &huge_state()).await;
        let event = first_outcome(&node, &id).await;
        let seen = event["result"].as_str().unwrap_or_default();
        assert!(!seen.to_lowercase().contains(TRACE_ID), "{parent}: {event}");
        assert!(
            !seen.contains(&"0".repeat(32)),
            "{parent}: an all-zero trace id was passed on: {event}"
        );
    }
    delivering.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_events_trace_context_is_kept_and_a_hostile_one_is_dropped() {
    // The delivery loop is not started: the test leases the stored events
    // itself, to see what each delivery carries before the function gets
    // it (an event published to a queue is delivered at `/`, where the
    // testbed shows no headers).
    let (node, _dir) = node().await;
    deploy(&node).await;
    let publish = "/v1/apps/shop/queues/orders/events";
    let (status, body) = post_traced(&node, publish, PARENT, STATE, "traced").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let hostile = hostile_parents();
    for (i, parent) in hostile.iter().enumerate() {
        let (status, body) = post_traced(
            &node,
            publish,
            parent,
            &huge_state(),
            &format!("hostile-{i}"),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{parent}: {body}");
    }
    // A valid parent with an oversized state keeps the parent alone.
    let (status, body) = post_traced(&node, publish, PARENT, &huge_state(), "big-state").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    let queue = node.dispatcher().queue();
    let leased = queue
        .lease(Some("fn:shop/bed"), 10, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(leased.len(), 2 + hostile.len(), "{leased:?}");
    for delivery in &leased {
        let request = request_for(delivery).unwrap();
        let headers = request.headers();
        let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
        let (parent, state) = match delivery.id.as_str() {
            "traced" => (Some(PARENT), Some(STATE)),
            "big-state" => (Some(PARENT), None),
            _ => (None, None),
        };
        assert_eq!(
            (
                delivery.traceparent.as_deref(),
                delivery.tracestate.as_deref()
            ),
            (parent, state),
            "{}",
            delivery.id
        );
        for name in ["traceparent", "ce-traceparent"] {
            assert_eq!(header(name).as_deref(), parent, "{} {name}", delivery.id);
        }
        for name in ["tracestate", "ce-tracestate"] {
            assert_eq!(header(name).as_deref(), state, "{} {name}", delivery.id);
        }
        // And the function takes every one of them.
        match node.dispatcher().attempt(delivery).await {
            Attempt::Handled((200, body)) => assert_eq!(body, b"testbed"),
            other => panic!("{} was not handled: {other:?}", delivery.id),
        }
        queue.succeed(delivery.seq, None).await.unwrap();
    }
}
