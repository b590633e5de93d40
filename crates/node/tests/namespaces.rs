//! Namespaces, in process: two teams deploy an app of the same name, and
//! nothing one owns — versions, key-value data, secrets, logs, usage,
//! events, invocations — is seen or changed through the other's namespace;
//! names that try to reach across (`team-a%2Fshop`) are refused; a route
//! another namespace serves is refused without naming its app; and the
//! default namespace is what `/v1/…` was before namespaces existed.

use crate::common::{self, TOKEN, admin, capabilities, node};
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use stratus_node::Stratus;
use tower::ServiceExt;

/// The capabilities guest as app `app` at `{route}/...`, granted the
/// `default` bucket and the secret `token`.
fn manifest(app: &str, route: &str) -> String {
    format!(
        "[app]\nname = \"{app}\"\n\n[[function]]\nname = \"store\"\ncomponent = \"capabilities.wasm\"\nroutes = [\"{route}/...\"]\nkeyvalue = [\"default\"]\nsecrets = [\"token\"]\n"
    )
}

/// `POST {prefix}/apps` with `manifest` and the capabilities component.
fn deploy(prefix: &str, manifest: &str) -> Request<Full<Bytes>> {
    let component = ("capabilities.wasm", capabilities());
    common::deploy_request(&format!("{prefix}/apps"), TOKEN, manifest, component)
}

