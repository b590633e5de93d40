//! The capability diff of a deploy, in process: every deploy answers what
//! the new version gains over the live one, and a deploy that asks for no
//! new capabilities is refused — nothing stored, the live version serving,
//! a neighbour app answering — when it would gain any.

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::Full;
use stratus_node::Stratus;

use crate::common::{TOKEN, admin, capabilities, deploy_request, get, manifest, node, testbed};

/// `POST /v1/apps` (with `query`) of the manifest and its one component.
async fn deploy(
    node: &Stratus,
    manifest: &str,
    component: (&str, Bytes),
    query: &str,
) -> (StatusCode, serde_json::Value) {
    let path = format!("/v1/apps{query}");
    admin(node, deploy_request(&path, TOKEN, manifest, component)).await
}

const STRICT: &str = "?require_no_new_capabilities=true";

fn lines(gained: &serde_json::Value) -> Vec<String> {
    let gains: stratus_control::gains::Gains = serde_json::from_value(gained.clone()).unwrap();
    gains.lines()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_names_what_it_gains_and_a_strict_one_gaining_anything_is_refused() {
    let (node, _dir) = node().await;
    let bed = || ("testbed.wasm", testbed());
    let (status, body) = deploy(&node, &manifest("neighbour", "/neighbour", ""), bed(), "").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // A first version gains everything it may do.
    let v1 = manifest("shop", "/shop", "env = { WHO = \"v1\" }");
    let (status, body) = deploy(&node, &v1, bed(), "").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let first = lines(&body["gained"]);
    assert!(
        first.contains(&"bed: a new function".to_owned()),
        "{first:?}"
    );
    assert!(
        first.contains(&"bed: route /shop/...".to_owned()),
        "{first:?}"
    );
    assert!(
        first
            .iter()
            .any(|l| l.starts_with("bed: import wasi:http/")),
        "{first:?}"
    );

    // The same capabilities with other code or env gain nothing.
    let v2 = manifest("shop", "/shop", "env = { WHO = \"v2\" }");
    let (status, body) = deploy(&node, &v2, bed(), STRICT).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["gained"]["functions"], serde_json::json!([]), "{body}");

    // More reach: refused when asked, and nothing changes.
    let wider = manifest(
        "shop",
        "/shop",
        "env = { WHO = \"v3\" }\nallowed_outbound = [\"https://api.example.com\"]\nkeyvalue = [\"cart\"]\nconfig = { region = \"eu\" }\nmemory = \"256MiB\"",
    );
    let (status, body) = deploy(&node, &wider, ("testbed.wasm", capabilities()), STRICT).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "capabilities_gained", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    for gain in [
        "bed: outbound https://api.example.com",
        "bed: key-value bucket cart",
        "bed: limit memory: ",
        "bed: import wasi:keyvalue/",
        "bed: config key region",
    ] {
        assert!(message.contains(gain), "{gain}: {message}");
    }
    assert_eq!(
        get(&node, "/shop/env?name=WHO").await.1,
        "v2",
        "v2 still live"
    );
    let versions = Request::get("/v1/apps/shop/versions")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (_, versions) = admin(&node, versions).await;
    assert_eq!(
        versions.as_array().unwrap().len(),
        2,
        "nothing stored: {versions}"
    );

    // Without the guard it deploys, and says what it gained.
    let (status, body) = deploy(&node, &wider, ("testbed.wasm", capabilities()), "").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let gained = lines(&body["gained"]);
    assert!(
        gained.contains(&"bed: key-value bucket cart".to_owned()),
        "{gained:?}"
    );
    assert!(
        !gained.iter().any(|l| l.contains("route")),
        "no new route: {gained:?}"
    );
    assert_eq!(get(&node, "/neighbour/echo").await.0, StatusCode::OK);
}
