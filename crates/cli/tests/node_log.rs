//! The node's own log as a log pipeline reads it (`--log-format json`):
//! one JSON object a line, and on a line about an invocation, that
//! invocation's id, app and function.

use crate::common::*;

#[tokio::test]
async fn a_json_log_names_the_invocation_on_its_lines() {
    let server = Server::start_with(&["--log-format", "json"]);
    server.deploy(testbed_app("shop", "cart", &["/cart/..."], "").path());
    let response = server.get("/cart/panic").await;
    assert_eq!(response.status(), 502);
    let id = response
        .headers()
        .get("x-stratus-invocation-id")
        .expect("the invocation id header")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        server.logs("invocation failed").await,
        "{}",
        server.node_log()
    );
    let log = server.node_log();
    let mut about_it = 0;
    for line in log
        .lines()
        .filter(|l| !l.starts_with("gateway:") && !l.starts_with("admin:"))
    {
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) else {
            // The addresses and the token hint go to stdout as text.
            assert!(!line.contains("\"level\""), "not one JSON object: {line}");
            continue;
        };
        assert!(entry["timestamp"].is_string(), "{line}");
        assert!(entry["level"].is_string(), "{line}");
        if entry["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("invocation failed"))
        {
            assert_eq!(entry["level"], "WARN", "{line}");
            assert_eq!(entry["span"]["invocation_id"], id.as_str(), "{line}");
            assert_eq!(entry["span"]["app"], "shop", "{line}");
            assert_eq!(entry["span"]["function"], "cart", "{line}");
            assert_eq!(entry["span"]["trigger"], "http", "{line}");
            about_it += 1;
        }
    }
    assert_eq!(about_it, 1, "{log}");
}

#[tokio::test]
async fn a_traced_invocations_lines_carry_its_trace_id() {
    // Traced to a collector that is not there: exports fail, quietly.
    let server = Server::start_with(&[
        "--log-format",
        "json",
        "--otlp-endpoint",
        "http://127.0.0.1:9",
    ]);
    server.deploy(testbed_app("shop", "cart", &["/cart/..."], "").path());
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = server
        .http
        .get(server.url("/cart/panic"))
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    assert!(
        server.logs("invocation failed").await,
        "{}",
        server.node_log()
    );
    let log = server.node_log();
    let failed: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("invocation failed"))
        })
        .collect();
    assert_eq!(failed.len(), 1, "{log}");
    assert_eq!(failed[0]["span"]["trace_id"], trace, "{log}");
}
