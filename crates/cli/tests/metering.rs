//! Metering, usage and cost, invocation logs and instance reuse, end to end
//! against the real binary.

use std::time::Duration;

use crate::common::*;

#[tokio::test]
async fn usage_totals_equal_the_requests_sent_and_are_priced() {
    let server = Server::start();
    let app = testbed_app("metered", "meter", &["/m/..."], "memory = \"16MiB\"");
    server.deploy(app.path());
    // Bodies are read in full: a client that hangs up early makes the
    // testbed's body write fail, which it reports by panicking (an error).
    for _ in 0..40 {
        let response = server.get("/m/echo").await;
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
    }
    for _ in 0..3 {
        assert_eq!(server.get("/m/panic").await.status(), 502);
    }
    let usage = server.usage_reaching("", 43).await;
    let total = &usage["total"];
    assert_eq!(total["requests"], 43, "{usage}");
    assert_eq!(total["errors"], 3, "{usage}");
    let row = &usage["functions"][0];
    assert_eq!(
        (row["app"].as_str(), row["function"].as_str()),
        (Some("metered"), Some("meter"))
    );
    // Every invocation bills at least 1 MiB × 1 ms.
    let gb_s = row["gb_seconds"].as_f64().unwrap();
    assert!(gb_s >= 43.0 / 1024.0 / 1000.0, "{usage}");
    let cost = row["cost"].as_f64().unwrap();
    let expected = 43.0 * 0.20 / 1e6 + gb_s * 0.000_016_666_7;
    assert!((cost - expected).abs() < 1e-12, "{cost} vs {expected}");
    assert_eq!(usage["prices"]["currency"], "USD");

    // The same through the CLI, in each format.
    let csv = stdout(&server.cli(&["usage", "--format", "csv", "--since", "1h"]));
    let line = csv
        .lines()
        .find(|l| l.starts_with("metered,meter,"))
        .unwrap();
    assert!(line.starts_with("metered,meter,43,3,"), "{csv}");
    let table = stdout(&server.cli(&["usage", "--app", "metered"]));
    assert!(table.contains("COST (USD)"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("TOTAL") && l.contains(" 43 ")),
        "{table}"
    );
    let other = stdout(&server.cli(&["usage", "--app", "nobody", "--format", "json"]));
    let other: serde_json::Value = serde_json::from_str(&other).unwrap();
    assert_eq!(other["total"]["requests"], 0);
}

