//! Serving requests through the gateway: routing, limits and failures, each
//! answered with the platform's JSON error shape and an invocation id.

use std::time::{Duration, Instant};

use crate::common::*;

const ID: &str = "x-stratus-invocation-id";

#[tokio::test]
async fn hello_example_deploys_through_the_cli_and_serves() {
    let server = Server::start();
    example_guest("hello");
    let out = server.deploy(&repo_root().join("examples/hello"));
    assert!(out.contains("Deployed hello version 1"), "{out}");
    assert!(
        out.contains("validation") && out.contains("compilation"),
        "{out}"
    );

    let response = server.get("/hello").await;
    assert_eq!(response.status(), 200);
    let id = response.headers()[ID].to_str().unwrap().to_string();
    assert_eq!(id.len(), 32, "invocation id: {id}");
    let body = response.text().await.unwrap();
    assert!(body.starts_with("Hello from Stratus!"), "{body}");

    // Every response has its own id.
    let second = server.get("/hello/again").await;
    assert_eq!(second.status(), 200);
    assert_ne!(second.headers()[ID].to_str().unwrap(), id);
}

#[tokio::test]
async fn json_api_example_gets_its_env() {
    let server = Server::start();
    example_guest("json_api");
    server.deploy(&repo_root().join("examples/json-api"));
    let response = server
        .http
        .post(server.url("/api/stats"))
        .body("[1, 2, 3, 10]")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-api-name"], "stats");
    let body = json(response).await;
    assert_eq!(body["count"], 4);
    assert_eq!(body["max"], 10.0);
}

#[tokio::test]
async fn longest_route_wins_and_exact_beats_prefix() {
    let server = Server::start();
    let broad = testbed_app("broad", "broad", &["/t/..."], "env = { WHO = \"broad\" }");
    let deep = testbed_app("deep", "deep", &["/t/deep/..."], "env = { WHO = \"deep\" }");
    let exact = testbed_app(
        "exact",
        "exact",
        &["/t/deep/env"],
        "env = { WHO = \"exact\" }",
    );
    for app in [&broad, &deep, &exact] {
        server.deploy(app.path());
    }
    let who = |path: &'static str| {
        let server = &server;
        async move { server.get(path).await.text().await.unwrap() }
    };
    assert_eq!(who("/t/env?name=WHO").await, "broad");
    assert_eq!(who("/t/x/y/env?name=WHO").await, "broad");
    assert_eq!(who("/t/deep/more/env?name=WHO").await, "deep");
    assert_eq!(who("/t/deep/env?name=WHO").await, "exact");

    // A path outside every route is a JSON 404 with an invocation id.
    let response = server.get("/nowhere").await;
    assert_eq!(response.status(), 404);
    assert!(response.headers().contains_key(ID));
    let body = json(response).await;
    assert_eq!(body["error"]["code"], "no_route");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/nowhere")
    );
}

#[tokio::test]
async fn oversized_bodies_get_413_declared_or_chunked() {
    let server = Server::start();
    let app = testbed_app("small", "small", &["/s/..."], "max_body = \"1KiB\"");
    server.deploy(app.path());

    let ok = server
        .http
        .post(server.url("/s/echo"))
        .body(vec![b'a'; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.bytes().await.unwrap().len(), 1024);

    let declared = server
        .http
        .post(server.url("/s/echo"))
        .body(vec![b'a'; 2048])
        .send()
        .await
        .unwrap();
    assert_eq!(declared.status(), 413);
    assert!(declared.headers().contains_key(ID));
    let body = json(declared).await;
    assert_eq!(body["error"]["code"], "body_too_large");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_body")
    );

    // No content-length: the body arrives chunked.
    let stream = futures_stream(vec![vec![b'b'; 800], vec![b'b'; 800]]);
    let chunked = server
        .http
        .post(server.url("/s/echo"))
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(chunked.status(), 413);
}

fn futures_stream(
    chunks: Vec<Vec<u8>>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    tokio_stream::iter(chunks.into_iter().map(Ok))
}

#[tokio::test]
async fn traps_and_bad_answers_are_502_and_do_not_hurt_other_requests() {
    let server = Server::start();
    let app = testbed_app("faulty", "faulty", &["/f/..."], "");
    server.deploy(app.path());

    let panic = server.get("/f/panic").await;
    assert_eq!(panic.status(), 502);
    assert!(panic.headers().contains_key(ID));
    let body = json(panic).await;
    assert_eq!(body["error"]["code"], "function_trapped");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("faulty")
    );

    let silent = server.get("/f/noresponse").await;
    assert_eq!(silent.status(), 502);
    assert_eq!(json(silent).await["error"]["code"], "bad_response");

    // The node and the function carry on.
    let echo = server
        .http
        .post(server.url("/f/echo"))
        .body("still here")
        .send()
        .await
        .unwrap();
    assert_eq!(echo.status(), 200);
    assert_eq!(echo.text().await.unwrap(), "still here");
}

