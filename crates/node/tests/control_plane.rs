//! The control plane in process: versions, rollback, deletion and
//! start-up, each checked through what the gateway then serves.

use std::collections::BTreeMap;

use crate::common::{get, manifest, node, node_in, testbed};
use http::StatusCode;
use stratus_control::{ControlError, Upload};

/// An upload of the testbed as app `app` at `route`, saying `who` at
/// `/env?name=WHO`.
fn upload(app: &str, route: &str, who: &str) -> Upload {
    let extra = format!("env = {{ WHO = \"{who}\" }}");
    Upload {
        manifest: manifest(app, route, &extra),
        components: BTreeMap::from([("testbed.wasm".to_string(), testbed())]),
        ..Upload::default()
    }
}

async fn who(node: &stratus_node::Stratus, route: &str) -> (StatusCode, String) {
    get(node, &format!("{route}/env?name=WHO")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_activate_and_roll_back_atomically() {
    let (node, _dir) = node().await;
    let control = node.control();
    for who in ["v1", "v2", "v3"] {
        control.deploy(upload("shop", "/shop", who)).await.unwrap();
    }
    assert_eq!(who(&node, "/shop").await.1, "v3");
    // Without a version: the one before the live one.
    assert_eq!(control.activate("shop", None).await.unwrap(), 2);
    assert_eq!(who(&node, "/shop").await.1, "v2");
    assert_eq!(control.activate("shop", Some(1)).await.unwrap(), 1);
    assert_eq!(who(&node, "/shop").await.1, "v1");
    assert!(matches!(
        control.activate("shop", None).await,
        Err(ControlError::NoEarlierVersion(_))
    ));
    assert!(matches!(
        control.activate("shop", Some(9)).await,
        Err(ControlError::VersionNotFound { version: 9, .. })
    ));
    assert_eq!(
        who(&node, "/shop").await.1,
        "v1",
        "a refusal changes nothing"
    );
    let live: Vec<_> = control
        .versions("shop")
        .await
        .unwrap()
        .into_iter()
        .filter(|v| v.live)
        .map(|v| v.number)
        .collect();
    assert_eq!(live, [1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_node_serves_what_was_live_and_not_what_was_deleted() {
    let dir = tempfile::tempdir().unwrap();
    {
        let node = node_in(dir.path()).await;
        let control = node.control();
        control.deploy(upload("shop", "/shop", "v1")).await.unwrap();
        control.deploy(upload("shop", "/shop", "v2")).await.unwrap();
        control.activate("shop", Some(1)).await.unwrap();
        control.deploy(upload("gone", "/gone", "g1")).await.unwrap();
        control.delete_app("gone").await.unwrap();
        assert_eq!(who(&node, "/gone").await.0, StatusCode::NOT_FOUND);
        assert_eq!(who(&node, "/shop").await.1, "v1");
    }
    let node = node_in(dir.path()).await;
    assert!(node.control().is_ready());
    assert_eq!(who(&node, "/shop").await, (StatusCode::OK, "v1".into()));
    assert_eq!(who(&node, "/gone").await.0, StatusCode::NOT_FOUND);
    assert!(matches!(
        node.control().app("gone").await,
        Err(ControlError::AppNotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_component_or_route_is_refused_and_the_neighbour_answers() {
    let (node, _dir) = node().await;
    let control = node.control();
    control.deploy(upload("shop", "/shop", "v1")).await.unwrap();

    let mut garbage = upload("evil", "/evil", "x");
    garbage.components.insert(
        "testbed.wasm".into(),
        bytes::Bytes::from_static(b"not wasm"),
    );
    let refused = control.deploy(garbage).await.unwrap_err().to_string();
    assert!(refused.contains("testbed.wasm"), "{refused}");

    let refused = control
        .deploy(upload("evil", "/shop", "x"))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, ControlError::RouteConflict(_)),
        "{refused}"
    );

    assert!(matches!(
        control.app("evil").await,
        Err(ControlError::AppNotFound(_))
    ));
    assert_eq!(who(&node, "/shop").await, (StatusCode::OK, "v1".into()));
}
