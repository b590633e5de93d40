//! Several nodes as one platform (issue 13): nodes started with the same
//! `--cluster` keep apps and components in NATS JetStream (the server on
//! 127.0.0.1:4222, each test under a cluster name of its own) and serve
//! whatever was deployed through any of them.

use std::time::{Duration, Instant};

use crate::common::nats::NatsServers;
use crate::common::*;

/// Nodes of one cluster, named for this test alone; its buckets are
/// removed when it is dropped.
struct Cluster {
    name: String,
}

impl Cluster {
    fn new() -> Cluster {
        Cluster {
            name: unique("c").replace('-', "_").to_lowercase(),
        }
    }

    fn node(&self) -> Server {
        self.node_with(&[])
    }

    fn node_with(&self, extra: &[&str]) -> Server {
        let mut args = vec!["--cluster", NATS, "--cluster-name", &self.name];
        args.extend_from_slice(extra);
        cluster_node(&args)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let name = self.name.clone();
        // The test's runtime may be gone: clean up from a runtime of our own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let js = JetStream::connect().await;
                for stream in [
                    "KV_{}_apps",
                    "KV_{}_nodes",
                    "KV_{}_ticks",
                    "KV_{}_secrets",
                    "KV_{}_event_status",
                    "KV_{}_leases",
                    "{}_events",
                    "OBJ_{}_components",
                    "{}_ledger",
                    "KV_{}_usage",
                ] {
                    js.remove_stream(&stream.replace("{}", &name)).await;
                }
            });
        })
        .join();
    }
}

/// The key every node of a test cluster seals secrets with (32 bytes).
const SECRETS_KEY: &str = "c3RyYXR1cy10ZXN0LWNsdXN0ZXItc2VjcmV0cy1rZXk=";

/// A node started with `args` (which name the cluster) and the shared key.
fn cluster_node(args: &[&str]) -> Server {
    Server::start_with_env(args, &[("STRATUS_SECRETS_KEY", SECRETS_KEY)])
}

/// How long `node` answers `path` with 200 and `who`, waiting at most
/// 10 s.
async fn serves(node: &Server, path: &str, who: &str) -> Duration {
    serves_within(node, path, who, Duration::from_secs(10)).await
}

