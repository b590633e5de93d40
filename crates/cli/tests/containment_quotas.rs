//! Quotas instead of unbounded growth (issue 11, item 6): an app's logs
//! per day and an invocation's log, and the calls one request may set off.
//! Each holds against a hostile guest while a neighbour keeps answering.

use std::time::{Duration, Instant};

use crate::common::*;

/// The texts of a function's stored log lines (at most 10,000).
async fn log_texts(server: &Server, function: &str) -> Vec<String> {
    let (status, body) = server
        .admin_get(&format!("/v1/functions/{function}/logs?limit=10000"))
        .await;
    assert_eq!(status, 200, "{body}");
    body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_that_logs_past_its_budgets_is_cut_off_and_counted() {
    let server = Server::start_with(&[
        "--log-max-per-invocation",
        "16KiB",
        "--log-max-per-app-day",
        "100KiB",
    ]);
    let loud = hostile_app("loud", "/loud/...", "");
    server.deploy(loud.path());
    let neighbour = testbed_app("neighbour", "neighbour", &["/n/..."], "");
    server.deploy(neighbour.path());

    // Twenty invocations of 50 lines of 1,000 bytes: 1 MB asked for, 16 KiB
    // kept of each, 100 KiB for the day.
    for _ in 0..20 {
        let response = server.get("/loud/log?lines=50&size=999").await;
        assert_eq!(response.status(), 200);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let lines = log_texts(&server, "loud").await;
        if lines.iter().any(|l| l.contains("--log-max-per-app-day")) {
            break lines;
        }
        assert!(
            Instant::now() < deadline,
            "no budget marker in {} lines",
            lines.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let kept: usize = lines.iter().map(|l| l.len() + 1).sum();
    assert!(kept <= 100 * 1024 + 1024, "{kept} bytes of log kept");
    assert!(server.metric("stratus_log_lines_over_budget_total").await > 0);
    // One more invocation adds nothing today.
    assert_eq!(server.get("/loud/log?lines=5").await.status(), 200);

    // The neighbour has its own budget: its lines are kept.
    let response = server.get("/n/stdout").await;
    assert_eq!(response.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !log_texts(&server, "neighbour")
        .await
        .iter()
        .any(|l| l == "hello stdout")
    {
        assert!(
            Instant::now() < deadline,
            "the neighbour's log line was lost"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(log_texts(&server, "loud").await.len(), lines.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_out_of_calls_is_bounded_per_request() {
    let server = Server::start_with(&["--max-calls-per-request", "30"]);
    // Each invocation calls itself 50 times: 50^8 invocations unbounded.
    let fan = hostile_app(
        "fan",
        "/fan/...",
        "allowed_outbound = [\"http://fan.svc\"]\n",
    );
    server.deploy(fan.path());
    let neighbour = testbed_app("neighbour", "neighbour", &["/n/..."], "");
    server.deploy(neighbour.path());

    let response = server
        .http
        .get(server.url("/fan/fanout?to=fan&n=50"))
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer = response.text().await.unwrap();
    assert!(answer.ends_with("of 50"), "{answer}");
    assert!(server.metric("stratus_calls_refused_total").await > 0);

    // The request ran itself and at most 30 calls, however long we look.
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_secs(1) {
        let (_, usage) = server.admin_get("/v1/usage?app=fan").await;
        let requests = usage["total"]["requests"].as_u64().unwrap();
        assert!(requests <= 31, "{requests} invocations for one request");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The refusals were logged a few times, not once each.
    let warnings = server
        .node_log()
        .lines()
        .filter(|l| l.contains("call refused"))
        .count();
    assert!(warnings <= 5, "{warnings} warnings about refused calls");
    assert_eq!(server.get("/n/echo").await.status(), 200);
}
