//! The audit log, in process: changes and refused attempts are appended
//! with who, what, to what and how it ended; each namespace reads its own;
//! no endpoint changes or deletes an entry; and the log outlives the node.

use crate::common::{TOKEN, admin_call, manifest, node_in, testbed};
use http::{Method, StatusCode};
use stratus_node::Stratus;

async fn call(
    node: &Stratus,
    token: &str,
    method: Method,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, serde_json::Value) {
    admin_call(node, token, method, path, content_type, body).await
}

async fn json(
    node: &Stratus,
    token: &str,
    method: Method,
    path: &str,
    body: &str,
) -> (StatusCode, serde_json::Value) {
    call(
        node,
        token,
        method,
        path,
        "application/json",
        body.as_bytes().to_vec(),
    )
    .await
}

/// `POST {prefix}/apps` of the testbed as `app` at `route`.
async fn deploy(
    node: &Stratus,
    token: &str,
    prefix: &str,
    app: &str,
    route: &str,
) -> (StatusCode, serde_json::Value) {
    let boundary = "audit-boundary";
    let manifest = manifest(app, route, "");
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"manifest\"\r\n\r\n{manifest}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"component\"; filename=\"testbed.wasm\"\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&testbed());
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let content_type = format!("multipart/form-data; boundary={boundary}");
    call(
        node,
        token,
        Method::POST,
        &format!("{prefix}/apps"),
        &content_type,
        body,
    )
    .await
}

const A: &str = "/v1/namespaces/team-a";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_and_refusals_are_kept_and_read_per_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let node = node_in(dir.path()).await;
    let token =
        |role: &str, name: &str| serde_json::json!({"name": name, "role": role}).to_string();
    let (status, made) = json(
        &node,
        TOKEN,
        Method::POST,
        &format!("{A}/tokens"),
        &token("deployer", "ci"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let ci = made["token"].as_str().unwrap().to_owned();
    let ci_id = made["id"].as_str().unwrap().to_owned();
    let (_, made) = json(
        &node,
        TOKEN,
        Method::POST,
        &format!("{A}/tokens"),
        &token("viewer", "dash"),
    )
    .await;
    let viewer = made["token"].as_str().unwrap().to_owned();

    let (status, deployed) = deploy(&node, &ci, A, "shop", "/shop").await;
    assert_eq!(status, StatusCode::CREATED, "{deployed}");
    let sha = deployed["functions"][0]["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    deploy(&node, &ci, A, "shop", "/shop").await;
    let (status, _) = json(
        &node,
        &ci,
        Method::POST,
        &format!("{A}/apps/shop/rollback"),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(
        &node,
        &ci,
        Method::PUT,
        &format!("{A}/apps/shop/secrets/stripe"),
        "text/plain",
        b"sk".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Refused: a viewer deploying, a made-up token, another namespace.
    let (status, _) = deploy(&node, &viewer, A, "shop", "/shop").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = json(
        &node,
        "stratus_0000_bad",
        Method::DELETE,
        &format!("{A}/apps/shop"),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = json(
        &node,
        &ci,
        Method::DELETE,
        "/v1/namespaces/team-b/apps/shop",
        "",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Reads are not changes: not recorded.
    json(&node, &ci, Method::GET, &format!("{A}/apps"), "").await;

    let (status, log) = json(&node, TOKEN, Method::GET, &format!("{A}/audit"), "").await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let rows: Vec<(String, String, String, u64, String)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["token_name"].as_str().unwrap().to_owned(),
                e["target"].as_str().unwrap().to_owned(),
                e["status"].as_u64().unwrap(),
                e["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let row = |a: &str, who: &str, target: &str, status: u64, outcome: &str| {
        (
            a.to_owned(),
            who.to_owned(),
            target.to_owned(),
            status,
            outcome.to_owned(),
        )
    };
    assert_eq!(
        rows,
        [
            row("token.create", "node", &ci_id, 201, "ok"),
            row(
                "token.create",
                "node",
                log[1]["target"].as_str().unwrap(),
                201,
                "ok"
            ),
            row("deploy", "ci", "team-a/shop", 201, "ok"),
            row("deploy", "ci", "team-a/shop", 201, "ok"),
            row("rollback", "ci", "shop", 200, "ok"),
            row("secret.set", "ci", "shop/stripe", 204, "ok"),
            row("deploy", "dash", "", 403, "forbidden"),
            row("delete", "", "shop", 401, "unauthorized"),
        ]
    );
    assert_eq!(log[0]["token_id"], "node");
    assert_eq!(log[2]["token_id"], ci_id.as_str());
    assert_eq!(log[2]["role"], "deployer");
    assert_eq!(log[2]["detail"], format!("version 1: bed sha256:{sha}"));
    assert_eq!(log[4]["detail"], "version 1 live");
    assert_eq!(log[6]["role"], "viewer");
    assert!(log[2]["time"].as_str().unwrap().ends_with('Z'), "{log}");
    // The refused attempt on team-b is team-b's entry, and ci can't read it.
    let (_, theirs) = json(&node, TOKEN, Method::GET, "/v1/namespaces/team-b/audit", "").await;
    assert_eq!(theirs.as_array().unwrap().len(), 1, "{theirs}");
    assert_eq!(
        (theirs[0]["action"].as_str(), theirs[0]["outcome"].as_str()),
        (Some("delete"), Some("namespace_not_found"))
    );
    // Reading it is an admin's; a deployer is refused.
    let (status, _) = json(&node, &ci, Method::GET, &format!("{A}/audit"), "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Filters.
    let (_, newest) = json(&node, TOKEN, Method::GET, &format!("{A}/audit?limit=2"), "").await;
    assert_eq!(newest.as_array().unwrap().len(), 2);
    assert_eq!(newest[1]["action"], "delete");
    let (_, none) = json(
        &node,
        TOKEN,
        Method::GET,
        &format!("{A}/audit?since=2999-01-01T00:00:00Z"),
        "",
    )
    .await;
    assert_eq!(none, serde_json::json!([]));

    // No endpoint changes or deletes an entry.
    for method in [Method::DELETE, Method::PUT, Method::POST, Method::PATCH] {
        let (status, _) = json(&node, TOKEN, method.clone(), &format!("{A}/audit"), "[]").await;
        assert!(
            matches!(
                status,
                StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_FOUND
            ),
            "{method}: {status}"
        );
    }

    // It outlives the node.
    drop(node);
    let node = node_in(dir.path()).await;
    let (_, again) = json(&node, TOKEN, Method::GET, &format!("{A}/audit"), "").await;
    assert_eq!(again, log);
}