#[tokio::test]
async fn a_bad_since_is_refused_with_the_forms_it_takes() {
    let server = Server::start();
    let out = server.cli(&["usage", "--since", "yesterday-ish"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("neither a span back from now"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn an_invocation_is_recorded_with_its_logs_under_its_id() {
    let server = Server::start();
    let app = testbed_app("logged", "talker", &["/t/..."], "");
    server.deploy(app.path());
    let response = server.get("/t/stdout").await;
    assert_eq!(response.status(), 200);
    let id = invocation_id(&response);
    let detail = server.invocation(&id).await;
    assert_eq!(detail["function"], "talker");
    assert_eq!(detail["status"], 200);
    assert_eq!(detail["trigger"], "http");
    assert!(detail["error"].is_null());
    assert!(detail["bytes_out"].as_u64().unwrap() >= "printed".len() as u64);
    assert!(detail["peak_memory_bytes"].as_u64().unwrap() > 0);
    let logs: Vec<(&str, &str)> = detail["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["stream"].as_str().unwrap(), l["text"].as_str().unwrap()))
        .collect();
    assert_eq!(
        logs,
        [("stdout", "hello stdout"), ("stderr", "hello stderr")]
    );

    // `stratus logs` prints them with timestamps and the invocation id.
    let out = server.cli(&["logs", "talker", "--invocation", &id]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    let first = text.lines().next().unwrap();
    assert!(
        first.contains(&id) && first.ends_with("hello stdout"),
        "{text}"
    );
    assert!(first.starts_with("20") && first.contains('T'), "{text}");
}

#[tokio::test]
async fn a_failure_is_recorded_with_its_code_and_cpu_time() {
    let server = Server::start();
    let app = testbed_app("failing", "spinner", &["/s/..."], "timeout = \"200ms\"");
    server.deploy(app.path());
    let response = server.get("/s/spin").await;
    assert_eq!(response.status(), 504);
    let detail = server.invocation(&invocation_id(&response)).await;
    assert_eq!(detail["error"], "timeout");
    assert_eq!(detail["status"], 504);
    // It spun for its whole timeout on one core.
    let cpu = detail["cpu_ms"].as_f64().unwrap();
    assert!(cpu > 100.0, "cpu {cpu} ms: {detail}");
}

#[tokio::test]
async fn output_past_the_budget_is_cut_with_a_marker() {
    let server = Server::start();
    let app = testbed_app("chatty", "chatty", &["/c/..."], "");
    server.deploy(app.path());
    // 2000 lines of 100 bytes: far past 64 KiB.
    let long = "x".repeat(99);
    let response = server
        .get(&format!("/c/print?times=2000&text={long}"))
        .await;
    assert_eq!(response.status(), 200);
    let detail = server.invocation(&invocation_id(&response)).await;
    let logs = detail["logs"].as_array().unwrap();
    assert!(logs.len() < 700, "{} lines kept", logs.len());
    let last = logs.last().unwrap()["text"].as_str().unwrap();
    assert!(last.contains("output truncated"), "{last}");
}

#[tokio::test]
async fn logs_follow_prints_new_lines_as_they_happen() {
    let server = Server::start();
    let app = testbed_app("followed", "follow", &["/f/..."], "");
    server.deploy(app.path());
    let follower = LogFollower::start(&server, "follow");
    // Keep sending until the follower shows a line: it may not have
    // subscribed before the first request.
    let mut seen = None;
    for attempt in 0..50 {
        let response = server.get(&format!("/f/print?text=live-{attempt}")).await;
        assert_eq!(response.status(), 200);
        if let Ok(line) = follower.lines.recv_timeout(Duration::from_millis(200)) {
            seen = Some(line);
            break;
        }
    }
    let line = seen.expect("logs -f printed nothing");
    assert!(line.contains("live-"), "{line}");
}

#[tokio::test]
async fn acknowledged_records_survive_kill_9() {
    let mut server = Server::start();
    let app = testbed_app("durable", "durable", &["/d/..."], "");
    server.deploy(app.path());
    for _ in 0..100 {
        let response = server.get("/d/echo").await;
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
    }
    // Acknowledged as written: the usage API reads committed rows only.
    let usage = server.usage_reaching("", 100).await;
    assert_eq!(usage["total"]["requests"], 100);
    server.kill_9();
    let restarted = Server::start_in(&server.data_dir, &[]);
    let (_, usage) = restarted.admin_get("/v1/usage").await;
    assert_eq!(usage["total"]["requests"], 100, "{usage}");
}

#[tokio::test]
async fn with_metering_off_usage_says_so() {
    let server = Server::start_with(&["--no-metering"]);
    let (status, body) = server.admin_get("/v1/usage").await;
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], "metering_off");
}

#[tokio::test]
async fn reuse_serves_n_requests_per_instance_and_discards_after_a_trap() {
    let server = Server::start();
    let fresh = testbed_app("fresh", "fresh", &["/fresh/..."], "");
    let reused = testbed_app("reused", "reused", &["/reused/..."], "reuse = 3");
    server.deploy(fresh.path());
    server.deploy(reused.path());
    let mut counts = Vec::new();
    for _ in 0..4 {
        counts.push(server.get("/fresh/count").await.text().await.unwrap());
    }
    assert_eq!(counts, ["1", "1", "1", "1"], "a fresh instance each time");

    // An instance goes back to the pool after its response is sent, so
    // each request waits until the one before it was kept (or not, after
    // its third).
    let mut counts: Vec<String> = Vec::new();
    let mut kept = server.metric("stratus_kept_instances_total").await;
    for _ in 0..7 {
        if counts.last().is_some_and(|c| c != "3") {
            kept += 1;
            server
                .metric_reaching("stratus_kept_instances_total", kept)
                .await;
        }
        counts.push(server.get("/reused/count").await.text().await.unwrap());
    }
    assert_eq!(
        counts,
        ["1", "2", "3", "1", "2", "3", "1"],
        "at most 3 per instance"
    );
    // A trap discards the instance: the next request starts afresh.
    server
        .metric_reaching("stratus_kept_instances_total", kept + 1)
        .await;
    assert_eq!(server.get("/reused/panic").await.status(), 502);
    assert_eq!(server.get("/reused/count").await.text().await.unwrap(), "1");
    assert!(server.metric("stratus_reused_instances_total").await >= 4);
}

#[tokio::test]
async fn sampled_records_leave_every_total_exact_and_say_so() {
    // Two records a second kept in full, then one success in 1000: nearly
    // every success of a burst is sampled out.
    let server = Server::start_with(&[
        "--ledger-sample-above",
        "2",
        "--ledger-sample-one-in",
        "1000",
    ]);
    server.deploy(testbed_app("busy", "burst", &["/b/..."], "").path());
    server.deploy(testbed_app("calm", "quiet", &["/c/..."], "").path());
    let sends = (0..200).map(|i| {
        let server = &server;
        async move {
            let response = server.get(&format!("/b/print?text=burst-{i}")).await;
            assert_eq!(response.status(), 200);
            response.bytes().await.unwrap();
        }
    });
    futures_util::future::join_all(sends).await;
    let failed = server.get("/b/panic").await;
    assert_eq!(failed.status(), 502);
    let failed_id = invocation_id(&failed);
    // The neighbour app is served and metered exactly all along.
    assert_eq!(server.get("/c/echo").await.status(), 200);

    let usage = server.usage_reaching("?app=busy&since=10m", 201).await;
    assert_eq!(usage["total"]["requests"], 201, "{usage}");
    assert_eq!(usage["total"]["errors"], 1, "{usage}");
    let sampled = usage["total"]["sampled"].as_u64().unwrap();
    assert!(sampled >= 150, "{usage}");
    assert_eq!(usage["granularity"], "hour", "{usage}");
    let metric = server
        .metric_reaching("stratus_invocation_records_sampled_total", sampled)
        .await;
    assert_eq!(metric, sampled);
    // A failure is always kept, and every line is.
    let detail = server.invocation(&failed_id).await;
    assert_eq!(detail["error"], "function_trapped", "{detail}");
    let (_, logs) = server
        .admin_get("/v1/functions/burst/logs?limit=1000")
        .await;
    let lines = logs["lines"].as_array().map_or(0, Vec::len);
    assert!(lines >= 200, "{lines} lines: {logs}");
    let calm = server.usage_reaching("?app=calm&since=10m", 1).await;
    assert_eq!(
        (
            calm["granularity"].as_str(),
            calm["total"]["sampled"].as_u64()
        ),
        (Some("invocation"), Some(0)),
        "{calm}"
    );

    let table = stdout(&server.cli(&["usage", "--app", "busy", "--since", "10m"]));
    assert!(
        table.contains(&format!(
            "{sampled} of these invocations were counted but not kept"
        )),
        "{table}"
    );
    let csv = stdout(&server.cli(&["usage", "--app", "busy", "--format", "csv"]));
    assert!(
        csv.starts_with("app,function,requests,errors,cold_starts,"),
        "{csv}"
    );
    assert!(csv.contains(&format!(",{sampled},")), "{csv}");
}

#[tokio::test]
async fn status_shows_the_data_directory_against_the_ledger_budget_and_the_free_disk() {
    let server = Server::start_with(&["--ledger-max-size", "32MiB"]);
    server.deploy(testbed_app("sized", "api", &["/s/..."], "").path());
    assert_eq!(server.get("/s/echo").await.status(), 200);
    let (status, health) = server.admin_get("/readyz").await;
    assert_eq!(status, 200, "{health}");
    let disk = &health["disk"];
    assert_eq!(disk["ledger_max_bytes"], 32 << 20, "{health}");
    let data_dir = disk["data_dir_bytes"].as_u64().unwrap();
    let ledger = disk["ledger_bytes"].as_u64().unwrap();
    assert!(ledger > 0 && data_dir > ledger, "{health}");
    let (free, total) = (
        disk["disk_free_bytes"].as_u64().unwrap(),
        disk["disk_total_bytes"].as_u64().unwrap(),
    );
    assert!(free > 0 && free <= total, "{health}");
    let out = stdout(&server.cli(&["status"]));
    let line = out
        .lines()
        .find(|l| l.starts_with("disk"))
        .unwrap_or_default();
    assert!(line.contains("data dir "), "{out}");
    assert!(line.contains("of its 32.0 MiB budget"), "{out}");
    assert!(line.contains(" free of "), "{out}");
}
