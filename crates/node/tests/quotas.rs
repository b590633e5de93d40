//! Namespaces' quotas and budgets, in process: set only by the node's
//! operators; deploys past a count or memory quota refused naming it; the
//! request rate, concurrency and money budget enforced at run time with
//! 429s; and a neighbour namespace unaffected throughout.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::common::{TOKEN, admin_call, manifest, node, testbed};
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use stratus_control::{ControlError, Upload};
use stratus_manifest::Namespace;
use stratus_node::Stratus;

async fn call(
    node: &Stratus,
    token: &str,
    method: Method,
    path: &str,
    body: &str,
) -> (StatusCode, serde_json::Value) {
    admin_call(
        node,
        token,
        method,
        path,
        "application/json",
        body.to_owned(),
    )
    .await
}

/// A GET through the gateway: status, `Retry-After` and body.
async fn get(node: &Stratus, path: &str) -> (StatusCode, Option<String>, String) {
    let request = Request::get(path).body(Full::new(Bytes::new())).unwrap();
    let response = node.gateway().handle_request(request).await;
    let status = response.status();
    let retry = response
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, retry, String::from_utf8_lossy(&body).into_owned())
}

fn upload(namespace: &str, app: &str, route: &str, extra: &str) -> Upload {
    Upload {
        namespace: Namespace::new(namespace).unwrap(),
        manifest: manifest(app, route, extra),
        components: BTreeMap::from([("testbed.wasm".to_owned(), testbed())]),
    }
}

/// Deploys a testbed app of one function, asserting the deploy succeeded.
async fn deploy(node: &Stratus, namespace: &str, app: &str, route: &str) {
    node.control()
        .deploy(upload(namespace, app, route, ""))
        .await
        .unwrap();
}

