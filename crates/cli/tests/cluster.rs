//! Several nodes as one platform (issue 13): nodes started with the same
//! `--cluster` keep apps and components in NATS JetStream (the server on
//! 127.0.0.1:4222, each test under a cluster name of its own) and serve
//! whatever was deployed through any of them.

use std::time::{Duration, Instant};

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
        Server::start_with(&["--cluster", NATS, "--cluster-name", &self.name])
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
                js.delete_stream(&format!("KV_{name}_apps")).await;
                js.delete_stream(&format!("OBJ_{name}_components")).await;
            });
        })
        .join();
    }
}

/// The `x-who` header of `path` on `node` once it answers 200 with `who`,
/// and how long that took; fails after 10 s.
async fn serves(node: &Server, path: &str, who: &str) -> Duration {
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
            started.elapsed() < Duration::from_secs(10),
            "{path} on {} still answers {} {answered:?}, not {who}",
            node.gateway,
            response.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
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

    // A new version through the other node, then a rollback through the first.
    two.deploy(shop("v2").path());
    serves(&one, "/shop/echo", "v2").await;
    serves(&two, "/shop/echo", "v2").await;
    let out = one.cli(&["rollback", "shop"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serves(&two, "/shop/echo", "v1").await;
    serves(&one, "/shop/echo", "v1").await;

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
    let late = cluster.node();
    let (status, ready) = late.admin_get("/readyz").await;
    assert_eq!(status, 200, "{ready}");
    let response = late.get("/shop/echo").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-who"], "v1");

    // Deleted through one node, the app stops everywhere.
    let out = two.cli(&["delete", "shop"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for node in [&one, &two, &late] {
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