#[tokio::test]
async fn timeouts_are_504_for_spinning_and_sleeping_guests() {
    let _cores = timed().await;
    let server = Server::start();
    let app = testbed_app("slow", "slow", &["/slow/..."], "timeout = \"500ms\"");
    server.deploy(app.path());

    for path in ["/slow/spin", "/slow/sleep?ms=10000"] {
        let started = Instant::now();
        let response = server.get(path).await;
        let took = started.elapsed();
        assert_eq!(response.status(), 504, "{path}");
        assert!(response.headers().contains_key(ID));
        let body = json(response).await;
        assert_eq!(body["error"]["code"], "timeout");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("timeout")
        );
        assert!(took < Duration::from_secs(3), "{path} took {took:?}");
    }
    let ok = server.get("/slow/sleep?ms=10").await;
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn memory_beyond_the_cap_is_a_trap_that_says_so() {
    let server = Server::start();
    let app = testbed_app("hungry", "hungry", &["/m/..."], "memory = \"16MiB\"");
    server.deploy(app.path());

    let fits = server.get("/m/alloc?mb=4").await;
    assert_eq!(fits.status(), 200);
    let too_much = server.get("/m/alloc?mb=64").await;
    assert_eq!(too_much.status(), 502);
    let body = json(too_much).await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("memory limit of 16 MiB"), "{message}");
}