async fn set_quotas(node: &Stratus, namespace: &str, quotas: serde_json::Value) {
    let path = format!("/v1/namespaces/{namespace}/quotas");
    let (status, answer) = call(node, TOKEN, Method::PUT, &path, &quotas.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploys_past_a_quota_are_refused_naming_it() {
    let (node, _dir) = node().await;
    // A namespace's own admin cannot raise its quotas.
    let body = serde_json::json!({"name": "a", "role": "admin"}).to_string();
    let (_, made) = call(
        &node,
        TOKEN,
        Method::POST,
        "/v1/namespaces/team-a/tokens",
        &body,
    )
    .await;
    let admin = made["token"].as_str().unwrap();
    let (status, _) = call(
        &node,
        admin,
        Method::PUT,
        "/v1/namespaces/team-a/quotas",
        "{}",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for (bad, why) in [
        (r#"{"max_apps": 0}"#, "max_apps"),
        (r#"{"max_app": 1}"#, "max_app"),
        (
            r#"{"budget": {"amount": -1, "unit": "money", "period": "day", "on_exhausted": "reject"}}"#,
            "amount",
        ),
    ] {
        let (status, answer) = call(
            &node,
            TOKEN,
            Method::PUT,
            "/v1/namespaces/team-a/quotas",
            bad,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {answer}");
        assert!(
            answer["error"]["message"].as_str().unwrap().contains(why),
            "{answer}"
        );
    }
    set_quotas(
        &node,
        "team-a",
        serde_json::json!({"max_apps": 1, "max_functions": 1, "max_memory": 128 << 20}),
    )
    .await;

    let control = node.control();
    control
        .deploy(upload("team-a", "one", "/one", ""))
        .await
        .unwrap();
    // The same app again is no new app.
    control
        .deploy(upload("team-a", "one", "/one", ""))
        .await
        .unwrap();
    let refused = control
        .deploy(upload("team-a", "two", "/two", ""))
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, ControlError::Quota { quota, .. } if quota == "max_apps"),
        "{refused}"
    );
    assert!(refused.to_string().contains("max_apps"), "{refused}");
    let refused = control
        .deploy(upload("team-a", "one", "/one", "memory = \"256MiB\""))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("max_memory"), "{refused}");
    let (status, view) = call(
        &node,
        admin,
        Method::GET,
        "/v1/namespaces/team-a/quotas",
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (view["apps"].as_u64(), view["functions"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(view["quotas"]["max_apps"], 1);
    // Another namespace is not held to team-a's quotas.
    control
        .deploy(upload("team-b", "two", "/b-two", ""))
        .await
        .unwrap();
    control
        .deploy(upload("team-b", "three", "/b-three", "memory = \"256MiB\""))
        .await
        .unwrap();
    assert_eq!(get(&node, "/one/echo").await.0, StatusCode::OK);
    assert_eq!(get(&node, "/b-three/echo").await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespaces_request_rate_is_held_at_the_gateway() {
    let (node, _dir) = node().await;
    deploy(&node, "team-a", "shop", "/a").await;
    deploy(&node, "team-b", "shop", "/b").await;
    set_quotas(
        &node,
        "team-a",
        serde_json::json!({"requests_per_second": 3}),
    )
    .await;
    let mut answers = Vec::new();
    let started = Instant::now();
    for _ in 0..10 {
        answers.push(get(&node, "/a/echo").await);
    }
    // The bucket holds 3 and refills at 3/s: however slow the requests
    // were (a loaded CI machine), no more than that passed.
    let refilled = (started.elapsed().as_secs_f64() * 3.0).floor() as usize;
    let ok = answers
        .iter()
        .filter(|(s, _, _)| *s == StatusCode::OK)
        .count();
    assert!(
        (3..=3 + refilled).contains(&ok),
        "{ok} of 10 passed a rate of 3/s in {:?}",
        started.elapsed()
    );
    let (status, retry, body) = answers
        .iter()
        .find(|(s, _, _)| *s != StatusCode::OK)
        .cloned()
        .expect("some request was refused");
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(retry.as_deref(), Some("1"));
    assert!(
        body.contains("rate_limited") && body.contains("requests_per_second"),
        "{body}"
    );
    // The neighbour is not limited.
    for _ in 0..10 {
        assert_eq!(get(&node, "/b/echo").await.0, StatusCode::OK);
    }
    // The bucket refills.
    let deadline = Instant::now() + Duration::from_secs(5);
    while get(&node, "/a/echo").await.0 != StatusCode::OK {
        assert!(Instant::now() < deadline, "never refilled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespaces_concurrency_is_capped_over_its_functions() {
    let (node, _dir) = node().await;
    deploy(&node, "team-a", "slow", "/slow").await;
    deploy(&node, "team-a", "fast", "/fast").await;
    deploy(&node, "team-b", "fast", "/b").await;
    set_quotas(&node, "team-a", serde_json::json!({"max_concurrency": 1})).await;
    let node = std::sync::Arc::new(node);
    let busy = {
        let node = node.clone();
        tokio::spawn(async move { get(&node, "/slow/sleep?ms=3000").await })
    };
    // Wait until the slow one runs (it holds the namespace's one slot).
    let deadline = Instant::now() + Duration::from_secs(5);
    while node
        .control()
        .live_functions(None)
        .iter()
        .all(|f| f.in_flight() == 0)
    {
        assert!(Instant::now() < deadline, "never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Another function of the namespace waits its queue time, then 429.
    let (status, _, body) = get(&node, "/fast/echo").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(body.contains("namespace_over_concurrency"), "{body}");
    assert_eq!(get(&node, "/b/echo").await.0, StatusCode::OK);
    assert_eq!(busy.await.unwrap().0, StatusCode::OK);
    assert_eq!(get(&node, "/fast/echo").await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_budget_stops_the_namespace_or_only_warns() {
    let (node, _dir) = node().await;
    deploy(&node, "team-a", "shop", "/a").await;
    deploy(&node, "team-b", "shop", "/b").await;
    deploy(&node, "team-c", "shop", "/c").await;
    let budget = |on: &str| serde_json::json!({"budget": {"amount": 1e-6, "unit": "gb_seconds", "period": "month", "on_exhausted": on}});
    set_quotas(&node, "team-a", budget("reject")).await;
    set_quotas(&node, "team-b", budget("alert")).await;
    assert_eq!(get(&node, "/a/echo").await.0, StatusCode::OK);
    assert_eq!(get(&node, "/b/echo").await.0, StatusCode::OK);

    // Within the budget check's period, team-a's functions answer 429.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (retry, body) = loop {
        let (status, retry, body) = get(&node, "/a/echo").await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            break (retry, body);
        }
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(Instant::now() < deadline, "the budget never stopped team-a");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(body.contains("budget_exhausted"), "{body}");
    assert!(retry.is_some());
    // Every trigger stops, not only HTTP: an invocation through the API.
    let (status, answer) = call(
        &node,
        TOKEN,
        Method::POST,
        "/v1/namespaces/team-a/functions/bed/invocations?path=/echo",
        "",
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{answer}");
    assert_eq!(answer["error"]["code"], "budget_exhausted", "{answer}");
    // Alert only: team-b keeps serving; a neighbour without a budget too.
    assert_eq!(get(&node, "/b/echo").await.0, StatusCode::OK);
    assert_eq!(get(&node, "/c/echo").await.0, StatusCode::OK);

    // The usage report shows both against their budgets, with a warning.
    for (namespace, exhausted) in [("team-a", true), ("team-b", true)] {
        let (status, usage) = call(
            &node,
            TOKEN,
            Method::GET,
            &format!("/v1/namespaces/{namespace}/usage"),
            "",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let budget = &usage["budget"];
        assert_eq!(budget["exhausted"], exhausted, "{usage}");
        assert!(budget["percent"].as_f64().unwrap() >= 100.0, "{usage}");
        assert!(
            budget["warning"].as_str().unwrap().contains(namespace),
            "{usage}"
        );
    }
    let (_, usage) = call(&node, TOKEN, Method::GET, "/v1/namespaces/team-c/usage", "").await;
    assert!(usage.get("budget").is_none(), "{usage}");

    // Raising the budget lets team-a serve again.
    set_quotas(&node, "team-a", serde_json::json!({"budget": {"amount": 1e6, "unit": "money", "period": "day", "on_exhausted": "reject"}})).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(&node, "/a/echo").await.0 != StatusCode::OK {
        assert!(Instant::now() < deadline, "team-a never served again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
