//! Versions over time: rollback, atomic activation, restart persistence
//! without recompiling, authentication and graceful shutdown.

use crate::common::*;

fn versioned(version: &str) -> AppDir {
    testbed_app(
        "shop",
        "cart",
        &["/cart/..."],
        &format!("env = {{ WHO = \"v{version}\" }}"),
    )
}

#[tokio::test]
async fn rollback_and_activate_switch_the_live_version() {
    let server = Server::start();
    server.deploy(versioned("1").path());
    let out = server.deploy(versioned("2").path());
    assert!(out.contains("version 2"), "{out}");
    assert_eq!(
        server.get("/cart/env?name=WHO").await.text().await.unwrap(),
        "v2"
    );

    let out = server.cli(&["rollback", "shop"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("now serving version 1"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        server.get("/cart/env?name=WHO").await.text().await.unwrap(),
        "v1"
    );

    let out = server.cli(&["versions", "shop", "--format", "json"]);
    let versions: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let live: Vec<u64> = versions
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["live"] == true)
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(live, vec![1]);

    let out = server.cli(&["rollback", "shop", "--to", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        server.get("/cart/env?name=WHO").await.text().await.unwrap(),
        "v2"
    );

    // Rolling back past the first version is refused with a sentence.
    server.cli(&["rollback", "shop", "--to", "1"]);
    let out = server.cli(&["rollback", "shop"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no earlier version"),
        "{}",
        stderr(&out)
    );

    let out = server.cli(&["apps", "--format", "json"]);
    let apps: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(apps[0]["name"], "shop");
    assert_eq!(apps[0]["versions"], 2);
}

#[tokio::test]
async fn requests_in_flight_finish_on_the_version_they_started_on() {
    let server = Server::start();
    server.deploy(versioned("1").path());
    let http = server.http.clone();
    let url = server.url("/cart/sleep?ms=1500");
    let in_flight = tokio::spawn(async move { http.get(url).send().await.unwrap() });
    server.wait_in_flight("cart", 1).await;
    server.deploy(versioned("2").path());
    assert_eq!(
        server.get("/cart/env?name=WHO").await.text().await.unwrap(),
        "v2"
    );
    let old = in_flight.await.unwrap();
    assert_eq!(old.status(), 200);
    assert_eq!(old.headers()["x-who"], "v1");
}

#[tokio::test]
async fn a_refused_deploy_leaves_the_live_version_serving() {
    let server = Server::start();
    server.deploy(versioned("1").path());
    let broken = AppDir::new(
        "[app]\nname = \"shop\"\n\n[[function]]\nname = \"cart\"\ncomponent = \"cart.wasm\"\nroutes = [\"/cart/...\"]\n",
    );
    broken.write("cart.wasm", &wat::parse_str("(module)").unwrap());
    let err = server.deploy_err(broken.path());
    assert!(err.contains("core WebAssembly module"), "{err}");
    assert_eq!(
        server.get("/cart/env?name=WHO").await.text().await.unwrap(),
        "v1"
    );
    let out = server.cli(&["versions", "shop", "--format", "json"]);
    let versions: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        versions.as_array().unwrap().len(),
        1,
        "no trace of the refused deploy"
    );
}

#[tokio::test]
async fn restart_serves_the_same_apps_without_recompiling() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let app = versioned("1");
    let mut first = Server::start_in(&data, &[]);
    first.deploy(app.path());
    assert_eq!(first.metric("stratus_components_compiled_total").await, 1);
    assert!(first.terminate().success());

    let second = Server::start_in(&data, &[]);
    let response = second.get("/cart/env?name=WHO").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "v1");
    assert_eq!(second.metric("stratus_components_compiled_total").await, 0);
    assert_eq!(
        second
            .metric("stratus_components_loaded_from_cache_total")
            .await,
        1
    );

    // Same bytes deployed again: stored once, compiled zero more times.
    let out = second.deploy(versioned("2").path());
    assert!(out.contains("cached"), "{out}");
    assert_eq!(second.metric("stratus_components_compiled_total").await, 0);
    let blobs = walk_files(&data.join("components"));
    assert_eq!(blobs, 1, "identical components are stored once");
}

fn walk_files(dir: &std::path::Path) -> usize {
    files_under(dir).len()
}