#[tokio::test]
async fn concurrent_requests_to_several_apps_all_succeed() {
    let server = Server::start();
    let a = testbed_app(
        "alpha",
        "alpha",
        &["/alpha/..."],
        "env = { WHO = \"alpha\" }",
    );
    let b = testbed_app("beta", "beta", &["/beta/..."], "env = { WHO = \"beta\" }");
    server.deploy(a.path());
    server.deploy(b.path());
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (http, url, want) = if i % 2 == 0 {
            (
                server.http.clone(),
                server.url("/alpha/env?name=WHO"),
                "alpha",
            )
        } else {
            (
                server.http.clone(),
                server.url("/beta/env?name=WHO"),
                "beta",
            )
        };
        tasks.push(tokio::spawn(async move {
            let response = http.get(url).send().await.unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(response.text().await.unwrap(), want);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test]
async fn guests_have_no_filesystem_and_no_outbound_network() {
    let server = Server::start();
    let app = testbed_app("sandbox", "sandbox", &["/sb/..."], "");
    server.deploy(app.path());
    // The environment holds only what the manifest grants.
    assert_eq!(server.get("/sb/env?name=HOME").await.status(), 404);
    assert_eq!(server.get("/sb/env?name=PATH").await.status(), 404);

    let text = |path: String| {
        let server = &server;
        async move {
            let response = server.get(&path).await;
            assert_eq!(response.status(), 200, "{path}");
            response.text().await.unwrap()
        }
    };
    let fs = text("/sb/fs".into()).await;
    assert!(fs.starts_with("denied:"), "{fs}");
    // A port that is really listening (the admin API): the denial is the
    // sandbox's, not a refused connection.
    let listening = server.admin.trim_start_matches("http://").to_string();
    let connect = text(format!("/sb/connect?to={listening}")).await;
    assert!(connect.starts_with("denied:"), "{connect}");
    let fetch = text(format!("/sb/fetch?to={listening}")).await;
    assert!(fetch.contains("HttpRequestDenied"), "{fetch}");
}

#[tokio::test]
async fn a_full_node_sheds_with_429_and_retry_after_never_500() {
    let server = Server::start_with(&["--max-instances", "2", "--queue-timeout", "300ms"]);
    let app = testbed_app("pool", "pool", &["/p/..."], "");
    server.deploy(app.path());
    let statuses = flood(&server, "/p/sleep?ms=700", 8).await;
    let ok = statuses.iter().filter(|(s, _)| *s == 200).count();
    let shed: Vec<_> = statuses.iter().filter(|(s, _)| *s == 429).collect();
    assert_eq!(ok + shed.len(), 8, "only 200 and 429: {statuses:?}");
    assert_eq!(ok, 2, "the node's two slots served: {statuses:?}");
    assert!(
        shed.iter().all(|(_, code)| code == "over_capacity"),
        "{statuses:?}"
    );
    // Once the slots are free again, requests succeed.
    assert_eq!(server.get("/p/echo").await.status(), 200);
}

#[tokio::test]
async fn max_concurrency_queues_briefly_then_sheds_with_429() {
    let server = Server::start_with(&["--queue-timeout", "300ms"]);
    let app = testbed_app("limited", "limited", &["/l/..."], "max_concurrency = 2");
    server.deploy(app.path());
    let statuses = flood(&server, "/l/sleep?ms=1000", 10).await;
    let ok = statuses.iter().filter(|(s, _)| *s == 200).count();
    let shed = statuses
        .iter()
        .filter(|(s, c)| *s == 429 && c == "over_concurrency")
        .count();
    assert_eq!((ok, shed), (2, 8), "{statuses:?}");
}

#[tokio::test]
async fn a_flood_on_one_function_does_not_starve_another() {
    let server = Server::start_with(&["--max-instances", "8"]);
    let hot = testbed_app("hot", "hot", &["/hot/..."], "max_concurrency = 4");
    let calm = testbed_app("calm", "calm", &["/calm/..."], "");
    server.deploy(hot.path());
    server.deploy(calm.path());
    let flood = {
        let (http, url) = (server.http.clone(), server.url("/hot/sleep?ms=500"));
        tokio::spawn(async move {
            let mut tasks = Vec::new();
            for _ in 0..40 {
                let (http, url) = (http.clone(), url.clone());
                tasks.push(tokio::spawn(async move {
                    http.get(url).send().await.unwrap().status()
                }));
            }
            for task in tasks {
                let status = task.await.unwrap().as_u16();
                assert!(status == 200 || status == 429, "{status}");
            }
        })
    };
    server.wait_in_flight("hot", 4).await;
    for _ in 0..20 {
        let response = server.get("/calm/echo").await;
        assert_eq!(response.status(), 200);
        // Admission's own measure of the wait (the receipt's `queue`), not
        // the client's clock: calm never queues behind hot's flood, as
        // hot's requests wait on hot's slots, not the node's.
        let timing = response.headers()["server-timing"]
            .to_str()
            .unwrap()
            .to_owned();
        let queued: f64 = timing
            .split(", ")
            .find_map(|part| part.strip_prefix("queue;dur="))
            .and_then(|ms| ms.parse().ok())
            .unwrap();
        assert!(
            queued < 50.0,
            "calm queued {queued} ms behind the flood: {timing}"
        );
    }
    flood.await.unwrap();
}

/// Sends `n` concurrent GETs; returns each status with its error code.
async fn flood(server: &Server, path: &str, n: usize) -> Vec<(u16, String)> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (http, url) = (server.http.clone(), server.url(path));
        tasks.push(tokio::spawn(async move {
            let response = http.get(url).send().await.unwrap();
            let status = response.status().as_u16();
            if status == 429 {
                assert_eq!(response.headers()["retry-after"], "1");
            }
            let code = if status == 200 {
                String::new()
            } else {
                json(response).await["error"]["code"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            };
            (status, code)
        }));
    }
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

#[tokio::test]
async fn idle_functions_scale_to_zero_and_come_back_cold_unless_min_warm() {
    let server = Server::start_with(&["--idle-ttl", "300ms"]);
    let idle = testbed_app("idle", "idle", &["/idle/..."], "");
    let warm = testbed_app("warm", "warm", &["/warm/..."], "min_warm = true");
    server.deploy(idle.path());
    server.deploy(warm.path());
    assert_eq!(server.get("/idle/echo").await.status(), 200);
    assert_eq!(server.get("/warm/echo").await.status(), 200);
    assert_eq!(server.metric("stratus_cold_starts_total").await, 0);
    assert_eq!(server.metric("stratus_warm_starts_total").await, 2);

    server.metric_reaching("stratus_evictions_total", 1).await;
    assert_eq!(
        server.metric("stratus_resident_functions").await,
        1,
        "only min_warm stays"
    );
    assert_eq!(server.metric("stratus_evictions_total").await, 1);

    let back = server
        .http
        .post(server.url("/idle/echo"))
        .body("again")
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), 200);
    assert_eq!(back.text().await.unwrap(), "again");
    assert_eq!(server.get("/warm/echo").await.status(), 200);
    assert_eq!(server.metric("stratus_cold_starts_total").await, 1);
    assert_eq!(server.metric("stratus_warm_starts_total").await, 3);
    assert_eq!(server.metric("stratus_resident_functions").await, 2);
}

#[tokio::test]
async fn every_response_carries_a_cost_receipt() {
    let server = Server::start();
    let app = testbed_app("metered", "metered", &["/r/..."], "memory = \"64MiB\"");
    server.deploy(app.path());
    let billed = |response: &reqwest::Response| -> (u64, u64) {
        let text = response.headers()["x-stratus-billed"]
            .to_str()
            .unwrap()
            .to_string();
        let field = |name: &str| -> u64 {
            text.split(", ")
                .find_map(|kv| kv.strip_prefix(name))
                .unwrap_or_else(|| panic!("{name} in {text}"))
                .parse()
                .unwrap()
        };
        (field("duration-ms="), field("memory-mib="))
    };

    let small = server.get("/r/echo").await;
    let timing = small.headers()["server-timing"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        timing.starts_with("queue;dur=") && timing.contains("exec;dur="),
        "{timing}"
    );
    let (small_ms, small_mib) = billed(&small);
    assert!(small_ms >= 1 && small_mib >= 1, "{small_ms} {small_mib}");

    let big = server.get("/r/alloc?mb=24").await;
    assert_eq!(big.status(), 200);
    let (_, big_mib) = billed(&big);
    assert!(
        (24..=64).contains(&big_mib),
        "peak memory billed: {big_mib} MiB"
    );
    assert!(big_mib > small_mib + 20, "{big_mib} vs {small_mib}");

    let slow = server.get("/r/sleep?ms=200").await;
    let (slow_ms, _) = billed(&slow);
    assert!(
        (200..1000).contains(&slow_ms),
        "billed {slow_ms} ms for a 200 ms sleep"
    );
}
