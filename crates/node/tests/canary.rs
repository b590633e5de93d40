//! Canary releases in process: a version deployed as a canary takes its
//! share of requests beside the live one, is judged against it each step
//! and rolled back on a breach (a version failing 30 % of requests, with
//! no request to the stable version failing) or promoted in steps; a
//! split set by hand keeps sticky clients on their side; the split
//! survives a restart; bad splits are refused with nothing changed, and a
//! neighbour app answers throughout.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use stratus_node::Stratus;

use crate::common::{
    TOKEN, admin, admin_call, deploy_request, get, manifest, node, node_in, node_metrics, testbed,
};

/// `POST /v1/apps{query}` of a one-function testbed app.
async fn deploy(node: &Stratus, app: &str, extra: &str, query: &str) -> serde_json::Value {
    let path = format!("/v1/apps{query}");
    let request = deploy_request(
        &path,
        TOKEN,
        &manifest(app, &format!("/{app}"), extra),
        ("testbed.wasm", testbed()),
    );
    let (status, body) = admin(node, request).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// A request to `path` with `headers`: its status and the version that
/// answered (`x-stratus-version`; 0 when absent).
async fn call(node: &Stratus, path: &str, headers: &[(&str, &str)]) -> (StatusCode, u32) {
    let mut builder = Request::get(path).header(header::HOST, "localhost");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let response = node
        .gateway()
        .handle_request(builder.body(Full::new(Bytes::new())).unwrap())
        .await;
    let status = response.status();
    let version = response
        .headers()
        .get("x-stratus-version")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(0);
    let _ = response.into_body().collect().await;
    (status, version)
}

async fn traffic(node: &Stratus, app: &str) -> serde_json::Value {
    let path = format!("/v1/apps/{app}/traffic");
    let (status, body) = admin_call(node, TOKEN, Method::GET, &path, "", Bytes::new()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn set_traffic(
    node: &Stratus,
    token: &str,
    app: &str,
    body: serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    let path = format!("/v1/apps/{app}/traffic");
    admin_call(
        node,
        token,
        Method::PUT,
        &path,
        "application/json",
        body.to_string(),
    )
    .await
}

/// Waits until the node serves no canary: the store says a decision a
/// moment before the live set serves it.
async fn canary_gone(node: &Stratus) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while node_metrics(node)
        .await
        .contains("stratus_canary_share_percent")
    {
        assert!(Instant::now() < deadline, "the canary still serves");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn neighbour_answers(node: &Stratus) {
    let (status, body) = get(node, "/neighbour/x").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "testbed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_failing_30_percent_is_rolled_back_and_no_stable_request_fails() {
    let (node, _dir) = node().await;
    deploy(&node, "neighbour", "", "").await;
    deploy(&node, "shop", "", "").await;
    let v2 = deploy(
        &node,
        "shop",
        "env = { FAIL_PERCENT = \"30\" }",
        "?canary=30&steps=100&interval_secs=3600&min_requests=40",
    )
    .await;
    assert_eq!(
        (v2["version"].as_u64(), v2["canary_percent"].as_u64()),
        (Some(2), Some(30))
    );
    let metrics = node_metrics(&node).await;
    assert!(
        metrics.contains(
            "stratus_canary_share_percent{namespace=\"default\",app=\"shop\",version=\"2\"} 30"
        ),
        "{metrics}"
    );
    let (_, app) = admin_call(&node, TOKEN, Method::GET, "/v1/apps/shop", "", Bytes::new()).await;
    assert_eq!(app["live_version"], 1, "{app}");
    assert_eq!(
        app["canary"],
        serde_json::json!({"version": 2, "percent": 30})
    );

    // Requests until the node rolls it back by itself.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut stable, mut canary, mut canary_failed) = (0, 0, 0);
    loop {
        for _ in 0..20 {
            match call(&node, "/shop/x", &[]).await {
                (StatusCode::OK, 1) => stable += 1,
                (status, 1) => panic!("the stable version answered {status}"),
                (status, 2) => {
                    canary += 1;
                    if status != StatusCode::OK {
                        canary_failed += 1;
                    }
                }
                other => panic!("unexpected answer {other:?}"),
            }
        }
        if traffic(&node, "shop").await["canary"].is_null() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never rolled back: {canary_failed} of {canary} failed"
        );
    }
    assert!(
        canary >= 40 && canary_failed > 0,
        "{canary_failed} of {canary}"
    );
    assert!(stable > canary, "{stable} stable, {canary} canary at 30 %");

    let report = traffic(&node, "shop").await;
    assert_eq!(report["live_version"], 1, "{report}");
    let last = report["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["action"], "rolled_back", "{report}");
    assert_eq!(
        (&last["by"], &last["canary"], &last["stable"]),
        (&"node".into(), &2.into(), &1.into())
    );
    assert!(
        last["reason"].as_str().unwrap().starts_with("error rate"),
        "{last}"
    );

    assert!(
        !node_metrics(&node)
            .await
            .contains("stratus_canary_share_percent")
    );
    // Only the stable version answers now, and the decision is audited.
    for _ in 0..30 {
        assert_eq!(call(&node, "/shop/x", &[]).await, (StatusCode::OK, 1));
    }
    let (status, audit) =
        admin_call(&node, TOKEN, Method::GET, "/v1/audit", "", Bytes::new()).await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let entry = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "canary.rolled_back")
        .unwrap_or_else(|| panic!("no audit entry: {audit}"));
    assert_eq!(entry["target"], "shop v2", "{entry}");
    neighbour_answers(&node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_canary_steps_up_and_is_promoted_with_every_request_answered() {
    let (node, _dir) = node().await;
    deploy(&node, "shop", "", "").await;
    deploy(
        &node,
        "shop",
        "env = { WHO = \"v2\" }",
        "?canary=20&steps=50,100&interval_secs=1&min_requests=5",
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = [0; 3];
    loop {
        for _ in 0..10 {
            let (status, version) = call(&node, "/shop/x", &[]).await;
            assert_eq!(status, StatusCode::OK, "version {version}");
            seen[version as usize] += 1;
        }
        let report = traffic(&node, "shop").await;
        if report["live_version"] == 2 {
            assert!(report["canary"].is_null(), "{report}");
            let actions: Vec<_> = report["history"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        e["action"].as_str().unwrap().to_owned(),
                        e["percent"].as_u64().unwrap(),
                    )
                })
                .collect();
            let expected = [("started", 20), ("stepped", 50), ("promoted", 100)]
                .map(|(a, p)| (a.to_owned(), p));
            assert_eq!(actions, expected);
            break;
        }
        assert!(Instant::now() < deadline, "never promoted: {report}");
    }
    assert!(seen[1] > 0 && seen[2] > 0, "{seen:?}");
    canary_gone(&node).await;
    for _ in 0..20 {
        assert_eq!(call(&node, "/shop/x", &[]).await, (StatusCode::OK, 2));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_set_by_hand_keeps_sticky_clients_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let node = node_in(dir.path()).await;
    deploy(&node, "neighbour", "", "").await;
    deploy(&node, "shop", "", "").await;
    deploy(&node, "shop", "env = { WHO = \"v2\" }", "").await;
    deploy(&node, "shop", "env = { WHO = \"v3\" }", "").await;
    // v3 is live; send a quarter to v2, sticky by a header.
    let (status, body) = set_traffic(
        &node,
        TOKEN,
        "shop",
        serde_json::json!({"split": [{"version": 3, "percent": 75}, {"version": 2, "percent": 25}],
            "sticky_header": "X-User"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (&body["live_version"], &body["canary"]["version"]),
        (&3.into(), &2.into())
    );

    let mut on_canary = Vec::new();
    for user in 0..40 {
        let id = format!("user-{user}");
        let (status, first) = call(&node, "/shop/x", &[("x-user", &id)]).await;
        assert_eq!(status, StatusCode::OK);
        for _ in 0..3 {
            assert_eq!(
                call(&node, "/shop/x", &[("x-user", &id)]).await.1,
                first,
                "{id}"
            );
        }
        if first == 2 {
            on_canary.push(id);
        }
    }
    assert!(
        (3..=20).contains(&on_canary.len()),
        "{} of 40 users on the canary at 25 %",
        on_canary.len()
    );
    neighbour_answers(&node).await;

    // A restart serves the same split: the same users on the canary.
    drop(node);
    let node = node_in(dir.path()).await;
    for id in &on_canary {
        assert_eq!(
            call(&node, "/shop/x", &[("x-user", id)]).await,
            (StatusCode::OK, 2),
            "{id}"
        );
    }

    // One version at 100: it alone, live, and the history says so.
    let (status, body) = set_traffic(
        &node,
        TOKEN,
        "shop",
        serde_json::json!({"split": [{"version": 2, "percent": 100}]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (&body["live_version"], &body["canary"]),
        (&2.into(), &serde_json::Value::Null)
    );
    let last = body["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (&last["action"], &last["by"]),
        (&"promoted".into(), &"node token".into()),
        "{body}"
    );
    for _ in 0..20 {
        assert_eq!(call(&node, "/shop/x", &[]).await, (StatusCode::OK, 2));
    }
    neighbour_answers(&node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_splits_and_canaries_are_refused_with_nothing_changed() {
    let (node, _dir) = node().await;
    deploy(&node, "neighbour", "", "").await;
    // A canary needs a live version to be judged against.
    let path = "/v1/apps?canary=10";
    let request = deploy_request(
        path,
        TOKEN,
        &manifest("shop", "/shop", ""),
        ("testbed.wasm", testbed()),
    );
    let (status, body) = admin(&node, request).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &"invalid_traffic".into()),
        "{body}"
    );
    let (status, _) =
        admin_call(&node, TOKEN, Method::GET, "/v1/apps/shop", "", Bytes::new()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was stored");

    deploy(&node, "shop", "", "").await;
    deploy(&node, "shop", "env = { WHO = \"v2\" }", "").await;
    for (query, why) in [
        ("?canary=10&steps=5", "a step below the share"),
        ("?canary=10&steps=50,40", "steps going down"),
        ("?canary=10&interval_secs=0", "no interval"),
        (
            "?canary=10&sticky_header=a%20b",
            "a header name with a space",
        ),
        (
            "?canary=10&sticky_header=a&sticky_cookie=b",
            "two sticky keys",
        ),
        ("?canary=10&max_p99_ratio=0.5", "a ratio under 1"),
    ] {
        let request = deploy_request(
            &format!("/v1/apps{query}"),
            TOKEN,
            &manifest("shop", "/shop", ""),
            ("testbed.wasm", testbed()),
        );
        let (status, body) = admin(&node, request).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{why}: {body}");
    }
    for (split, expected, why) in [
        (
            serde_json::json!([{"version": 1, "percent": 60}, {"version": 2, "percent": 30}]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "not 100 in all",
        ),
        (
            serde_json::json!([{"version": 1, "percent": 50}, {"version": 1, "percent": 50}]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "one version twice",
        ),
        (
            serde_json::json!([{"version": 1, "percent": 100}, {"version": 2, "percent": 0}]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "a canary at 0",
        ),
        (
            serde_json::json!([{"version": 1, "percent": 40}, {"version": 2, "percent": 30}, {"version": 3, "percent": 30}]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "three versions",
        ),
        (
            serde_json::json!([{"version": 2, "percent": 90}, {"version": 9, "percent": 10}]),
            StatusCode::NOT_FOUND,
            "a version the app lacks",
        ),
        (
            serde_json::json!([{"version": 2, "percent": 300}]),
            StatusCode::BAD_REQUEST,
            "a share past a byte",
        ),
    ] {
        let (status, body) =
            set_traffic(&node, TOKEN, "shop", serde_json::json!({"split": split})).await;
        assert_eq!(status, expected, "{why}: {body}");
    }
    let (status, body) = set_traffic(
        &node,
        TOKEN,
        "nobody",
        serde_json::json!({"split": [{"version": 1, "percent": 100}]}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = set_traffic(
        &node,
        TOKEN,
        "shop",
        serde_json::json!({"split": [], "surprise": 1}),
    )
    .await;
    assert!(status.is_client_error(), "{status} {body}");

    // Nothing changed: v2 live alone, no canary, no history.
    let report = traffic(&node, "shop").await;
    assert_eq!(report["live_version"], 2, "{report}");
    assert!(
        report["canary"].is_null() && report["history"] == serde_json::json!([]),
        "{report}"
    );
    for _ in 0..10 {
        assert_eq!(call(&node, "/shop/x", &[]).await, (StatusCode::OK, 2));
    }

    // A viewer reads the split but may not set it; another namespace's
    // deployer does not find the app.
    let viewer = token(&node, None, "viewer").await;
    let (status, _) = set_traffic(
        &node,
        &viewer,
        "shop",
        serde_json::json!({"split": [{"version": 1, "percent": 100}]}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let other = token(&node, Some("team-b"), "deployer").await;
    let (status, body) = admin_call(
        &node,
        &other,
        Method::PUT,
        "/v1/namespaces/team-b/apps/shop/traffic",
        "application/json",
        serde_json::json!({"split": [{"version": 1, "percent": 100}]}).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(traffic(&node, "shop").await["live_version"], 2);
    neighbour_answers(&node).await;
}

/// A token of `namespace` (`None`: node-wide) with `role`.
async fn token(node: &Stratus, namespace: Option<&str>, role: &str) -> String {
    let (path, node_wide) = match namespace {
        Some(ns) => (format!("/v1/namespaces/{ns}/tokens"), false),
        None => ("/v1/tokens".to_owned(), true),
    };
    let body = serde_json::json!({"name": "canary", "role": role, "node_wide": node_wide});
    let (status, made) = admin_call(
        node,
        TOKEN,
        Method::POST,
        &path,
        "application/json",
        body.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    made["token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_delivered_by_the_stable_version_while_a_canary_runs() {
    let (node, _dir) = node().await;
    let consumer = "triggers = [{ queue = \"jobs\" }]";
    deploy(&node, "shop", consumer, "").await;
    deploy(
        &node,
        "shop",
        &format!("{consumer}\nenv = {{ WHO = \"v2\" }}"),
        "?canary=99",
    )
    .await;
    // The canary takes nearly every request...
    let mut answered = [0; 3];
    for _ in 0..20 {
        let (status, version) = call(&node, "/shop/x", &[]).await;
        assert_eq!(status, StatusCode::OK);
        answered[version as usize] += 1;
    }
    assert!(answered[2] >= 15, "{answered:?}");
    // ...and no event.
    let delivering = node.dispatcher().spawn();
    for n in 0..10 {
        let (status, body) = admin_call(
            &node,
            TOKEN,
            Method::POST,
            "/v1/apps/shop/queues/jobs/events",
            "application/json",
            format!("{{\"n\": {n}}}"),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let path = "/v1/functions/bed/invocations?trigger=event&limit=100";
        let (status, list) = admin_call(&node, TOKEN, Method::GET, path, "", Bytes::new()).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        let versions: Vec<u64> = list["invocations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["version"].as_u64().unwrap())
            .collect();
        if versions.len() == 10 {
            assert!(versions.iter().all(|v| *v == 1), "{versions:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of 10 events recorded",
            versions.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    delivering.abort();
}