#[tokio::test]
async fn the_admin_api_requires_the_token() {
    let server = Server::start();
    let response = server
        .http
        .get(server.admin_url("/v1/apps"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(json(response).await["error"]["code"], "unauthorized");

    let response = server
        .http
        .get(server.admin_url("/v1/apps"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    let ok = server
        .http
        .get(server.admin_url("/v1/apps"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);

    // Health, readiness and the API description need no token.
    for path in ["/healthz", "/readyz", "/v1/openapi.json", "/metrics"] {
        let response = server
            .http
            .get(server.admin_url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let spec = json(
        server
            .http
            .get(server.admin_url("/v1/openapi.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(spec["paths"]["/v1/apps"]["post"].is_object());

    // The CLI without a token says what to do, in one sentence.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stratus"))
        .args(["apps"])
        .current_dir(std::env::temp_dir())
        .env("STRATUS_SERVER", &server.admin)
        .env_remove("STRATUS_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("needs an admin token"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_requests_in_flight_and_exits_zero() {
    let mut server = Server::start();
    server.deploy(versioned("1").path());
    let http = server.http.clone();
    let url = server.url("/cart/sleep?ms=1000");
    let in_flight = tokio::spawn(async move { http.get(url).send().await.unwrap() });
    server.wait_in_flight("cart", 1).await;
    let status = tokio::task::block_in_place(|| server.terminate());
    assert!(status.success(), "exit status {status}");
    let response = in_flight.await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "slept 1000");
}

#[tokio::test]
async fn invoke_calls_a_function_directly() {
    let server = Server::start();
    server.deploy(versioned("1").path());
    let out = server.cli(&["invoke", "cart", "--path", "/cart/echo", "--data", "ping"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "ping");

    let out = server.cli(&["invoke", "cart", "--path", "/cart/panic"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("trapped"), "{}", stderr(&out));

    let out = server.cli(&["invoke", "nope"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("function \"nope\" is not live"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn show_and_delete_an_app() {
    let server = Server::start_own_cache();
    server.deploy(versioned("1").path());
    let detail = json(
        server
            .http
            .get(server.admin_url("/v1/apps/shop"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(detail["name"], "shop");
    assert_eq!(detail["live_version"], 1);
    assert_eq!(detail["functions"][0]["name"], "cart");
    assert_eq!(detail["functions"][0]["routes"][0], "/cart/...");

    let out = server.cli(&["delete", "shop"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(server.get("/cart/env?name=WHO").await.status(), 404);
    let out = server.cli(&["apps", "--format", "json"]);
    assert_eq!(stdout(&out).trim(), "[]");
    assert_eq!(
        walk_files(&server.data_dir.join("components")),
        0,
        "blobs are removed"
    );
    assert_eq!(
        walk_files(&server.data_dir.join("compiled")),
        0,
        "compiled code is removed"
    );
}

#[test]
fn up_serves_an_app_ready_to_curl_and_cleans_up() {
    use std::io::{BufRead, BufReader};
    example_guest("hello");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_stratus"))
        .args(["up", "examples/hello", "--no-build"])
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .current_dir(repo_root())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut data_dir = None;
    let mut url = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("Stratus is up (data in ") {
            data_dir = rest.split(',').next().map(std::path::PathBuf::from);
        }
        if let Some(at) = line.find("http://") {
            url = Some(line[at..].trim().to_string());
            break;
        }
    }
    let url = url.expect("up printed a URL");
    assert!(url.ends_with("/hello"), "{url}");
    tls_provider();
    let body = reqwest::blocking::get(&url).unwrap().text().unwrap();
    assert!(body.starts_with("Hello from Stratus!"), "{body}");

    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let data_dir = data_dir.expect("up printed its data dir");
    assert!(!data_dir.exists(), "{} was not removed", data_dir.display());
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn a_corrupt_compile_cache_is_rebuilt_on_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut first = Server::start_in(&data, &[]);
    first.deploy(versioned("1").path());
    assert!(first.terminate().success());
    for artifact in files_under(&data.join("compiled")) {
        std::fs::write(&artifact, b"torn write").unwrap();
    }
    let second = Server::start_in(&data, &[]);
    assert_eq!(
        second.get("/cart/env?name=WHO").await.text().await.unwrap(),
        "v1"
    );
    assert_eq!(second.metric("stratus_components_compiled_total").await, 1);
}

#[tokio::test]
async fn an_app_that_cannot_load_is_reported_and_the_others_serve() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut first = Server::start_in(&data, &[]);
    first.deploy(versioned("1").path());
    example_guest("hello");
    first.deploy(&repo_root().join("examples/hello"));
    assert!(first.terminate().success());
    // Lose the compiled code, and let the cart's stored bytes rot.
    std::fs::remove_dir_all(data.join("compiled")).unwrap();
    let testbed = std::fs::read(test_guest("testbed")).unwrap();
    for blob in files_under(&data.join("components")) {
        if std::fs::read(&blob).unwrap() == testbed {
            std::fs::write(&blob, b"bit rot").unwrap();
        }
    }
    let second = Server::start_in(&data, &[]);
    let ready = json(
        second
            .http
            .get(second.admin_url("/readyz"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let problems = ready["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{ready}");
    let problem = problems[0].as_str().unwrap();
    assert!(problem.contains("app \"shop\" is not serving"), "{problem}");
    assert!(problem.contains("not WebAssembly"), "{problem}");
    assert_eq!(ready["live_apps"], 1);
    // The other app serves; the broken one's route answers a JSON 404.
    assert_eq!(second.get("/hello").await.status(), 200);
    assert_eq!(second.get("/cart/env?name=WHO").await.status(), 404);
}

#[tokio::test]
async fn a_deploy_prints_its_capability_gains_and_a_strict_one_fails_on_any() {
    let server = Server::start();
    let first = server.deploy(versioned("1").path());
    assert!(
        first.contains("Capabilities gained over the live version:"),
        "{first}"
    );
    assert!(first.contains("cart: a new function"), "{first}");

    // Same reach: the guard lets it through.
    let same = versioned("2");
    let out = server.cli(&[
        "deploy",
        same.path().to_str().unwrap(),
        "--require-no-new-capabilities",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Capabilities: nothing gained"),
        "{}",
        stdout(&out)
    );

    // More reach: the guard fails the pipeline, naming each gain, and the
    // live version keeps serving.
    let wider = testbed_app(
        "shop",
        "cart",
        &["/cart/...", "/admin/..."],
        "env = { WHO = \"v3\" }\nallowed_outbound = [\"https://payments.example.com\"]",
    );
    let out = server.cli(&[
        "deploy",
        wider.path().to_str().unwrap(),
        "--require-no-new-capabilities",
    ]);
    assert!(!out.status.success());
    let said = stderr(&out);
    assert!(
        said.contains("capabilities_gained") || said.contains("gains capabilities"),
        "{said}"
    );
    assert!(
        said.contains("cart: outbound https://payments.example.com"),
        "{said}"
    );
    assert!(said.contains("cart: route /admin/..."), "{said}");
    let response = server.get("/cart/env?name=WHO").await;
    assert_eq!(
        response.headers()["x-stratus-version"],
        "2",
        "which version answered"
    );
    assert_eq!(response.text().await.unwrap(), "v2");
}

/// The canary loop through the CLI: `deploy --canary` serves a failing
/// version beside the live one, `stratus traffic` shows it, the node rolls
/// it back by itself and `traffic` says why; `traffic APP vN=100` promotes
/// by hand.
#[tokio::test]
async fn a_failing_canary_is_rolled_back_and_the_cli_shows_why() {
    let server = Server::start();
    server.deploy(versioned("1").path());
    let failing = testbed_app(
        "shop",
        "cart",
        &["/cart/..."],
        "env = { WHO = \"v2\", FAIL_PERCENT = \"50\" }",
    );
    let out = server.cli(&[
        "deploy",
        failing.path().to_str().unwrap(),
        "--canary",
        "40",
        "--steps",
        "100",
        "--interval",
        "1h",
        "--min-requests",
        "20",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("a canary: 40% of requests"),
        "{}",
        stdout(&out)
    );
    let shown = stdout(&server.cli(&["traffic", "shop"]));
    assert!(
        shown.contains("shop: v1 live, canary v2 at 40% (then 100% every 3600 s)"),
        "{shown}"
    );
    let apps = stdout(&server.cli(&["apps"]));
    assert!(apps.contains("v2 40%"), "{apps}");

    // Traffic until the node rolls it back; the stable version never fails.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        for _ in 0..20 {
            let response = server.get("/cart/x").await;
            if response.headers()["x-stratus-version"] == "1" {
                assert_eq!(response.status(), 200);
            }
        }
        let shown = stdout(&server.cli(&["traffic", "shop"]));
        if shown.contains("no canary") {
            assert!(shown.contains("rolled_back"), "{shown}");
            assert!(shown.contains("error rate"), "{shown}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never rolled back: {shown}"
        );
    }
    // The version history says why v2 stopped serving.
    let versions = stdout(&server.cli(&["versions", "shop"]));
    assert!(versions.contains("rolled_back: error rate"), "{versions}");
    // A split by hand, then v2 alone: promoted.
    let out = server.cli(&[
        "traffic",
        "shop",
        "v1=80",
        "v2=20",
        "--sticky-cookie",
        "uid",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("sticky by cookie uid"),
        "{}",
        stdout(&out)
    );
    let out = server.cli(&["traffic", "shop", "v2=100"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("shop: v2 live, no canary"),
        "{}",
        stdout(&out)
    );
    let bad = server.cli(&["traffic", "shop", "v1=70", "v2=20"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("add up to 100"), "{}", stderr(&bad));
}
