//! OpenTelemetry traces (`--otlp-endpoint`): a node exports a span per
//! invocation over OTLP/HTTP to a real receiver, which decodes it with the
//! protocol's own definitions. One shop checkout is one trace: the
//! client's request, the functions it called through `.svc`, and the
//! order event it published, each with its parent.

use std::time::Duration;

use crate::common::otlp::{Receiver, Span};
use crate::common::*;

/// The protocol's `SpanKind` values.
const INTERNAL: i32 = 1;
const SERVER: i32 = 2;
const CLIENT: i32 = 3;
const PRODUCER: i32 = 4;
const CONSUMER: i32 = 5;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

async fn traced_shop(receiver: &Receiver) -> Server {
    example_guest("shop_checkout");
    let server = Server::start_with_env(
        &[
            "--otlp-endpoint",
            &receiver.endpoint,
            "--retry-base",
            "10ms",
        ],
        // Exported every 100 ms rather than every 5 s.
        &[("OTEL_BSP_SCHEDULE_DELAY", "100")],
    );
    server.deploy(&repo_root().join("examples/shop"));
    server.deploy(&repo_root().join("examples/hello"));
    server
}

fn one<'a>(spans: &'a [Span], what: &str, pick: impl Fn(&Span) -> bool) -> &'a Span {
    let found: Vec<&Span> = spans.iter().filter(|s| pick(s)).collect();
    assert_eq!(found.len(), 1, "one {what} span expected: {found:#?}");
    found[0]
}

fn invocation<'a>(spans: &'a [Span], function: &str) -> Vec<&'a Span> {
    spans
        .iter()
        .filter(|s| s.name == format!("shop/{function}"))
        .collect()
}

fn children<'a>(spans: &'a [Span], parent: &Span) -> Vec<&'a Span> {
    spans
        .iter()
        .filter(|s| s.parent == parent.span_id)
        .collect()
}