/// How long until `node` answers `path` with 200 and `who`; fails after
/// `limit`.
async fn serves_within(node: &Server, path: &str, who: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let response = node.get(path).await;
        let answered = response
            .headers()
            .get("x-who")
            .map(|v| v.to_str().unwrap().to_owned());
        if response.status() == 200 && answered.as_deref() == Some(who) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{path} on {} still answers {} {answered:?}, not {who}",
            node.gateway,
            response.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `stratus nodes --format json` through `node` once it lists `n` nodes;
/// fails after 10 s.
async fn nodes(node: &Server, n: usize) -> Vec<serde_json::Value> {
    let started = Instant::now();
    loop {
        let out = node.cli(&["nodes", "--format", "json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let listed: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
        if listed.len() == n {
            return listed;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{} nodes listed, not {n}: {listed:?}",
            listed.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn shop(who: &str) -> AppDir {
    testbed_app(
        "shop",
        "api",
        &["/shop/..."],
        &format!("env = {{ WHO = \"{who}\" }}"),
    )
}

#[tokio::test]
async fn a_deploy_through_one_node_is_served_by_every_node() {
    // It bounds how long the other node takes.
    let _cores = timed().await;
    let cluster = Cluster::new();
    let (one, two) = (cluster.node(), cluster.node());

    one.deploy(shop("v1").path());
    serves(&one, "/shop/echo", "v1").await;
    let took = serves(&two, "/shop/echo", "v1").await;
    eprintln!("info: the other node served v1 after {took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");

    // A new version through the other node, which returns once both serve
    // it (both have said they are alive); then a rollback through the first.
    nodes(&two, 2).await;
    let v2 = shop("v2");
    let out = two.cli(&["deploy", v2.path().to_str().unwrap(), "--wait"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Version 2 serves on 2 nodes"),
        "{}",
        stdout(&out)
    );
    for node in [&one, &two] {
        let response = node.get("/shop/echo").await;
        assert_eq!(response.headers()["x-who"], "v2", "right after --wait");
    }
    let out = one.cli(&["rollback", "shop"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serves(&two, "/shop/echo", "v1").await;
    serves(&one, "/shop/echo", "v1").await;

    // A name that would be a wildcard in a subject names no app, and the
    // app beside it keeps serving.
    for hostile in ["a.%3E", "%2A", "shop.x"] {
        let (status, body) = two.admin_get(&format!("/v1/apps/{hostile}/rollout")).await;
        assert_eq!(status, 404, "{hostile}: {body}");
    }
    assert_eq!(failures(&[&one, &two], "/shop/echo", 10).await, 0);

    // Both see the same history.
    for node in [&one, &two] {
        let (status, versions) = node.admin_get("/v1/apps/shop/versions").await;
        assert_eq!(status, 200, "{versions}");
        let numbers: Vec<(u64, bool)> = versions
            .as_array()
            .unwrap()
            .iter()
            .map(|v| (v["version"].as_u64().unwrap(), v["live"].as_bool().unwrap()))
            .collect();
        assert_eq!(numbers, [(2, false), (1, true)], "{versions}");
    }

    // A node started late serves every app as soon as it says it is ready.
    let mut late = cluster.node();
    let (status, ready) = late.admin_get("/readyz").await;
    assert_eq!(status, 200, "{ready}");
    let response = late.get("/shop/echo").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-who"], "v1");

    // Every node lists every node; one that stops leaves the list.
    let listed = nodes(&one, 3).await;
    let gateways: Vec<&str> = listed
        .iter()
        .map(|n| n["gateway"].as_str().unwrap())
        .collect();
    for node in [&one, &two, &late] {
        let address = node.gateway.trim_start_matches("http://");
        assert!(gateways.contains(&address), "{address} not in {gateways:?}");
    }
    assert!(
        listed.iter().all(|n| n["capacity"].as_u64() > Some(0)),
        "{listed:?}"
    );
    // Each heartbeat (every 5 s) carries the node's load as it is then.
    let started = Instant::now();
    while !nodes(&one, 3).await.iter().all(|n| n["live_apps"] == 1) {
        assert!(
            started.elapsed() < Duration::from_secs(12),
            "{:?}",
            nodes(&one, 3).await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(late.terminate().success());
    nodes(&two, 2).await;

    // Deleted through one node, the app stops everywhere.
    let out = two.cli(&["delete", "shop"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for node in [&one, &two] {
        let started = Instant::now();
        while node.get("/shop/echo").await.status() != 404 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{} still serves shop",
                node.gateway
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Requests the node answered, summed over its functions.
async fn answered(node: &Server) -> u64 {
    node.metrics_text()
        .await
        .lines()
        .filter(|l| l.starts_with("stratus_function_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn two_nodes_with_reuse_port_share_one_gateway_port_and_both_serve_it() {
    let _cores = timed().await;
    let cluster = Cluster::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let shared = ["--listen", listen.as_str(), "--reuse-port"];
    let one = cluster.node_with(&shared);
    let two = cluster.node_with(&shared);
    assert_eq!(one.gateway, two.gateway, "both bound the one port");
    // Without the flag the port is taken, named in the error.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stratus"))
        .args([
            "server",
            "--listen",
            listen.as_str(),
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .args(["--admin-token", TOKEN, "--data-dir"])
        .arg(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains(&listen), "{}", stderr(&out));

    one.deploy(shop("v1").path());
    nodes(&one, 2).await;
    serves(&one, "/shop/echo", "v1").await;
    // The kernel spreads new connections over both processes: each
    // request on a connection of its own, until both nodes answered some.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for _ in 0..16 {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap();
            let response = client.get(one.url("/shop/echo")).send().await.unwrap();
            // Each node serves the app once it has followed the deploy.
            assert!([200, 404].contains(&response.status().as_u16()));
        }
        let (a, b) = (answered(&one).await, answered(&two).await);
        if a > 0 && b > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only one node answered: {a} and {b}"
        );
    }
}

#[tokio::test]
async fn of_deploys_racing_through_two_nodes_each_is_acknowledged_or_refused_409() {
    let cluster = Cluster::new();
    let (one, two) = (cluster.node(), cluster.node());
    one.deploy(shop("base").path());
    let component = std::fs::read(test_guest("testbed")).unwrap();
    let path = test_guest("testbed").display().to_string();
    let manifest =
        |who: &str| std::fs::read_to_string(shop(who).path().join("stratus.toml")).unwrap();
    let mut acknowledged = 1;
    let mut refused = 0;
    for round in 0..5 {
        let (a, b) = (
            manifest(&format!("one-{round}")),
            manifest(&format!("two-{round}")),
        );
        let (first, second) = tokio::join!(
            one.post_deploy(&a, &path, component.clone()),
            two.post_deploy(&b, &path, component.clone())
        );
        for (status, answer) in [first, second] {
            match status {
                201 => acknowledged += 1,
                409 => {
                    assert_eq!(answer["error"]["code"], "concurrent_change", "{answer}");
                    refused += 1;
                }
                _ => panic!("{status} {answer}"),
            }
        }
    }
    eprintln!("info: {acknowledged} deploys acknowledged, {refused} refused");
    // Every acknowledged deploy is a version, and both nodes agree which is live.
    let (_, app) = one.admin_get("/v1/apps/shop").await;
    assert_eq!(app["versions"], acknowledged, "{app}");
    let live = app["live_version"].as_u64().unwrap();
    let (_, versions) = two.admin_get("/v1/apps/shop/versions").await;
    let live_two = versions
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["live"] == true)
        .unwrap();
    assert_eq!(live_two["version"], live);
}

/// Deploys `manifest` through `node`'s admin API: the status, the
/// `Retry-After` header and the JSON answer.
async fn deploy_raw(node: &Server, manifest: &str) -> (u16, Option<String>, serde_json::Value) {
    let component = std::fs::read(test_guest("testbed")).unwrap();
    let form = reqwest::multipart::Form::new()
        .text("manifest", manifest.to_owned())
        .part(
            "component",
            reqwest::multipart::Part::bytes(component)
                .file_name(test_guest("testbed").display().to_string()),
        );
    let response = node
        .http
        .post(node.admin_url("/v1/apps"))
        .bearer_auth(TOKEN)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry_after, json(response).await)
}

fn manifest_of(who: &str) -> String {
    std::fs::read_to_string(shop(who).path().join("stratus.toml")).unwrap()
}

/// Asks `path` of each node `rounds` times; how many answers were not 200.
async fn failures(nodes: &[&Server], path: &str, rounds: usize) -> usize {
    let mut failed = 0;
    for _ in 0..rounds {
        for node in nodes {
            let response = node.http.get(node.url(path)).send().await;
            if !response.is_ok_and(|r| r.status() == 200) {
                failed += 1;
            }
        }
    }
    failed
}

/// Deploys until it is acknowledged, as a client told `Retry-After`
/// would; fails after 30 s.
async fn deploy_when_possible(node: &Server, manifest: &str) {
    let started = Instant::now();
    loop {
        let (status, _, answer) = deploy_raw(node, manifest).await;
        match status {
            201 => return,
            503 => assert!(
                started.elapsed() < Duration::from_secs(30),
                "still refused after 30 s: {answer}"
            ),
            _ => panic!("{status} {answer}"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_nats_is_down_apps_serve_changes_get_503_and_nothing_acknowledged_is_lost() {
    let mut nats = NatsServers::start(1).await;
    let urls = nats.urls();
    let args = ["--cluster", urls.as_str(), "--cluster-name", "outage"];
    let (one, two) = (cluster_node(&args), cluster_node(&args));
    one.deploy(shop("v1").path());
    serves(&two, "/shop/echo", "v1").await;
    // Async invocations acknowledged just before the outage, some of them
    // being delivered when it starts.
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let node = if i % 2 == 0 { &one } else { &two };
        let accepted = submit(node, "api", "/sleep?ms=300", "").await;
        acknowledged.push(accepted["id"].as_str().unwrap().to_owned());
    }

    nats.kill(0);
    let killed = Instant::now();
    assert_eq!(failures(&[&one, &two], "/shop/echo", 200).await, 0);
    // New async work is refused, not acknowledged and lost.
    let refused = one
        .http
        .post(one.admin_url("/v1/functions/api/invocations?mode=async&path=/echo"))
        .bearer_auth(TOKEN)
        .body("during the outage")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "5");
    let started = Instant::now();
    let (status, retry_after, answer) = deploy_raw(&two, &manifest_of("v2")).await;
    eprintln!(
        "info: a deploy during the outage was answered in {:?}",
        started.elapsed()
    );
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"]["code"], "store_unavailable", "{answer}");
    assert_eq!(retry_after.as_deref(), Some("5"));
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("unavailable"), "{message}");
    // The cluster's ledger cannot be read either; what the nodes record
    // meanwhile is held.
    let (status, usage) = one.admin_get("/v1/usage?since=10m").await;
    assert_eq!(status, 503, "{usage}");
    assert_eq!(usage["error"]["code"], "ledger_unavailable", "{usage}");
    // Nodes stay ready: an outage of NATS must not take every pod out of
    // its Service.
    for node in [&one, &two] {
        let (status, ready) = node.admin_get("/readyz").await;
        assert_eq!(status, 200, "{ready}");
    }
    // All of NATS away for 10 s at least (issue 13's test 5): HTTP still
    // fails nothing.
    while killed.elapsed() < Duration::from_secs(10) {
        assert_eq!(failures(&[&one, &two], "/shop/echo", 25).await, 0);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    nats.restart(0);
    deploy_when_possible(&two, &manifest_of("v2")).await;
    // Their watches start again once NATS answers.
    for node in [&one, &two] {
        serves_within(node, "/shop/echo", "v2", Duration::from_secs(45)).await;
    }
    let (_, app) = one.admin_get("/v1/apps/shop").await;
    assert_eq!(app["versions"], 2, "the refused deploy left nothing: {app}");
    // Every invocation acknowledged before the outage completes after it
    // (one being delivered when NATS went away waits out its lease).
    let started = Instant::now();
    for id in &acknowledged {
        loop {
            let (status, event) = two.admin_get(&format!("/v1/events/{id}")).await;
            if status == 200 && event["state"] == "succeeded" {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{id} never completed: {status} {event}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // And every request served while NATS was away is in the usage: the
    // 250 above and the 20 async invocations, at least.
    let usage = one.usage_reaching("?app=shop&since=10m", 270).await;
    let counted = usage["total"]["requests"].as_u64().unwrap();
    assert!(counted >= 270, "{usage}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_one_nats_server_of_three_fails_no_request_and_deploys_go_on() {
    let mut nats = NatsServers::start(3).await;
    // Only the first server is named: the nodes learn the others from it,
    // and must move to them when it dies.
    let first = nats.urls().split(',').next().unwrap().to_owned();
    let args = [
        "--cluster",
        first.as_str(),
        "--cluster-name",
        "three",
        "--cluster-replicas",
        "3",
    ];
    let (one, two) = (cluster_node(&args), cluster_node(&args));
    one.deploy(shop("v1").path());
    serves(&two, "/shop/echo", "v1").await;

    nats.kill(0);
    assert_eq!(failures(&[&one, &two], "/shop/echo", 200).await, 0);
    let started = Instant::now();
    deploy_when_possible(&two, &manifest_of("v2")).await;
    eprintln!(
        "info: deploying again after the loss took {:?}",
        started.elapsed()
    );
    // A node whose watch was on the killed server notices by its silence
    // and starts again from the last write it saw; on a busy machine the
    // new consumer may wait for the stream's new leader.
    let took = serves_within(&one, "/shop/echo", "v2", Duration::from_secs(45)).await;
    eprintln!("info: the other node served it {took:?} later");
    assert_eq!(failures(&[&one, &two], "/shop/echo", 50).await, 0);
}

#[tokio::test]
async fn a_node_on_its_own_lists_itself_with_its_load() {
    let node = Server::start();
    let v1 = shop("v1");
    let out = node.cli(&["deploy", v1.path().to_str().unwrap(), "--wait"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Version 1 serves on 1 node ("),
        "{}",
        stdout(&out)
    );
    let listed = nodes(&node, 1).await;
    assert_eq!(
        listed[0]["gateway"].as_str(),
        Some(node.gateway.trim_start_matches("http://"))
    );
    assert_eq!(listed[0]["live_apps"], 1, "{listed:?}");
    let (status, rollout) = node.admin_get("/v1/apps/nope/rollout").await;
    assert_eq!(
        (status, &rollout["error"]["code"]),
        (404, &serde_json::json!("app_not_found"))
    );
    let out = node.cli(&["nodes"]);
    let table = stdout(&out);
    assert!(table.starts_with("NODE"), "{table}");
    assert!(
        table.contains(&format!("0/{}", listed[0]["capacity"])),
        "{table}"
    );
}

/// The second of each succeeded cron event of `function` on `node`.
async fn ticks_run(node: &Server, function: &str) -> Vec<u64> {
    function_events(node, function)
        .await
        .iter()
        .filter(|e| e["id"].as_str().unwrap().starts_with("cron-") && e["state"] == "succeeded")
        .map(|e| {
            e["id"]
                .as_str()
                .unwrap()
                .rsplit('-')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cron_tick_runs_once_across_three_nodes_even_when_one_is_killed() {
    let cluster = Cluster::new();
    let (one, two, mut three) = (cluster.node(), cluster.node(), cluster.node());
    let app = testbed_app(
        "clock",
        "tick",
        &[],
        "triggers = [{ cron = \"* * * * * *\" }]",
    );
    one.deploy(app.path());
    let started = Instant::now();
    let mut killed = false;
    let mut all: Vec<u64> = Vec::new();
    // Every second for 30 s, the third node killed halfway (issue 13's
    // test 4).
    while started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if !killed && started.elapsed() > Duration::from_secs(15) {
            three.kill_9();
            killed = true;
        }
    }
    // The queue is shared: any node lists every tick's event.
    all.extend(ticks_run(&two, "tick").await);
    all.sort_unstable();
    let distinct = {
        let mut d = all.clone();
        d.dedup();
        d
    };
    eprintln!("info: ticks run: {all:?}");
    assert_eq!(all, distinct, "a tick ran twice");
    let span = distinct.last().unwrap() - distinct.first().unwrap() + 1;
    // A tick the killed node had claimed but not yet stored is the only
    // one that may be missing.
    assert!(
        distinct.len() as u64 + 1 >= span && distinct.len() >= 20,
        "{} ticks run over {span} seconds: {distinct:?}",
        distinct.len()
    );
}

#[tokio::test]
async fn a_secret_set_through_one_node_reaches_the_function_on_another() {
    const SECRET: &str = "sk_live_cluster-wide";
    let cluster = Cluster::new();
    let (one, two) = (cluster.node(), cluster.node());
    let manifest = format!(
        "[app]\nname = \"vault\"\n\n[[function]]\nname = \"reader\"\ncomponent = \"{}\"\n\
         routes = [\"/vault/...\"]\nsecrets = [\"api-token\"]\nkeyvalue = [\"default\"]\n",
        test_guest("capabilities").display()
    );
    let dir = AppDir::new(&manifest);
    one.deploy(dir.path());
    let out = set_secret(&one, "vault", "api-token", SECRET);
    assert!(out.status.success(), "{}", stderr(&out));

    let started = Instant::now();
    loop {
        let (status, body) = two.send("GET", "/vault/config?key=api-token", b"").await;
        if (status, body.as_str()) == (200, SECRET) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the other node answers {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let out = two.cli(&["secrets", "ls", "vault"]);
    assert!(stdout(&out).contains("api-token"), "{}", stdout(&out));
}

#[tokio::test]
async fn a_cluster_node_without_the_shared_secrets_key_refuses_to_start() {
    let cluster = Cluster::new();
    let error = server_refuses(
        &[
            "--admin-token",
            TOKEN,
            "--cluster",
            NATS,
            "--cluster-name",
            &cluster.name,
        ],
        &[("STRATUS_SECRETS_KEY", None)],
    );
    assert!(
        error
            .contains("STRATUS_SECRETS_KEY is not set: the nodes of a cluster share their secrets"),
        "{error}"
    );
    assert_eq!(error.matches("is not set").count(), 1, "said once: {error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_dies_once_and_is_listed_and_redriven_from_another_node() {
    let cluster = Cluster::new();
    let flags = ["--retry-base", "10ms", "--max-attempts", "2"];
    let (one, two) = (cluster.node_with(&flags), cluster.node_with(&flags));
    one.deploy(testbed_app("dlq", "dlqfn", &[], "").path());
    let accepted = submit(&one, "dlqfn", "/panic", "").await;
    let id = accepted["id"].as_str().unwrap().to_string();
    // Seen from the other node: retried, then dead with its attempts.
    let dead = settled(&two, &id).await;
    assert_eq!(
        (dead["state"].as_str(), dead["attempts"].as_u64()),
        (Some("dead"), Some(2)),
        "{dead}"
    );
    let listed = dead_letter(&two, "dlqfn", &id).await;
    assert!(
        listed["last_error"]
            .as_str()
            .unwrap()
            .contains("function_trapped"),
        "{listed}"
    );

    let out = two.cli(&["dlq", "redrive", "dlqfn", "--id", &id]);
    assert_eq!(stdout(&out).trim(), "redriven: 1", "{}", stderr(&out));
    // Delivered again (and dead again: the function still panics), seen
    // from the first node.
    let started = Instant::now();
    loop {
        let (_, event) = one.admin_get(&format!("/v1/events/{id}")).await;
        if event["state"] == "dead"
            && event["attempts"] == 2
            && event["updated_at"] != dead["updated_at"]
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not redriven: {event}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Issue 13's test 2: 10,000 async invocations submitted round-robin, the
/// third node killed with `kill -9` halfway. Every acknowledged id
/// completes; the only invocations run twice are those the killed node had
/// in flight (the ledger, shared by the nodes, counts the runs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_invocations_through_any_node_all_complete_when_one_node_is_killed() {
    const EVENTS: usize = 10_000;
    /// Submissions in flight at once.
    const AT_ONCE: usize = 32;
    /// What one node's dispatcher runs at once (`DispatchConfig`).
    const NODE_IN_FLIGHT: u64 = 256;
    let cluster = Cluster::new();
    let (one, two) = (cluster.node(), cluster.node());
    let mut three = cluster.node();
    one.deploy(testbed_app("work", "job", &[], "").path());
    // Every node that takes submissions has followed the deploy.
    serves_function(&two, "job").await;
    serves_function(&three, "job").await;
    let started = Instant::now();
    let mut ids = Vec::with_capacity(EVENTS);
    let mut next = 0;
    while next < EVENTS {
        if next == EVENTS / 2 {
            three.kill_9();
        }
        // The third node takes its share until it is killed.
        let nodes: Vec<&Server> = if next < EVENTS / 2 {
            vec![&one, &two, &three]
        } else {
            vec![&one, &two]
        };
        let end = (next + AT_ONCE).min(if next < EVENTS / 2 {
            EVENTS / 2
        } else {
            EVENTS
        });
        let submits =
            (next..end).map(|i| submit(nodes[i % nodes.len()], "job", "/sleep?ms=20", ""));
        for accepted in futures_util::future::join_all(submits).await {
            ids.push(accepted["id"].as_str().unwrap().to_string());
        }
        next = end;
    }
    let submitted = started.elapsed();
    // Every acknowledged invocation completes, whichever node took it and
    // whichever node had leased it when the third was killed.
    let deadline = Instant::now() + Duration::from_secs(240);
    for chunk in ids.chunks(64) {
        let mut waiting: Vec<&String> = chunk.iter().collect();
        while !waiting.is_empty() {
            let paths: Vec<String> = waiting
                .iter()
                .map(|id| format!("/v1/events/{id}"))
                .collect();
            let states =
                futures_util::future::join_all(paths.iter().map(|p| two.admin_get(p))).await;
            let mut still = Vec::new();
            for (id, (status, event)) in waiting.iter().zip(states) {
                assert_eq!(status, 200, "{event}");
                match event["state"].as_str() {
                    Some("succeeded") => {}
                    Some("dead") => panic!("{id} died: {event}"),
                    _ => still.push(*id),
                }
            }
            waiting = still;
            if !waiting.is_empty() {
                assert!(Instant::now() < deadline, "never completed: {waiting:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    let completed = started.elapsed();
    // Runs counted by the ledger: each event once, plus those the killed
    // node ran and had not settled (run again elsewhere), less those it
    // ran in its last moment and had not written yet.
    let low = EVENTS as u64 - NODE_IN_FLIGHT;
    let mut runs = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let usage = two.usage_reaching("?app=work&since=30m", low).await;
        let now = usage["total"]["requests"].as_u64().unwrap();
        if now == runs && now >= low || Instant::now() > deadline {
            break;
        }
        runs = now;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "info: {EVENTS} async invocations acknowledged in {submitted:?}, all succeeded after \
         {completed:?}; {runs} runs recorded"
    );
    assert!(
        (low..=EVENTS as u64 + NODE_IN_FLIGHT).contains(&runs),
        "{runs} runs of {EVENTS} events"
    );
}

/// Waits until `node` lists `function` as live.
async fn serves_function(node: &Server, function: &str) {
    let started = Instant::now();
    loop {
        let (_, functions) = node.admin_get("/v1/functions").await;
        if functions
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["name"] == function))
        {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{functions}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Hostile state in the shared bucket: an app record that is not one (a
/// hand edit, another release) does not keep a node from starting or from
/// serving the other apps, and listings leave it out.
#[tokio::test]
async fn a_damaged_app_record_in_the_bucket_leaves_the_other_apps_serving() {
    let cluster = Cluster::new();
    let one = cluster.node();
    one.deploy(shop("v1").path());
    let js = JetStream::connect().await;
    js.publish(
        format!("$KV.{}_apps.apps.broken", cluster.name),
        b"\x00{ not an app".as_slice(),
    )
    .await;
    // The running node keeps serving its neighbour of the damaged app.
    assert_eq!(failures(&[&one], "/shop/echo", 50).await, 0);
    // A node started now replays the bucket, damaged record included, and
    // is ready serving every app it can read.
    let late = cluster.node();
    let (status, ready) = late.admin_get("/readyz").await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(late.get("/shop/echo").await.status(), 200);
    let (status, apps) = late.admin_get("/v1/apps").await;
    assert_eq!(status, 200, "{apps}");
    let names: Vec<&str> = apps
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["shop"]);
}

/// Serves `path` on `node` and answers the invocation's id.
async fn invoked(node: &Server, path: &str) -> String {
    let response = node.get(path).await;
    assert_eq!(response.status(), 200, "{path}");
    let id = response.headers()["x-stratus-invocation-id"]
        .to_str()
        .unwrap()
        .to_owned();
    response.bytes().await.unwrap();
    id
}

/// The ledger is the cluster's: what ran on one node is followed live
/// (`stratus logs -f`), counted, listed and looked up through another, and
/// outlives the node that ran it. Hostile names and ids get a clear answer
/// while the neighbour app keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_logs_and_invocations_cover_every_node() {
    let cluster = Cluster::new();
    let (mut one, two) = (cluster.node(), cluster.node());
    one.deploy(testbed_app("shop", "api", &["/shop/..."], "").path());
    one.deploy(testbed_app("other", "neighbour", &["/other/..."], "").path());
    serves_function(&two, "api").await;
    serves_function(&two, "neighbour").await;

    // A follower on the second node sees lines the first node writes.
    let follower = LogFollower::start(&two, "api");
    // It may not be following before the first requests.
    let mut seen = None;
    for attempt in 0..50 {
        invoked(&one, &format!("/shop/print?text=from-one-{attempt}")).await;
        if let Ok(line) = follower.lines.recv_timeout(Duration::from_millis(300)) {
            seen = Some(line);
            break;
        }
    }
    drop(follower);
    let line = seen.expect("logs -f on node two printed nothing node one wrote");
    assert!(line.contains("from-one-"), "{line}");

    let mut on_one = Vec::new();
    let mut on_two = Vec::new();
    for i in 0..10 {
        on_one.push(invoked(&one, &format!("/shop/print?text=one-{i}")).await);
        on_two.push(invoked(&two, &format!("/shop/print?text=two-{i}")).await);
    }
    let usage = two.usage_reaching("?app=shop&since=10m", 21).await;
    let counted = usage["total"]["requests"].as_u64().unwrap();
    assert!(counted >= 21, "{usage}");
    assert_eq!(usage["granularity"], "invocation", "{usage}");
    let (status, logs) = two
        .admin_get("/v1/functions/api/logs?since=10m&limit=1000")
        .await;
    assert_eq!(status, 200, "{logs}");
    let texts: Vec<&str> = logs["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    for i in 0..10 {
        assert!(texts.contains(&format!("one-{i}").as_str()), "{texts:?}");
        assert!(texts.contains(&format!("two-{i}").as_str()), "{texts:?}");
    }
    let detail = two.invocation(&on_one[3]).await;
    assert_eq!(detail["function"], "api", "{detail}");
    assert_eq!(detail["logs"][0]["text"], "one-3", "{detail}");

    // What the first node recorded outlives it.
    one.kill_9();
    let (_, usage) = two.admin_get("/v1/usage?app=shop").await;
    assert!(
        usage["total"]["requests"].as_u64().unwrap() >= counted,
        "{usage}"
    );
    let detail = two.invocation(&on_one[9]).await;
    assert_eq!(detail["logs"][0]["text"], "one-9", "{detail}");

    // Names and ids that cannot be subjects.
    for id in ["a.%3E", "*", "..", &"f".repeat(32)] {
        let (status, answer) = two.admin_get(&format!("/v1/invocations/{id}")).await;
        assert_eq!(status, 404, "{id}: {answer}");
    }
    // Refused by the id's grammar before it comes near a subject.
    let (status, answer) = two
        .admin_get("/v1/functions/api/logs?invocation=a.%3E")
        .await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = two.admin_get("/v1/usage?app=a.%3E&since=1h").await;
    assert_eq!(status, 400, "{answer}");
    let neighbour = two.get("/other/echo").await;
    assert_eq!(neighbour.status(), 200);
}

/// A token made through one node opens every node, in its namespace only,
/// and revoked through another it opens none at once: every check reads
/// the token from the stream's leader.
#[tokio::test]
async fn a_token_made_through_one_node_works_on_every_node_until_revoked() {
    let cluster = Cluster::new();
    let (one, two) = (cluster.node(), cluster.node());
    let out = one.cli(&[
        "tokens", "create", "-n", "team-a", "--role", "viewer", "--name", "grafana",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out).trim().to_owned();
    let as_token = |node: &Server, path: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_stratus"))
            .args(["apps", "--format", "json", "-n", path])
            .env("STRATUS_SERVER", node.admin_url(""))
            .env("STRATUS_TOKEN", &token)
            .output()
            .unwrap()
    };
    for node in [&one, &two] {
        let out = as_token(node, "team-a");
        assert!(out.status.success(), "{}", stderr(&out));
        let out = as_token(node, "team-b");
        assert!(!out.status.success(), "another namespace");
        assert!(
            stderr(&out).contains("there is no namespace \"team-b\" this token may see"),
            "{}",
            stderr(&out)
        );
    }
    let out = two.cli(&["tokens", "ls", "-n", "team-a", "--format", "json"]);
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(listed[0]["name"], "grafana", "{listed}");
    let out = two.cli(&["tokens", "revoke", &id, "-n", "team-a"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for node in [&one, &two] {
        let out = as_token(node, "team-a");
        assert!(!out.status.success(), "revoked, yet it opens a node");
        assert!(
            stderr(&out).contains("rejected the admin token"),
            "{}",
            stderr(&out)
        );
    }
}

/// How long until every one of 20 requests to `path` on `node` is
/// answered 200 by `version`; or, with `some`, until one of them is.
async fn answered_by(node: &Server, path: &str, version: &str, some: bool) -> Duration {
    let started = Instant::now();
    loop {
        let mut hits = 0;
        for user in 0..20 {
            let response = node
                .http
                .get(format!("{}{path}", node.gateway))
                .header("x-user", format!("user-{user}"))
                .send()
                .await
                .unwrap();
            let answered = response
                .headers()
                .get("x-stratus-version")
                .is_some_and(|v| v == version);
            if response.status() == 200 && answered {
                hits += 1;
            }
        }
        if (some && hits > 0) || hits == 20 {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{path} on {} is answered by v{version} {hits} times in 20",
            node.gateway
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_canary_started_through_one_node_splits_traffic_on_every_node() {
    let cluster = Cluster::new();
    let (one, two) = (cluster.node(), cluster.node());
    one.deploy(shop("v1").path());
    answered_by(&two, "/shop/x", "1", false).await;
    let out = one.cli(&[
        "deploy",
        shop("v2").path().to_str().unwrap(),
        "--canary",
        "50",
        "--sticky-header",
        "x-user",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The other node serves the split too (the same users on each side).
    answered_by(&two, "/shop/x", "2", true).await;
    let shown = stdout(&two.cli(&["traffic", "shop"]));
    assert!(shown.contains("canary v2 at 50%"), "{shown}");
    // Promoted through the other node: the first serves v2 alone.
    let out = two.cli(&["traffic", "shop", "v2=100"]);
    assert!(out.status.success(), "{}", stderr(&out));
    answered_by(&one, "/shop/x", "2", false).await;
}
