//! Scoped tokens, in process: every admin endpoint × every role × its own
//! namespace, another namespace and the node's endpoints, each answering
//! what the role allows (the endpoint's own answer), 403, or 404 that says
//! nothing of what the other namespace holds; and tokens that are revoked,
//! expired or made up are refused.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::common::{TOKEN, admin_call, manifest, node, testbed};
use http::{Method, StatusCode};
use stratus_control::Upload;
use stratus_manifest::Namespace;
use stratus_node::Stratus;

async fn call(
    node: &Stratus,
    token: &str,
    method: &Method,
    path: &str,
    body: &str,
) -> (StatusCode, serde_json::Value) {
    admin_call(
        node,
        token,
        method.clone(),
        path,
        "application/json",
        body.to_owned(),
    )
    .await
}

/// Makes a token with `token` (the node's, or an admin's) and answers it.
async fn make(node: &Stratus, by: &str, prefix: &str, body: serde_json::Value) -> String {
    let (status, made) = call(
        node,
        by,
        &Method::POST,
        &format!("{prefix}/tokens"),
        &body.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    made["token"].as_str().unwrap().to_owned()
}

/// `shop` (the testbed, two versions) in `team-a` and `team-b`.
async fn two_teams() -> (Stratus, tempfile::TempDir) {
    let (node, dir) = node().await;
    for team in ["team-a", "team-b"] {
        for who in ["v1", "v2"] {
            let upload = Upload {
                namespace: Namespace::new(team).unwrap(),
                manifest: manifest(
                    "shop",
                    &format!("/{team}"),
                    &format!("env = {{ WHO = \"{who}\" }}"),
                ),
                components: BTreeMap::from([("testbed.wasm".to_owned(), testbed())]),
            };
            node.control().deploy(upload).await.unwrap();
        }
    }
    (node, dir)
}

/// What a caller allowed to reach an endpoint gets: its status, or any
/// answer of the endpoint's own (state-changing calls whose answer depends
/// on what ran before).
#[derive(Debug, Clone, Copy)]
enum Allowed {
    Status(u16),
    Reached,
}

/// Every endpoint of a namespace: method, path below the namespace, body,
/// the least role the issue gives it, and what an allowed caller gets.
fn endpoints() -> Vec<(Method, &'static str, &'static str, &'static str, Allowed)> {
    use Allowed::*;
    let token = r#"{"name": "made", "role": "viewer"}"#;
    vec![
        (Method::GET, "/apps", "", "viewer", Status(200)),
        (Method::GET, "/apps/shop", "", "viewer", Status(200)),
        (
            Method::GET,
            "/apps/shop/versions",
            "",
            "viewer",
            Status(200),
        ),
        (Method::GET, "/apps/shop/rollout", "", "viewer", Status(200)),
        (Method::GET, "/apps/shop/secrets", "", "viewer", Status(200)),
        (Method::GET, "/functions", "", "viewer", Status(200)),
        (
            Method::GET,
            "/functions/bed/logs",
            "",
            "viewer",
            Status(200),
        ),
        (
            Method::GET,
            "/functions/bed/events",
            "",
            "viewer",
            Status(200),
        ),
        (
            Method::GET,
            "/functions/bed/dead-letters",
            "",
            "viewer",
            Status(200),
        ),
        (
            Method::GET,
            "/invocations/unknown",
            "",
            "viewer",
            Status(404),
        ),
        (Method::GET, "/events/unknown", "", "viewer", Status(404)),
        (Method::GET, "/usage", "", "viewer", Status(200)),
        (Method::GET, "/quotas", "", "viewer", Status(200)),
        (
            Method::POST,
            "/functions/bed/invocations?method=GET&path=/x/echo",
            "",
            "invoker",
            Status(200),
        ),
        (
            Method::POST,
            "/apps/shop/queues/orders/events",
            "hi",
            "invoker",
            Reached,
        ),
        (
            Method::POST,
            "/queues/orders/events",
            "",
            "invoker",
            Status(410),
        ),
        (Method::POST, "/apps", "", "deployer", Status(400)),
        (
            Method::POST,
            "/apps/shop/versions/2/activate",
            "",
            "deployer",
            Status(200),
        ),
        (Method::POST, "/apps/shop/rollback", "", "deployer", Reached),
        (
            Method::POST,
            "/functions/bed/dead-letters/redrive",
            "",
            "deployer",
            Status(200),
        ),
        (Method::DELETE, "/apps/unknown", "", "deployer", Status(404)),
        (
            Method::PUT,
            "/apps/shop/secrets/key",
            "value",
            "deployer",
            Status(204),
        ),
        (
            Method::DELETE,
            "/apps/shop/secrets/key",
            "",
            "deployer",
            Reached,
        ),
        (Method::GET, "/tokens", "", "admin", Status(200)),
        (Method::POST, "/tokens", token, "admin", Status(201)),
        (Method::DELETE, "/tokens/unknown", "", "admin", Status(404)),
    ]
}

const ROLES: [&str; 4] = ["viewer", "invoker", "deployer", "admin"];

fn rank(role: &str) -> usize {
    ROLES.iter().position(|r| *r == role).unwrap()
}

fn assert_allowed(status: StatusCode, body: &serde_json::Value, allowed: Allowed, context: &str) {
    let code = body["error"]["code"].as_str().unwrap_or("");
    assert!(
        !matches!(code, "unauthorized" | "forbidden" | "namespace_not_found"),
        "{context}: refused: {status} {body}"
    );
    if let Allowed::Status(want) = allowed {
        assert_eq!(status.as_u16(), want, "{context}: {body}");
    }
}

fn assert_forbidden(status: StatusCode, body: &serde_json::Value, context: &str) {
    assert_eq!(status, StatusCode::FORBIDDEN, "{context}: {body}");
    assert_eq!(body["error"]["code"], "forbidden", "{context}: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_every_role_as_the_role_allows() {
    let (node, _dir) = two_teams().await;
    let mut callers: Vec<(String, Option<&str>, &str)> = Vec::new();
    for role in ROLES {
        let body = serde_json::json!({"name": format!("a-{role}"), "role": role});
        let token = make(&node, TOKEN, "/v1/namespaces/team-a", body).await;
        callers.push((token, Some("team-a"), role));
        let body =
            serde_json::json!({"name": format!("node-{role}"), "role": role, "node_wide": true});
        callers.push((make(&node, TOKEN, "/v1", body).await, None, role));
    }

    for (token, scope, role) in &callers {
        for (method, path, body, needs, allowed) in endpoints() {
            for namespace in ["team-a", "team-b"] {
                let full = format!("/v1/namespaces/{namespace}{path}");
                let context = format!("{role} of {scope:?}: {method} {full}");
                let (status, answer) = call(&node, token, &method, &full, body).await;
                let own = scope.is_none_or(|s| s == namespace);
                if !own {
                    assert_eq!(status, StatusCode::NOT_FOUND, "{context}: {answer}");
                    assert_eq!(answer["error"]["code"], "namespace_not_found", "{context}");
                } else if rank(role) >= rank(needs) {
                    assert_allowed(status, &answer, allowed, &context);
                } else {
                    assert_forbidden(status, &answer, &context);
                    let message = answer["error"]["message"].as_str().unwrap();
                    assert!(message.contains(needs), "{context}: {message}");
                }
            }
        }
        // The node's own endpoints: node-wide tokens only.
        for path in ["/v1/nodes", "/v1/namespaces"] {
            let context = format!("{role} of {scope:?}: GET {path}");
            let (status, answer) = call(&node, token, &Method::GET, path, "").await;
            match scope {
                None => assert_allowed(status, &answer, Allowed::Status(200), &context),
                Some(_) => assert_forbidden(status, &answer, &context),
            }
        }
        // Quotas are set by node-wide admins only: a namespace's own admin
        // cannot raise them.
        let path = "/v1/namespaces/team-a/quotas";
        let context = format!("{role} of {scope:?}: PUT {path}");
        let (status, answer) = call(&node, token, &Method::PUT, path, "{}").await;
        if scope.is_none() && *role == "admin" {
            assert_allowed(status, &answer, Allowed::Status(200), &context);
        } else {
            assert_forbidden(status, &answer, &context);
        }
    }

    // The node's own token reaches everything.
    for (method, path, body, _, allowed) in endpoints() {
        let full = format!("/v1/namespaces/team-b{path}");
        let (status, answer) = call(&node, TOKEN, &method, &full, body).await;
        assert_allowed(
            status,
            &answer,
            allowed,
            &format!("node token: {method} {full}"),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_namespace_answers_alike_whatever_it_holds() {
    let (node, _dir) = two_teams().await;
    let body = serde_json::json!({"name": "a", "role": "admin"});
    let token = make(&node, TOKEN, "/v1/namespaces/team-a", body).await;
    for (method, path, body, _, _) in endpoints() {
        // team-b has an app shop with function bed; team-z has nothing.
        let (held_status, held) = call(
            &node,
            &token,
            &method,
            &format!("/v1/namespaces/team-b{path}"),
            body,
        )
        .await;
        let (empty_status, empty) = call(
            &node,
            &token,
            &method,
            &format!("/v1/namespaces/team-z{path}"),
            body,
        )
        .await;
        assert_eq!(held_status, empty_status, "{method} {path}");
        let held = held.to_string().replace("team-b", "X");
        let empty = empty.to_string().replace("team-z", "X");
        assert_eq!(held, empty, "{method} {path}");
    }
    // The default namespace is another namespace too.
    let (status, answer) = call(&node, &token, &Method::GET, "/v1/apps", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_managed_within_their_scope() {
    let (node, dir) = two_teams().await;
    let a = "/v1/namespaces/team-a";
    let admin = make(
        &node,
        TOKEN,
        a,
        serde_json::json!({"name": "a-admin", "role": "admin"}),
    )
    .await;
    // A namespace's admin makes its tokens, never node-wide ones.
    let deployer = make(
        &node,
        &admin,
        a,
        serde_json::json!({"name": "ci", "role": "deployer", "expires": "30d"}),
    )
    .await;
    let (status, answer) = call(
        &node,
        &admin,
        &Method::POST,
        &format!("{a}/tokens"),
        &serde_json::json!({"name": "root", "role": "admin", "node_wide": true}).to_string(),
    )
    .await;
    assert_forbidden(status, &answer, "node-wide token by a namespace admin");
    let (status, answer) = call(
        &node,
        &admin,
        &Method::GET,
        &format!("{a}/tokens?node_wide=true"),
        "",
    )
    .await;
    assert_forbidden(status, &answer, "node-wide list by a namespace admin");
    for (body, why) in [
        (r#"{"name": "x", "role": "root"}"#, "role"),
        (r#"{"name": "", "role": "viewer"}"#, "name"),
        (
            r#"{"name": "x", "role": "viewer", "expires": "forever"}"#,
            "expires",
        ),
        (
            r#"{"name": "x", "role": "viewer", "expires": "0s"}"#,
            "expires",
        ),
    ] {
        let (status, answer) =
            call(&node, &admin, &Method::POST, &format!("{a}/tokens"), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert!(
            answer["error"]["message"].as_str().unwrap().contains(why),
            "{answer}"
        );
    }

    // The list shows name, role, scope and times, never a secret or hash.
    let (status, listed) = call(&node, &admin, &Method::GET, &format!("{a}/tokens"), "").await;
    assert_eq!(status, StatusCode::OK);
    let ci = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ci")
        .unwrap()
        .clone();
    assert_eq!(
        (ci["role"].as_str(), ci["namespace"].as_str()),
        (Some("deployer"), Some("team-a"))
    );
    assert!(ci["expires_at"].as_i64().unwrap() > ci["created_at"].as_i64().unwrap());
    let text = listed.to_string();
    let secret = deployer.rsplit('_').next().unwrap();
    assert!(
        !text.contains(secret) && !text.contains("hash") && !text.contains("salt"),
        "{text}"
    );
    // Nor does the node keep the secret anywhere: not in `stratus.db`,
    // its write-ahead log (where a fresh row is), or any other file.
    let mut files = vec![dir.path().to_path_buf()];
    let mut read = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if let Ok(bytes) = std::fs::read(&path) {
            read += 1;
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "the secret is in {}",
                path.display()
            );
        }
    }
    assert!(read > 1, "no files read under {}", dir.path().display());

    // Use is noted.
    let (status, _) = call(&node, &deployer, &Method::GET, &format!("{a}/apps"), "").await;
    assert_eq!(status, StatusCode::OK);
    let id = ci["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, listed) = call(&node, &admin, &Method::GET, &format!("{a}/tokens"), "").await;
        let used = listed
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == id && t["last_used_at"].is_i64());
        if used {
            break;
        }
        assert!(Instant::now() < deadline, "last use never noted: {listed}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Another namespace's admin cannot revoke it (nor learn it exists);
    // its own admin can, and then it opens nothing.
    let b_admin = make(
        &node,
        TOKEN,
        "/v1/namespaces/team-b",
        serde_json::json!({"name": "b", "role": "admin"}),
    )
    .await;
    let (status, answer) = call(
        &node,
        &b_admin,
        &Method::DELETE,
        &format!("/v1/namespaces/team-b/tokens/{id}"),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(answer["error"]["code"], "token_not_found");
    let (status, _) = call(
        &node,
        &admin,
        &Method::DELETE,
        &format!("{a}/tokens/{id}"),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, answer) = call(&node, &deployer, &Method::GET, &format!("{a}/apps"), "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_made_up_tokens_open_nothing() {
    let (node, _dir) = two_teams().await;
    let a = "/v1/namespaces/team-a";
    let brief = make(
        &node,
        TOKEN,
        a,
        serde_json::json!({"name": "brief", "role": "admin", "expires": "1s"}),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let answer = loop {
        let (status, answer) = call(&node, &brief, &Method::GET, &format!("{a}/apps"), "").await;
        if status == StatusCode::UNAUTHORIZED {
            break answer;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(Instant::now() < deadline, "never expired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{answer}"
    );

    let real = make(
        &node,
        TOKEN,
        a,
        serde_json::json!({"name": "real", "role": "admin"}),
    )
    .await;
    let (id, secret) = real
        .strip_prefix("stratus_")
        .unwrap()
        .split_once('_')
        .unwrap();
    let last = if secret.ends_with('0') { '1' } else { '0' };
    let flipped = format!("{}{last}", &secret[..secret.len() - 1]);
    for forged in [
        format!("stratus_{id}_{flipped}"),
        format!("stratus_{id}_"),
        format!("stratus_{id}"),
        format!("stratus_0000000000000000_{secret}"),
        format!("stratus_../../{id}_{secret}"),
        "stratus_".to_owned(),
        format!("{TOKEN}x"),
    ] {
        let (status, answer) = call(&node, &forged, &Method::GET, &format!("{a}/apps"), "").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{forged}: {answer}");
    }
    let (status, _) = call(&node, &real, &Method::GET, &format!("{a}/apps"), "").await;
    assert_eq!(status, StatusCode::OK);
    // And the neighbour's functions keep answering through the gateway.
    let (status, who) = crate::common::get(&node, "/team-b/env?name=WHO").await;
    assert_eq!((status, who.as_str()), (StatusCode::OK, "v2"));
}
