//! Per-function metrics (issue 15): each function's responses by status
//! class, errors, duration histogram, cold starts, billed GB-seconds and
//! in-flight gauge, labelled by namespace, app, function and trigger — and
//! read as a user reads them, by a real Prometheus server (Debian's
//! `prometheus` package) scraping a node under load, whose PromQL gives each
//! function's request rate and p99.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

#[tokio::test]
async fn each_function_is_counted_by_trigger_status_class_and_duration() {
    let server = Server::start();
    server.deploy(testbed_app("shop", "cart", &["/cart/..."], "").path());
    let out = server.cli(&[
        "deploy",
        testbed_app("shop", "cart", &["/team-cart/..."], "")
            .path()
            .to_str()
            .unwrap(),
        "-n",
        "team-a",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    for _ in 0..3 {
        assert_eq!(server.send("GET", "/cart/echo", b"").await.0, 200);
    }
    assert_eq!(
        server.send("GET", "/cart/status?code=404", b"").await.0,
        404
    );
    assert_eq!(server.send("GET", "/cart/panic", b"").await.0, 502);
    assert_eq!(server.send("GET", "/team-cart/echo", b"").await.0, 200);
    let out = server.cli(&["invoke", "cart", "--path", "/echo"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let labels = |namespace: &str, trigger: &str| {
        format!("namespace=\"{namespace}\",app=\"shop\",function=\"cart\",trigger=\"{trigger}\"")
    };
    let http = labels("default", "http");
    for (series, value) in [
        (
            format!("stratus_function_requests_total{{{http},code=\"2xx\"}}"),
            3,
        ),
        (
            format!("stratus_function_requests_total{{{http},code=\"4xx\"}}"),
            1,
        ),
        (
            format!("stratus_function_requests_total{{{http},code=\"5xx\"}}"),
            1,
        ),
        // A function's own 404 is an answer, not an error; the trap is.
        (format!("stratus_function_errors_total{{{http}}}"), 1),
        (
            format!("stratus_function_duration_seconds_count{{{http}}}"),
            5,
        ),
        (
            format!("stratus_function_duration_seconds_bucket{{{http},le=\"+Inf\"}}"),
            5,
        ),
        (
            format!(
                "stratus_function_requests_total{{{},code=\"2xx\"}}",
                labels("default", "api")
            ),
            1,
        ),
        (
            format!(
                "stratus_function_requests_total{{{},code=\"2xx\"}}",
                labels("team-a", "http")
            ),
            1,
        ),
        (
            "stratus_function_inflight{namespace=\"team-a\",app=\"shop\",function=\"cart\"}".into(),
            0,
        ),
    ] {
        assert_eq!(
            server.metric_reaching(&series, value).await,
            value,
            "{series}"
        );
    }

    // A new version keeps counting where the last one was.
    server.deploy(testbed_app("shop", "cart", &["/cart/..."], "env = { V = \"2\" }").path());
    assert_eq!(server.send("GET", "/cart/echo", b"").await.0, 200);
    let series = format!("stratus_function_requests_total{{{http},code=\"2xx\"}}");
    assert_eq!(server.metric_reaching(&series, 4).await, 4);
    // A deleted app's series are gone, bounded by what is live.
    let out = server.cli(&["delete", "shop", "-n", "team-a"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = server.metrics_text().await;
    assert!(!text.contains("namespace=\"team-a\""), "{text}");
}

/// A Prometheus server of the test's own, killed on drop.
struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts Debian's `prometheus` scraping `target` (host:port) every
    /// second, or `None` where it is not installed and this is not CI.
    fn start(target: &str) -> Option<Prometheus> {
        if Command::new("prometheus")
            .arg("--version")
            .output()
            .is_err()
        {
            let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
            assert!(
                !ci,
                "the Prometheus test needs prometheus in CI: apt-get install -y --no-install-recommends prometheus"
            );
            eprintln!("skipping: prometheus is not installed");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: stratus\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Some(Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        })
    }

    /// The instant vector `query` evaluates to, as (labels, value) pairs;
    /// empty while Prometheus is starting.
    async fn query(&self, http: &reqwest::Client, query: &str) -> Vec<(serde_json::Value, f64)> {
        let Ok(response) = http
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", query)])
            .send()
            .await
        else {
            return Vec::new();
        };
        let Ok(body) = response.json::<serde_json::Value>().await else {
            return Vec::new();
        };
        body["data"]["result"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| {
                let value = r["value"][1].as_str()?.parse().ok()?;
                Some((r["metric"].clone(), value))
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_reads_each_functions_request_rate_and_p99() {
    let server = Server::start();
    let target = server.admin.trim_start_matches("http://").to_owned();
    let Some(prometheus) = Prometheus::start(&target) else {
        return;
    };
    server.deploy(testbed_app("quick", "quick", &["/quick/..."], "").path());
    server.deploy(testbed_app("slow", "slow", &["/slow/..."], "").path());

    // Load on both until Prometheus has seen enough of it: one client
    // each, the quick one paced to about 100 requests a second, bounded in
    // time and count.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for (path, pause) in [("/quick/echo", 10), ("/slow/sleep?ms=300", 0)] {
        let (http, url, stop) = (server.http.clone(), server.url(path), stop.clone());
        load.push(tokio::spawn(async move {
            let until = Instant::now() + Duration::from_secs(70);
            let mut sent = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed)
                && Instant::now() < until
                && sent < 10_000
            {
                let response = http.get(&url).send().await.unwrap();
                assert_eq!(response.status(), 200);
                sent += 1;
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
        }));
    }

    let rate = "sum by (app, function) (rate(stratus_function_requests_total[5s]))";
    let p99 = "histogram_quantile(0.99, sum by (le, function) (rate(stratus_function_duration_seconds_bucket[5s])))";
    let deadline = Instant::now() + Duration::from_secs(60);
    let (rates, p99s) = loop {
        let rates = prometheus.query(&server.http, rate).await;
        let p99s = prometheus.query(&server.http, p99).await;
        let of = |results: &[(serde_json::Value, f64)], function: &str| {
            results
                .iter()
                .find(|(labels, _)| labels["function"] == function)
                .map(|(_, v)| *v)
        };
        let seen = ["quick", "slow"].iter().all(|f| {
            of(&rates, f).is_some_and(|r| r > 0.0)
                && of(&p99s, f).is_some_and(|p| p.is_finite() && p > 0.0)
        });
        if seen {
            break (
                (of(&rates, "quick").unwrap(), of(&rates, "slow").unwrap()),
                (of(&p99s, "quick").unwrap(), of(&p99s, "slow").unwrap()),
            );
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never saw both functions: {rates:?} {p99s:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    eprintln!("rates {rates:?} req/s, p99 {p99s:?} s");
    // One client each, one request at a time: the slow one (300 ms a
    // request) can do at most ~3.3 a second, and every one of its requests
    // lies above the 0.1 s bound, so its p99 does; the quick one's lies
    // below it.
    assert!(rates.1 < 4.0, "slow at {} req/s", rates.1);
    assert!(rates.0 > rates.1, "{rates:?}");
    assert!(p99s.1 > 0.1, "slow p99 {}", p99s.1);
    assert!(p99s.0 < p99s.1, "{p99s:?}");
}

/// The value of the series `name` once it exists and is at least 1: a
/// labelled counter appears with its first count.
async fn appearing(server: &Server, name: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = server.metrics_text().await;
        let value = text
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .map(|v| v.trim().parse::<u64>().unwrap());
        if let Some(value) = value.filter(|v| *v > 0) {
            return value;
        }
        assert!(Instant::now() < deadline, "{name} never appeared:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The shop's functions, counted as `/metrics` names them.
fn shop(function: &str, labels: &str) -> String {
    format!("{{namespace=\"default\",app=\"shop\",function=\"{function}\",{labels}}}")
}

#[tokio::test]
async fn outbound_calls_and_event_outcomes_are_counted_per_function() {
    example_guest("shop_checkout");
    let server = Server::start_with(&["--retry-base", "10ms"]);
    server.deploy(&repo_root().join("examples/shop"));
    set_stock(&server, "mug-stratus", 10).await;
    let response = server
        .http
        .post(server.url("/shop/checkout"))
        .header("content-type", "application/json")
        .body(r#"{"order":"m-1","items":[{"sku":"mug-stratus","quantity":1}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);

    // The order is handled once by its consumer.
    let handled = format!(
        "stratus_function_events_total{}",
        shop("orders", "outcome=\"handled\"")
    );
    assert_eq!(appearing(&server, &handled).await, 1);
    // checkout priced (pricing.svc), reserved (inventory.svc) and
    // published (queue.svc); pricing, called by it, asked catalog and
    // inventory.
    let outbound = |function, trigger| {
        format!(
            "stratus_function_outbound_requests_total{}",
            shop(function, &format!("trigger=\"{trigger}\""))
        )
    };
    assert_eq!(server.metric(&outbound("checkout", "http")).await, 3);
    assert_eq!(server.metric(&outbound("pricing", "service")).await, 2);
    let text = server.metrics_text().await;
    assert!(
        !text.contains(&outbound("catalog", "service")),
        "catalog calls nothing: no series\n{text}"
    );

    // An order event the consumer refuses (422) is retried, then dead.
    let (status, _) = publish(&server, "shop", "orders", &[("ce-id", "bad-1")], "not json").await;
    assert_eq!(status, 202);
    let outcome = |o: &str| {
        format!(
            "stratus_function_events_total{}",
            shop("orders", &format!("outcome=\"{o}\""))
        )
    };
    assert_eq!(appearing(&server, &outcome("dead")).await, 1);
    assert_eq!(server.metric(&outcome("retried")).await, 2);
    assert_eq!(server.metric(&outcome("handled")).await, 1);
}

#[tokio::test]
async fn a_functions_queue_shows_what_waits_since_when_and_its_dead_letters() {
    let server = Server::start_with(&["--retry-base", "10ms"]);
    let app = testbed_app("slowq", "slowq", &[], "max_concurrency = 1");
    server.deploy(app.path());
    // One event runs for 3 s; the second waits behind it (the function
    // takes one at a time).
    submit(&server, "slowq", "/sleep?ms=3000", "").await;
    server.wait_in_flight("slowq", 1).await;
    submit(&server, "slowq", "/sleep?ms=10", "").await;
    let labels = "{namespace=\"default\",app=\"slowq\",function=\"slowq\"}";
    let waiting = format!("stratus_function_queue_waiting_events{labels}");
    let age = format!("stratus_function_queue_oldest_event_age_seconds{labels}");
    let deadline = Instant::now() + Duration::from_secs(10);
    // Both wait (one being delivered counts), and the oldest ages.
    let aged = loop {
        let text = server.metrics_text().await;
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ")))
                .map(|v| v.trim().parse::<f64>().unwrap())
        };
        if let (Some(2.0), Some(seconds)) = (value(&waiting), value(&age))
            && seconds >= 1.0
        {
            break seconds;
        }
        let shown: Vec<&str> = text.lines().filter(|l| l.contains("slowq")).collect();
        assert!(
            Instant::now() < deadline,
            "no aging backlog of 2:\n{}",
            shown.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(aged < 10.0, "{aged}");
    // Once both are handled the queue has no backlog: no series.
    let deadline = Instant::now() + Duration::from_secs(15);
    while server.metrics_text().await.contains(&waiting) {
        assert!(Instant::now() < deadline, "the backlog never emptied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A dead letter stays counted until it is redriven.
    submit(&server, "slowq", "/status?code=500", "").await;
    let dead = format!("stratus_function_dead_letters{labels}");
    assert_eq!(appearing(&server, &dead).await, 1);
}