/// The apps of `namespace`'s usage report (`prefix` its API path).
async fn usage_apps(node: &Stratus, prefix: &str) -> Vec<String> {
    let (_, usage) = admin(node, api(Method::GET, &format!("{prefix}/usage"), "")).await;
    usage["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["app"].as_str().unwrap().to_owned())
        .collect()
}

fn api(method: Method, path: &str, body: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap()
}

/// A request through the gateway: status and body.
async fn gateway(node: &Stratus, method: Method, path: &str, body: &str) -> (StatusCode, String) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let response = node.gateway().handle_request(request).await;
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

const TEAM_A: &str = "/v1/namespaces/team-a";
const TEAM_B: &str = "/v1/namespaces/team-b";

/// `default` and `team-a` each deploy an app `shop`; `team-b` deploys
/// `other`.
async fn two_shops() -> (Stratus, tempfile::TempDir) {
    let (node, dir) = node().await;
    let (status, body) = admin(&node, deploy("/v1", &manifest("shop", "/shop"))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        (body["app"].as_str(), body["namespace"].as_str()),
        (Some("shop"), Some("default"))
    );
    let (status, body) = admin(&node, deploy(TEAM_A, &manifest("shop", "/a-shop"))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        (body["app"].as_str(), body["namespace"].as_str()),
        (Some("team-a/shop"), Some("team-a"))
    );
    let (status, body) = admin(&node, deploy(TEAM_B, &manifest("other", "/b-other"))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (node, dir)
}

fn names(list: &serde_json::Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_namespaces_hold_apps_of_one_name_apart() {
    let (node, _dir) = two_shops().await;

    // Listings show each namespace its own apps; `/v1` is `default`.
    let (_, apps) = admin(&node, api(Method::GET, "/v1/apps", "")).await;
    assert_eq!(names(&apps), ["shop"]);
    let (_, same) = admin(&node, api(Method::GET, "/v1/namespaces/default/apps", "")).await;
    assert_eq!(apps, same);
    let (_, apps) = admin(&node, api(Method::GET, &format!("{TEAM_A}/apps"), "")).await;
    assert_eq!(names(&apps), ["team-a/shop"]);
    assert_eq!(apps[0]["namespace"], "team-a");
    let (_, namespaces) = admin(&node, api(Method::GET, "/v1/namespaces", "")).await;
    assert_eq!(
        namespaces,
        serde_json::json!([
            {"name": "default", "apps": 1},
            {"name": "team-a", "apps": 1},
            {"name": "team-b", "apps": 1},
        ])
    );

    // Key-value data: each `shop` writes its own `default` bucket.
    for (route, value) in [("/shop", "default's"), ("/a-shop", "team-a's")] {
        let (status, body) = gateway(
            &node,
            Method::POST,
            &format!("{route}/set?bucket=default&key=k"),
            value,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{route}: {body}");
    }
    for (route, value) in [("/shop", "default's"), ("/a-shop", "team-a's")] {
        let got = gateway(
            &node,
            Method::GET,
            &format!("{route}/get?bucket=default&key=k"),
            "",
        )
        .await;
        assert_eq!(got, (StatusCode::OK, value.to_owned()), "{route}");
    }

    // Secrets: set in team-a, not there for default's shop.
    let (status, body) = admin(
        &node,
        api(
            Method::PUT,
            &format!("{TEAM_A}/apps/shop/secrets/token"),
            "a-secret",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, listed) = admin(&node, api(Method::GET, "/v1/apps/shop/secrets", "")).await;
    assert_eq!(listed, serde_json::json!([]));
    let (_, listed) = admin(
        &node,
        api(Method::GET, &format!("{TEAM_A}/apps/shop/secrets"), ""),
    )
    .await;
    assert_eq!(listed[0]["name"], "token", "{listed}");
    assert_eq!(
        gateway(&node, Method::GET, "/a-shop/config?key=token", "").await,
        (StatusCode::OK, "a-secret".to_owned())
    );
    let (status, _) = gateway(&node, Method::GET, "/shop/config?key=token", "").await;
    assert_ne!(
        status,
        StatusCode::OK,
        "default's shop reads no team-a secret"
    );

    // Versions, deletion: deleting default's shop leaves team-a's serving.
    let (status, body) = admin(&node, api(Method::DELETE, "/v1/apps/shop", "")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let got = gateway(&node, Method::GET, "/a-shop/get?bucket=default&key=k", "").await;
    assert_eq!(got, (StatusCode::OK, "team-a's".to_owned()));
    let (status, body) = admin(
        &node,
        api(Method::GET, &format!("{TEAM_A}/apps/shop/versions"), ""),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body.as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_of_another_namespace_is_reached_or_revealed() {
    let (node, _dir) = two_shops().await;

    // Names that carry a namespace are refused as names, never taken as
    // another namespace's key.
    for path in [
        "/v1/apps/team-a%2Fshop",
        "/v1/namespaces/team-b/apps/team-a%2Fshop",
        "/v1/namespaces/team-b/apps/shop",
        "/v1/namespaces/team-b/apps/shop/versions",
    ] {
        let (status, body) = admin(&node, api(Method::GET, path, "")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(body["error"]["code"], "app_not_found", "{path}: {body}");
    }
    let (status, body) = admin(&node, api(Method::DELETE, "/v1/apps/team-a%2Fshop", "")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = admin(
        &node,
        api(
            Method::PUT,
            "/v1/apps/team-a%2Fshop/secrets/token",
            "stolen",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = admin(&node, api(Method::GET, "/v1/namespaces/Team-A/apps", "")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("namespace"),
        "{body}"
    );

    // Functions: team-b finds no `store` of `shop`; team-a does.
    for name in ["store", "shop%2Fstore"] {
        let path = format!(
            "{TEAM_B}/functions/{name}/invocations?method=GET&path=/shop/get%3Fbucket%3Ddefault%26key%3Dk"
        );
        let (status, body) = admin(&node, api(Method::POST, &path, "")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    let (_, functions) = admin(&node, api(Method::GET, &format!("{TEAM_B}/functions"), "")).await;
    let apps: Vec<&str> = functions
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["app"].as_str().unwrap())
        .collect();
    assert_eq!(apps, ["team-b/other"]);

    // An async invocation's event and its invocation are team-a's alone.
    let (status, accepted) = admin(
        &node,
        api(Method::POST, &format!("{TEAM_A}/functions/store/invocations?mode=async&path=/a-shop/keys%3Fbucket%3Ddefault"), ""),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let location = accepted["status_url"].as_str().unwrap().to_owned();
    assert!(
        location.starts_with("/v1/namespaces/team-a/events/"),
        "{location}"
    );
    let id = accepted["id"].as_str().unwrap();
    let (status, _) = admin(&node, api(Method::GET, &location, "")).await;
    assert_eq!(status, StatusCode::OK);
    for other in ["/v1", TEAM_B] {
        let (status, body) =
            admin(&node, api(Method::GET, &format!("{other}/events/{id}"), "")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{other}: {body}");
    }

    // A sync invocation: its record and logs are team-a's.
    let response = node
        .admin()
        .oneshot(api(Method::POST, &format!("{TEAM_A}/functions/store/invocations?method=GET&path=/a-shop/keys%3Fbucket%3Ddefault"), ""))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let invocation = response.headers()["x-stratus-invocation-id"]
        .to_str()
        .unwrap()
        .to_owned();
    // Recorded when its body has been sent.
    response.into_body().collect().await.unwrap();
    // Recorded once the ledger's writer has it: wait for that.
    let own = format!("{TEAM_A}/invocations/{invocation}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, body) = admin(&node, api(Method::GET, &own, "")).await;
        if status == StatusCode::OK {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never recorded: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for other in ["/v1", TEAM_B] {
        let (status, body) = admin(
            &node,
            api(
                Method::GET,
                &format!("{other}/invocations/{invocation}"),
                "",
            ),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{other}: {body}");
    }

    // Usage: each namespace sees its own apps only (team-b's once it has
    // any, so its report is not empty by default).
    // Whatever it answers, the invocation is counted.
    gateway(&node, Method::GET, "/b-other/echo", "").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let rows = loop {
        let rows = usage_apps(&node, TEAM_B).await;
        if !rows.is_empty() {
            break rows;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "team-b's use never counted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(rows, ["team-b/other"]);
    let rows = usage_apps(&node, TEAM_A).await;
    assert!(
        rows.contains(&"team-a/shop".to_owned()) && rows.iter().all(|app| app == "team-a/shop"),
        "{rows:?}"
    );
    let (_, usage) = admin(
        &node,
        api(Method::GET, &format!("{TEAM_B}/usage?app=shop"), ""),
    )
    .await;
    assert_eq!(usage["total"]["requests"], 0, "{usage}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_another_namespace_serves_is_refused_without_naming_its_app() {
    let (node, _dir) = two_shops().await;
    let (status, body) = admin(&node, deploy(TEAM_B, &manifest("thief", "/a-shop"))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "route_conflict");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("\"/a-shop/...\""), "{message}");
    assert!(message.contains("another namespace"), "{message}");
    assert!(
        !message.contains("team-a") && !message.contains("shop\""),
        "{message}"
    );
    // Nothing was deployed, and the owner and a neighbour keep answering.
    let (_, apps) = admin(&node, api(Method::GET, &format!("{TEAM_B}/apps"), "")).await;
    assert_eq!(names(&apps), ["team-b/other"]);
    let (status, _) = gateway(&node, Method::GET, "/a-shop/keys?bucket=default", "").await;
    assert_eq!(status, StatusCode::OK);
    // Whatever it answers, the invocation is counted.
    gateway(&node, Method::GET, "/b-other/echo", "").await;

    // Within a namespace the conflict names the app, as it always did.
    let (status, body) = admin(&node, deploy(TEAM_A, &manifest("twin", "/a-shop"))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("\"team-a/shop\""), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_description_has_every_namespace_endpoint() {
    let (node, _dir) = node().await;
    let (status, doc) = admin(&node, api(Method::GET, "/v1/openapi.json", "")).await;
    assert_eq!(status, StatusCode::OK);
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/v1/namespaces/{namespace}/apps",
        "/v1/namespaces/{namespace}/apps/{app}/secrets/{name}",
        "/v1/namespaces/{namespace}/functions/{function}/logs",
        "/v1/namespaces/{namespace}/usage",
        "/v1/namespaces",
    ] {
        assert!(paths.contains_key(path), "{path} is not described");
    }
    assert!(!paths.contains_key("/v1/namespaces/{namespace}/nodes"));
    let mut ids: Vec<&str> = paths
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|op| op.get("operationId").and_then(|id| id.as_str()))
        .collect();
    let count = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), count, "operation ids are unique");
}

/// A GET through the gateway with a `Host` header.
async fn get_on(node: &Stratus, host: &str, path: &str) -> (StatusCode, String) {
    let request = Request::get(path)
        .header(header::HOST, host)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = node.gateway().handle_request(request).await;
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The capabilities guest as app `app` with exactly `routes`.
fn routed(app: &str, routes: &str) -> String {
    manifest(app, "/unused").replace(
        "routes = [\"/unused/...\"]",
        &format!("routes = [{routes}]"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_belongs_to_one_namespace_and_its_routes_come_first() {
    let (node, _dir) = node().await;
    let (status, body) = admin(&node, deploy("/v1", &routed("plain", "\"/orders/...\""))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = admin(
        &node,
        deploy(TEAM_A, &routed("shop", "\"shop.test/orders/...\"")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["functions"][0]["routes"][0], "shop.test/orders/...");
    let (status, _) = admin(
        &node,
        api(
            Method::PUT,
            &format!("{TEAM_A}/apps/shop/secrets/token"),
            "team-a",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // The host's route serves it, whatever the case or port it is written
    // with; every other host gets the route without a host.
    for host in ["shop.test", "SHOP.test:8080", "shop.test."] {
        let got = get_on(&node, host, "/orders/config?key=token").await;
        assert_eq!(got, (StatusCode::OK, "team-a".to_owned()), "{host}");
    }
    for host in ["other.test", "shop.test.evil", "127.0.0.1:8080"] {
        let (status, body) = get_on(&node, host, "/orders/config?key=token").await;
        assert_ne!(status, StatusCode::OK, "{host}: {body}");
        assert_ne!(body, "team-a", "{host}");
    }
    let (status, _) = get_on(&node, "shop.test", "/elsewhere").await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a host's app serves only its routes"
    );

    // Another namespace cannot take the host, even for a path it lacks.
    let (status, body) = admin(
        &node,
        deploy(TEAM_B, &routed("thief", "\"shop.test/billing/...\"")),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("another namespace"), "{message}");
    assert!(!message.contains("team-a"), "{message}");
    // Its own namespace's other apps can.
    let (status, body) = admin(
        &node,
        deploy(TEAM_A, &routed("billing", "\"shop.test/billing/...\"")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = get_on(&node, "shop.test", "/billing/keys?bucket=default").await;
    assert_eq!(status, StatusCode::OK);
    // And the neighbour without a host keeps answering.
    let (status, _) = get_on(&node, "other.test", "/orders/keys?bucket=default").await;
    assert_eq!(status, StatusCode::OK);

    // Another namespace's catch-all without a host serves every host but
    // the ones a namespace holds: it never sees a request (or the cookies)
    // meant for team-a's domain.
    let (status, body) = admin(&node, deploy(TEAM_B, &routed("everything", "\"/...\""))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = get_on(&node, "other.test", "/elsewhere/keys?bucket=default").await;
    assert_eq!(status, StatusCode::OK, "the catch-all serves other hosts");
    for path in ["/elsewhere/keys?bucket=default", "/"] {
        let (status, body) = get_on(&node, "shop.test", path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    // team-a's own routes on its host still answer.
    let (status, _) = get_on(&node, "shop.test", "/billing/keys?bucket=default").await;
    assert_eq!(status, StatusCode::OK);
}
