//! What the console reads beyond the rest of the API, in process: who a
//! token is, a function's last hour, its invocations by filter, the
//! functions' queues — each kept to the token's namespace, each refusing
//! bad input with the platform's error, with a neighbour app answering
//! throughout.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode};
use stratus_control::Upload;
use stratus_manifest::Namespace;
use stratus_node::Stratus;

use crate::common::{TOKEN, admin_call, get, manifest, node, testbed};

async fn deploy(node: &Stratus, namespace: &str, app: &str, route: &str, extra: &str) {
    let upload = Upload {
        namespace: Namespace::new(namespace).unwrap(),
        manifest: manifest(app, route, extra),
        components: BTreeMap::from([("testbed.wasm".to_owned(), testbed())]),
    };
    node.control().deploy(upload).await.unwrap();
}

async fn call(
    node: &Stratus,
    token: &str,
    method: Method,
    path: &str,
    body: &str,
) -> (StatusCode, serde_json::Value) {
    let body = Bytes::from(body.to_owned());
    admin_call(node, token, method, path, "application/json", body).await
}

async fn read(node: &Stratus, path: &str) -> (StatusCode, serde_json::Value) {
    call(node, TOKEN, Method::GET, path, "").await
}

/// `path` read until `done` holds of its answer (the ledger writes in
/// batches; the queue delivers in the background).
async fn read_until(
    node: &Stratus,
    path: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = read(node, path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        if done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "{path} never got there: {body}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The invocation `id` once the ledger has it.
async fn recorded(node: &Stratus, id: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = read(node, &format!("/v1/invocations/{id}")).await;
        if status == StatusCode::OK {
            return body;
        }
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert!(Instant::now() < deadline, "{id} never recorded");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A token of `namespace` (`None`: node-wide) with `role`.
async fn token(node: &Stratus, namespace: Option<&str>, role: &str) -> String {
    let (path, node_wide) = match namespace {
        Some(ns) => (format!("/v1/namespaces/{ns}/tokens"), false),
        None => ("/v1/tokens".to_owned(), true),
    };
    let body = serde_json::json!({"name": "console", "role": role, "node_wide": node_wide});
    let (status, made) = call(node, TOKEN, Method::POST, &path, &body.to_string()).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    made["token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whoami_names_the_token_whatever_namespace_the_path_names() {
    let (node, _dir) = node().await;
    let (status, me) = read(&node, "/v1/whoami").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(
        me,
        serde_json::json!({"name": "node", "role": "admin", "namespace": null})
    );

    let team = token(&node, Some("team-a"), "viewer").await;
    for path in [
        "/v1/whoami",
        "/v1/namespaces/team-a/whoami",
        "/v1/namespaces/team-b/whoami",
    ] {
        let (status, me) = call(&node, &team, Method::GET, path, "").await;
        assert_eq!(status, StatusCode::OK, "{path}: {me}");
        assert_eq!(me["namespace"], "team-a", "{path}: {me}");
        assert_eq!(me["role"], "viewer", "{path}: {me}");
    }
    let wide = token(&node, None, "deployer").await;
    let (_, me) = call(&node, &wide, Method::GET, "/v1/whoami", "").await;
    assert_eq!(
        (me["role"].as_str(), me["namespace"].is_null()),
        (Some("deployer"), true)
    );

    let (status, body) = call(&node, "stratus_guess", Method::GET, "/v1/whoami", "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // What a namespace's token may see of another namespace is still
    // nothing, whoami notwithstanding.
    let (status, _) = call(&node, &team, Method::GET, "/v1/namespaces/team-b/apps", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_functions_hour_and_its_invocations_read_back_by_filter() {
    let (node, _dir) = node().await;
    let grants = "max_concurrency = 7\nallowed_outbound = [\"http://bed.svc\"]";
    deploy(&node, "default", "shop", "/shop", grants).await;
    deploy(&node, "default", "neighbour", "/neighbour", "").await;
    for path in [
        "/shop/echo",
        "/shop/echo",
        "/shop/status?code=418",
        "/shop/sleep?ms=300",
    ] {
        get(&node, path).await;
    }
    let (status, _) = get(&node, "/shop/panic").await;
    assert!(status.is_server_error(), "{status}");

    let (status, series) = read(&node, "/v1/functions/shop%2Fbed/series").await;
    assert_eq!(status, StatusCode::OK, "{series}");
    assert_eq!(
        (series["app"].as_str(), series["step_seconds"].as_u64()),
        (Some("shop"), Some(60))
    );
    let points = series["points"].as_array().unwrap();
    let sum = |key: &str| -> u64 { points.iter().map(|p| p[key].as_u64().unwrap()).sum() };
    assert_eq!((sum("requests"), sum("errors")), (5, 1), "{series}");
    let last = points.last().unwrap();
    assert_eq!(last["capacity"], 7, "{series}");
    assert!(last["in_flight"].as_u64().unwrap() >= 1, "{series}");
    let p99 = last["p99_ms"].as_f64().unwrap();
    assert!(
        (250.0..1000.0).contains(&p99),
        "the 300 ms sleep is the p99: {series}"
    );
    assert_eq!(points.len(), 60, "{series}");
    // A function that never ran has an hour of nothing.
    let (_, quiet) = read(&node, "/v1/functions/neighbour%2Fbed/series").await;
    let quiet = quiet["points"].as_array().unwrap();
    assert_eq!(quiet.len(), 60);
    assert!(
        quiet
            .iter()
            .all(|p| p["requests"] == 0 && p["p50_ms"].is_null())
    );

    let all = read_until(&node, "/v1/functions/shop%2Fbed/invocations", |b| {
        b["invocations"].as_array().unwrap().len() == 5
    })
    .await;
    let list = all["invocations"].as_array().unwrap();
    assert!(
        list.windows(2)
            .all(|w| w[0]["started_at"].as_str() >= w[1]["started_at"].as_str()),
        "newest first: {all}"
    );
    assert!(
        list.iter().all(|i| i.get("logs").is_none()),
        "no logs in a listing"
    );

    let listed = |query: &'static str| {
        let node = &node;
        async move {
            let (status, body) = read(
                node,
                &format!("/v1/functions/shop%2Fbed/invocations?{query}"),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            body["invocations"].as_array().unwrap().clone()
        }
    };
    let errors = listed("status=error").await;
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["error"], "function_trapped", "{errors:?}");
    assert_eq!(listed("status=418").await.len(), 1);
    assert_eq!(listed("status=ok").await.len(), 4);
    assert_eq!(listed("min_duration_ms=250").await.len(), 1);
    assert_eq!(listed("trigger=http&limit=2").await.len(), 2);
    assert_eq!(listed("trigger=event").await.len(), 0);
    assert_eq!(listed("since=1h&until=2000-01-01T00:00:00Z").await.len(), 0);

    // A call through `.svc` is in its caller's calls, and names it.
    let (status, text) = get(&node, "/shop/fetch?to=bed.svc").await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "reached: 200"));
    let served = read_until(
        &node,
        "/v1/functions/shop%2Fbed/invocations?trigger=service",
        |b| b["invocations"].as_array().unwrap().len() == 1,
    )
    .await;
    let call = &served["invocations"][0];
    let caller = call["caller"].as_str().unwrap();
    let detail = recorded(&node, caller).await;
    assert_eq!(detail["calls"].as_array().unwrap().len(), 1, "{detail}");
    assert_eq!(detail["calls"][0]["id"], call["id"], "{detail}");
    assert_eq!(detail["outbound_requests"], 1, "{detail}");
    let leaf = recorded(&node, call["id"].as_str().unwrap()).await;
    assert_eq!(leaf["calls"], serde_json::json!([]), "{leaf}");

    // Bad filters are refused, saying which and why.
    for (query, says) in [
        ("status=broken", "status"),
        ("status=0200", "status"),
        ("status=600", "status"),
        ("trigger=cron", "trigger"),
        ("min_duration_ms=-1", "min_duration_ms"),
        ("limit=0", "limit"),
        ("since=yesterday", "yesterday"),
    ] {
        let (status, body) = read(
            &node,
            &format!("/v1/functions/shop%2Fbed/invocations?{query}"),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{query}: {body}");
    }
    let (status, body) = read(&node, "/v1/functions/nobody/series").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // The neighbour answered all along.
    assert_eq!(get(&node, "/neighbour/echo").await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_sees_only_its_own_functions_hours_invocations_and_queues() {
    let (node, _dir) = node().await;
    deploy(
        &node,
        "default",
        "shop",
        "/shop",
        "triggers = [{ queue = \"orders\", max_attempts = 1 }]",
    )
    .await;
    deploy(
        &node,
        "team-a",
        "mine",
        "/a-mine",
        "triggers = [{ queue = \"jobs\" }]",
    )
    .await;
    get(&node, "/shop/echo").await;
    let delivering = node.dispatcher().spawn();
    // A dead letter in shop's queue: the testbed refuses "fail…" events.
    let (status, body) = call(
        &node,
        TOKEN,
        Method::POST,
        "/v1/apps/shop/queues/orders/events",
        "fail now",
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let queues = read_until(&node, "/v1/queues", |b| b["queues"][0]["dead_letters"] == 1).await;
    let list = queues["queues"].as_array().unwrap();
    assert_eq!(list.len(), 1, "only default's: {queues}");
    assert_eq!(
        (list[0]["app"].as_str(), list[0]["function"].as_str()),
        (Some("shop"), Some("bed"))
    );
    assert_eq!(list[0]["queues"], serde_json::json!(["orders"]), "{queues}");
    assert_eq!(list[0]["waiting"], 0, "{queues}");

    // The dead letter replayed: a copy under a new id, delivered (and
    // refused, and dead) again; the original stays as it was.
    let dead_id = body["id"].as_str().unwrap().to_owned();
    let replay = format!("/v1/functions/shop%2Fbed/events/{dead_id}/replay");
    let (status, copy) = call(&node, TOKEN, Method::POST, &replay, "").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{copy}");
    let copy_id = copy["id"].as_str().unwrap().to_owned();
    assert_ne!(copy_id, dead_id);
    assert_eq!(
        copy["status_url"],
        format!("/v1/events/{copy_id}"),
        "{copy}"
    );
    read_until(&node, &format!("/v1/events/{copy_id}"), |e| {
        e["state"] == "dead"
    })
    .await;
    read_until(&node, "/v1/queues", |b| b["queues"][0]["dead_letters"] == 2).await;
    let (status, body) = call(
        &node,
        TOKEN,
        Method::POST,
        "/v1/functions/shop%2Fbed/events/nope/replay",
        "",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "event_not_found", "{body}");

    let team = token(&node, Some("team-a"), "viewer").await;
    let (status, theirs) = call(
        &node,
        &team,
        Method::GET,
        "/v1/namespaces/team-a/queues",
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{theirs}");
    let names: Vec<&str> = theirs["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["function"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bed"], "{theirs}");
    assert_eq!(theirs["queues"][0]["app"], "mine", "{theirs}");
    // Default's function, asked for through team-a (its own path, or
    // reaching across by name), is not there: not found, or (a listing
    // by `APP/NAME`, which reads what a deleted function left) nothing.
    for path in [
        "/v1/namespaces/team-a/functions/shop%2Fbed/series",
        "/v1/namespaces/team-a/functions/shop%2Fbed/invocations",
        "/v1/namespaces/team-a/functions/default%2Fshop%2Fbed/invocations",
        "/v1/functions/shop%2Fbed/series",
        "/v1/functions/shop%2Fbed/invocations",
        "/v1/queues",
    ] {
        let (status, body) = call(&node, &team, Method::GET, path, "").await;
        let nothing = status == StatusCode::NOT_FOUND
            || (status == StatusCode::OK && body["invocations"] == serde_json::json!([]));
        assert!(nothing, "{path}: {status} {body}");
        assert!(!body.to_string().contains("orders"), "{path}: {body}");
    }
    // Nor can it replay default's event, by either path.
    for path in [
        format!("/v1/functions/shop%2Fbed/events/{dead_id}/replay"),
        format!("/v1/namespaces/team-a/functions/shop%2Fbed/events/{dead_id}/replay"),
    ] {
        let admin = token(&node, Some("team-a"), "admin").await;
        let (status, body) = call(&node, &admin, Method::POST, &path, "").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    let (status, _) = call(
        &node,
        &team,
        Method::POST,
        "/v1/namespaces/team-a/functions/bed/events/x/replay",
        "",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a viewer does not replay");
    assert_eq!(get(&node, "/a-mine/echo").await.0, StatusCode::OK);
    delivering.abort();
}
