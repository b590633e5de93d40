//! Tiered compilation in process: a new component serves at once on
//! baseline (Winch) code, switches to optimized (Cranelift) code compiled
//! in the background with no request failing across the switch, shows its
//! tier in the API and `/metrics`, starts optimized after a restart, and
//! leaves no artifact of either tier once deleted; a neighbour app answers
//! throughout.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode};
use stratus_node::Stratus;

use crate::common::{
    TOKEN, admin, admin_call, deploy_request, get, manifest, node_in, node_metrics, testbed,
};

async fn deploy(node: &Stratus, app: &str) -> serde_json::Value {
    let request = deploy_request(
        "/v1/apps",
        TOKEN,
        &manifest(app, &format!("/{app}"), ""),
        ("testbed.wasm", testbed()),
    );
    let (status, body) = admin(node, request).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// `GET {path}` of the admin API, which must answer 200.
async fn admin_get(node: &Stratus, path: &str) -> serde_json::Value {
    let (status, body) = admin_call(node, TOKEN, Method::GET, path, "", Bytes::new()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The tier `GET /v1/functions` gives the app's function.
async fn tier(node: &Stratus, app: &str) -> serde_json::Value {
    admin_get(node, &format!("/v1/functions?app={app}")).await[0]["tier"].clone()
}

/// Until no optimized compile is queued or running.
async fn queue_idle(node: &Stratus) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while metric(&node_metrics(node).await, "stratus_tier_up_queue") > 0.0 {
        assert!(Instant::now() < deadline, "the tier-up queue never emptied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn metric(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

fn artifacts(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for engine in std::fs::read_dir(dir.join("compiled"))
        .into_iter()
        .flatten()
    {
        for file in std::fs::read_dir(engine.unwrap().path())
            .into_iter()
            .flatten()
        {
            found.push(file.unwrap().path());
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_component_serves_on_baseline_code_and_switches_with_no_request_failing() {
    let dir = tempfile::tempdir().unwrap();
    let node = Arc::new(node_in(dir.path()).await);
    let report = deploy(&node, "tiered").await;
    assert_eq!(report["functions"][0]["compiled_from_cache"], false);
    let metrics = node_metrics(&node).await;
    assert_eq!(metric(&metrics, "stratus_baseline_compiles_total"), 1.0);

    // Requests run from the deploy on, across the switch; some of them
    // still running when it happens.
    let done = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let load = {
        let (node, done, answered) = (node.clone(), done.clone(), answered.clone());
        tokio::spawn(async move {
            let mut failures = Vec::new();
            let mut i = 0_u32;
            while !done.load(Ordering::Relaxed) {
                let path = if i.is_multiple_of(4) {
                    "/tiered/sleep?ms=20"
                } else {
                    "/tiered/echo"
                };
                let (status, body) = get(&node, path).await;
                if status != StatusCode::OK {
                    failures.push((path, status, body));
                }
                answered.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
            failures
        })
    };

    let deadline = Instant::now() + Duration::from_secs(120);
    while tier(&node, "tiered").await != "optimized" {
        assert!(
            Instant::now() < deadline,
            "the optimized code never replaced the baseline code"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let switched_at = answered.load(Ordering::Relaxed);
    while answered.load(Ordering::Relaxed) < switched_at + 20 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    done.store(true, Ordering::Relaxed);
    let failures = load.await.unwrap();
    assert!(failures.is_empty(), "requests failed: {failures:?}");
    eprintln!(
        "info: {switched_at} requests answered before the switch, {} in all",
        answered.load(Ordering::Relaxed)
    );

    let metrics = node_metrics(&node).await;
    assert_eq!(metric(&metrics, "stratus_tier_ups_total"), 1.0);
    assert_eq!(metric(&metrics, "stratus_baseline_functions"), 0.0);
    assert!(
        metrics.contains(
            "stratus_function_tier{namespace=\"default\",app=\"tiered\",function=\"bed\",tier=\"optimized\"} 1"
        ),
        "{metrics}"
    );
    let apps = admin_get(&node, "/v1/apps").await;
    assert_eq!(apps[0]["tier"], "optimized", "{apps}");
    // Both tiers' code is cached, each under its engine's directory, and
    // the bytes spooled for the compile went with its job.
    queue_idle(&node).await;
    assert_eq!(
        artifacts(dir.path()).len(),
        2,
        "{:?}",
        artifacts(dir.path())
    );

    // A restart takes the optimized code, compiling nothing.
    drop(Arc::into_inner(node).expect("the load task ended"));
    let node = node_in(dir.path()).await;
    assert_eq!(tier(&node, "tiered").await, "optimized");
    let metrics = node_metrics(&node).await;
    assert_eq!(metric(&metrics, "stratus_baseline_compiles_total"), 0.0);
    assert_eq!(metric(&metrics, "stratus_components_compiled_total"), 0.0);
    assert_eq!(get(&node, "/tiered/echo").await.0, StatusCode::OK);

    // Deleted, it leaves neither tier's code.
    let (status, body) = admin_call(
        &node,
        TOKEN,
        Method::DELETE,
        "/v1/apps/tiered",
        "",
        Bytes::new(),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(artifacts(dir.path()), Vec::<std::path::PathBuf>::new());
}

#[tokio::test]
async fn a_deploy_deleted_before_its_tier_up_leaves_no_code_and_a_neighbour_answers() {
    let dir = tempfile::tempdir().unwrap();
    let node = node_in(dir.path()).await;
    deploy(&node, "neighbour").await;
    // The testbed is loaded already: a second component is needed for a
    // fresh compile. The capabilities guest is one.
    let request = deploy_request(
        "/v1/apps",
        TOKEN,
        "[app]\nname = \"gone\"\n\n[[function]]\nname = \"caps\"\ncomponent = \"caps.wasm\"\nroutes = [\"/gone/...\"]\nkeyvalue = [\"default\"]\nsecrets = [\"token\"]\n",
        ("caps.wasm", crate::common::capabilities()),
    );
    let (status, body) = admin(&node, request).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = admin_call(
        &node,
        TOKEN,
        Method::DELETE,
        "/v1/apps/gone",
        "",
        Bytes::new(),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // Whatever the queue was doing, once it is idle only the neighbour's
    // code is left.
    queue_idle(&node).await;
    let left = artifacts(dir.path());
    let sha = report_sha(&node, "neighbour").await;
    assert!(
        left.iter()
            .all(|p| p.file_stem().is_some_and(|s| s == sha.as_str())),
        "{left:?}"
    );
    assert_eq!(get(&node, "/neighbour/echo").await.0, StatusCode::OK);
}

async fn report_sha(node: &Stratus, app: &str) -> String {
    admin_get(node, &format!("/v1/apps/{app}")).await["functions"][0]["component_sha256"]
        .as_str()
        .unwrap()
        .to_owned()
}