#[tokio::test]
async fn a_checkout_is_one_trace_across_functions_and_its_event() {
    let receiver = Receiver::start().await;
    let server = traced_shop(&receiver).await;
    set_stock(&server, "mug-stratus", 10).await;

    let response = server
        .http
        .post(server.url("/shop/checkout"))
        .header("traceparent", format!("00-{TRACE}-{CLIENT_SPAN}-01"))
        .header("tracestate", "client=1")
        .header("content-type", "application/json")
        .body(r#"{"order":"t-1","items":[{"sku":"mug-stratus","quantity":1}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let checkout_id = invocation_id(&response);

    // Complete once the order's consumer (last in the chain) has reported.
    let spans = receiver
        .wait_for(Duration::from_secs(30), |spans| {
            spans
                .iter()
                .any(|s| s.trace_id == TRACE && s.name == "shop/orders")
        })
        .await;
    let trace: Vec<Span> = spans.into_iter().filter(|s| s.trace_id == TRACE).collect();

    // The checkout continues the client's trace, with the FaaS attributes.
    let checkout = one(&trace, "checkout", |s| s.name == "shop/checkout");
    assert_eq!(checkout.parent, CLIENT_SPAN);
    assert_eq!(checkout.kind, SERVER);
    assert_eq!(checkout.attr("faas.trigger"), "http");
    assert_eq!(checkout.attr("faas.invocation_id"), checkout_id);
    assert_eq!(checkout.attr("faas.name"), "checkout");
    assert!(["true", "false"].contains(&checkout.attr("faas.coldstart")));
    assert_eq!(
        checkout.attr("cloud.resource_id"),
        "stratus:default/shop/checkout"
    );
    assert_eq!(checkout.attr("http.response.status_code"), "201");
    assert_eq!(checkout.status, 0, "a 201 is no error");
    assert_eq!(checkout.resource["service.name"], "stratus");

    // Its phases and its calls are its children.
    let under_checkout = children(&trace, checkout);
    for phase in ["instantiate", "execution"] {
        let span = one(&trace, phase, |s| {
            s.name == phase && s.parent == checkout.span_id
        });
        assert_eq!(span.kind, INTERNAL);
        assert!(span.start_ns >= checkout.start_ns && span.end_ns <= checkout.end_ns);
    }
    let to = |host: &str, kind: i32| {
        under_checkout
            .iter()
            .copied()
            .filter(|s| s.attr("server.address") == host && s.kind == kind)
            .collect::<Vec<&Span>>()
    };
    let pricing_call = to("pricing.svc", CLIENT);
    assert_eq!(pricing_call.len(), 1, "{under_checkout:#?}");
    assert_eq!(pricing_call[0].attr("http.response.status_code"), "200");
    assert_eq!(to("inventory.svc", CLIENT).len(), 1, "{under_checkout:#?}");
    let publish = to("queue.svc", PRODUCER);
    assert_eq!(publish.len(), 1, "{under_checkout:#?}");
    assert_eq!(publish[0].name, "send orders");
    assert_eq!(publish[0].attr("messaging.destination.name"), "orders");

    // The function called is the call's child, and calls on in turn.
    let pricing = invocation(&trace, "pricing");
    assert_eq!(pricing.len(), 1, "{pricing:#?}");
    assert_eq!(pricing[0].parent, pricing_call[0].span_id);
    assert_eq!(pricing[0].attr("stratus.trigger"), "service");
    let pricing_calls = children(&trace, pricing[0]);
    for host in ["catalog.svc", "inventory.svc"] {
        let calls: Vec<&Span> = pricing_calls
            .iter()
            .copied()
            .filter(|s| s.attr("server.address") == host && s.kind == CLIENT)
            .collect();
        assert_eq!(calls.len(), 1, "{host}: {pricing_calls:#?}");
        let call = calls[0];
        let callee = if host == "catalog.svc" {
            "catalog"
        } else {
            "inventory"
        };
        let answered: Vec<_> = invocation(&trace, callee)
            .into_iter()
            .filter(|s| s.parent == call.span_id)
            .collect();
        assert_eq!(answered.len(), 1, "{host}: {trace:#?}");
    }

    // The order event is consumed under the publish that caused it.
    let orders = one(&trace, "orders", |s| s.name == "shop/orders");
    assert_eq!(orders.kind, CONSUMER);
    assert_eq!(orders.attr("faas.trigger"), "pubsub");
    assert_eq!(orders.parent, publish[0].span_id);
}

#[tokio::test]
async fn bad_trace_contexts_start_new_traces_and_a_lost_collector_loses_no_request() {
    let receiver = Receiver::start().await;
    let server = traced_shop(&receiver).await;

    // A traceparent against the grammar (uppercase hex, all-zero ids, too
    // short, an unknown version's ff) is not continued: a trace of its own.
    for (i, bad) in [
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ]
    .iter()
    .enumerate()
    {
        let response = server
            .http
            .get(server.url(&format!("/hello/bad-{i}")))
            .header("traceparent", *bad)
            .header("tracestate", "x".repeat(8192))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{bad}");
        let id = invocation_id(&response);
        let spans = receiver
            .wait_for(Duration::from_secs(20), |spans| {
                spans.iter().any(|s| s.attr("faas.invocation_id") == id)
            })
            .await;
        let span = one(&spans, "hello", |s| s.attr("faas.invocation_id") == id);
        assert_eq!(span.parent, "", "{bad} must not be continued");
        assert_ne!(span.trace_id, TRACE);
        assert_eq!(span.trace_id.len(), 32);
        assert_ne!(span.trace_id, "0".repeat(32));
    }

    // A failed invocation's span says so: error status, the platform's
    // error code as `error.type`.
    server.deploy(testbed_app("bed", "bed", &["/bed/..."], "").path());
    let response = server.get("/bed/panic").await;
    assert_eq!(response.status(), 502);
    let id = invocation_id(&response);
    let spans = receiver
        .wait_for(Duration::from_secs(20), |spans| {
            spans.iter().any(|s| s.attr("faas.invocation_id") == id)
        })
        .await;
    let failed = one(&spans, "bed", |s| s.attr("faas.invocation_id") == id);
    assert_eq!(failed.status, 2, "{failed:#?}");
    assert_eq!(failed.attr("error.type"), "function_trapped", "{failed:#?}");
    assert_eq!(failed.attr("http.response.status_code"), "502");

    // The collector goes away: requests go on being answered, the node
    // neither waits on it nor fails.
    receiver.stop();
    for _ in 0..20 {
        let response = server
            .http
            .post(server.url("/shop/checkout"))
            .header("content-type", "application/json")
            .body(r#"{"order":"lost","items":[]}"#)
            .send()
            .await
            .unwrap();
        assert!(response.status().as_u16() < 500, "{}", response.status());
        let (status, body) = server.send("GET", "/hello/neighbour", b"").await;
        assert_eq!(status, 200, "{body}");
    }
}

#[tokio::test]
async fn an_unusable_tracing_setting_stops_the_node_with_its_reason() {
    for (flags, env, says) in [
        (
            vec!["--otlp-endpoint", "collector:4318"],
            vec![],
            "--otlp-endpoint \"collector:4318\" is not an http:// or https:// URL",
        ),
        (
            vec![
                "--otlp-endpoint",
                "http://127.0.0.1:4318",
                "--trace-sample-ratio",
                "1.5",
            ],
            vec![],
            "--trace-sample-ratio 1.5 is not between 0 and 1",
        ),
        (
            vec![],
            vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ],
            "OTEL_EXPORTER_OTLP_PROTOCOL=\"grpc\": Stratus exports traces over OTLP/HTTP with protobuf only",
        ),
    ] {
        let env: Vec<(&str, Option<&str>)> = env.iter().map(|(k, v)| (*k, Some(*v))).collect();
        let error = server_refuses(&flags, &env);
        assert!(error.contains(says), "{flags:?} {env:?}: {error}");
    }
}
