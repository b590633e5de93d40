//! Every bad deploy gets a clear message and changes nothing.

use crate::common::*;

fn app_with_component(bytes: &[u8]) -> AppDir {
    let app = AppDir::new(
        "[app]\nname = \"bad\"\n\n[[function]]\nname = \"f\"\ncomponent = \"f.wasm\"\nroutes = [\"/bad\"]\n",
    );
    app.write("f.wasm", bytes);
    app
}

#[test]
fn garbage_bytes() {
    let server = Server::start();
    let err = server.deploy_err(app_with_component(b"definitely not wasm").path());
    assert!(err.contains("function \"f\""), "{err}");
    assert!(err.contains("not WebAssembly"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one sentence: {err}");
}

#[test]
fn a_core_module() {
    let server = Server::start();
    let err = server.deploy_err(app_with_component(&wat::parse_str("(module)").unwrap()).path());
    assert!(
        err.contains("core WebAssembly module without a component type"),
        "{err}"
    );
    assert!(err.contains("wasm32-wasip2"), "{err}");
}

#[tokio::test]
async fn a_wasi_0_3_component_is_named_as_such_and_the_neighbour_serves() {
    let server = Server::start();
    server.deploy(testbed_app("neighbour", "api", &["/n/..."], "").path());
    // Component-model async, what every WASI 0.3 component is built on.
    let wasm = wat::parse_str("(component (type (stream u8)))").unwrap();
    let err = server.deploy_err(app_with_component(&wasm).path());
    assert!(err.contains("function \"f\""), "{err}");
    assert!(err.contains("WASI 0.3"), "{err}");
    assert!(err.contains("Stratus serves WASI 0.2"), "{err}");
    assert_eq!(server.get("/n/echo").await.status(), 200);
    assert_eq!(server.get("/bad").await.status(), 404);
}

#[test]
fn a_command_component_of_the_wrong_world() {
    let server = Server::start();
    let bytes = std::fs::read(test_guest("cli-command")).unwrap();
    let err = server.deploy_err(app_with_component(&bytes).path());
    assert!(
        err.contains("does not export `wasi:http/incoming-handler"),
        "{err}"
    );
    assert!(err.contains("wasi:cli/run"), "{err}");
}

#[test]
fn a_manifest_with_an_unknown_key() {
    let server = Server::start();
    let app = AppDir::new(
        "[app]\nname = \"bad\"\n\n[[function]]\nname = \"f\"\ncomponent = \"f.wasm\"\nrouts = [\"/bad\"]\n",
    );
    let err = server.deploy_err(app.path());
    assert!(err.contains("routs"), "{err}");
    assert!(err.contains(":7:"), "names the line: {err}");
}

#[test]
fn the_server_validates_manifests_too() {
    // A client that skips local checks (curl in CI) gets the same message.
    let server = Server::start();
    let form = reqwest::blocking::multipart::Form::new()
        .text("manifest", "[app]\nname = \"bad\"\ncolour = \"red\"\n");
    tls_provider();
    let response = reqwest::blocking::Client::new()
        .post(server.admin_url("/v1/apps"))
        .bearer_auth(TOKEN)
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(response.status(), 422);
    let body: serde_json::Value = response.json().unwrap();
    assert_eq!(body["error"]["code"], "invalid_manifest");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("colour"),
        "{body}"
    );
}

#[test]
fn a_missing_component_file() {
    let server = Server::start();
    let app = AppDir::new(
        "[app]\nname = \"bad\"\n\n[[function]]\nname = \"f\"\ncomponent = \"target/missing.wasm\"\nroutes = [\"/bad\"]\n",
    );
    let err = server.deploy_err(app.path());
    assert!(err.contains("missing.wasm"), "{err}");
    assert!(err.contains("\"f\""), "{err}");
}

#[test]
fn a_route_claimed_by_another_app() {
    let server = Server::start();
    server.deploy(testbed_app("first", "one", &["/shared/..."], "").path());
    let err = server.deploy_err(testbed_app("second", "two", &["/shared/..."], "").path());
    assert!(
        err.contains("\"first\"") && err.contains("\"second\""),
        "{err}"
    );
    assert!(err.contains("/shared/..."), "{err}");
    let out = server.cli(&["apps", "--format", "json"]);
    let apps: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        apps.as_array().unwrap().len(),
        1,
        "the refused app left no trace"
    );
}

#[test]
fn an_unknown_app() {
    let server = Server::start();
    for args in [
        &["versions", "ghost"][..],
        &["rollback", "ghost"],
        &["delete", "ghost"],
    ] {
        let out = server.cli(args);
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(
            err.contains("app \"ghost\" does not exist"),
            "{args:?}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}

#[test]
fn an_oversized_upload() {
    let server = Server::start_with(&["--max-upload", "16KiB"]);
    let err = server.deploy_err(testbed_app("big", "big", &["/big"], "").path());
    assert!(err.contains("larger than this node accepts"), "{err}");
}

#[test]
fn an_unreachable_server() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stratus"))
        .args(["apps", "--server", "http://127.0.0.1:9", "--token", "x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("cannot reach the Stratus admin API at http://127.0.0.1:9"),
        "{err}"
    );
}

#[test]
fn a_busy_port_is_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let err = server_refuses(&["--listen", &addr], &[]);
    assert!(err.contains(&addr) && err.contains("--listen"), "{err}");
}

#[test]
fn a_bad_broker_address_stops_the_node_naming_the_flag() {
    for (flag, value, expected) in [
        (
            "--mqtt-url",
            "http://broker:1883",
            "--mqtt-url: \"http://broker:1883\" is not an mqtt:// address",
        ),
        (
            "--nats-url",
            "nats://host:port",
            "--nats-url \"nats://host:port\": NATS server URL is invalid",
        ),
    ] {
        let err = server_refuses(&[flag, value], &[]);
        assert!(err.contains(expected), "{err}");
    }
}

#[test]
fn bad_key_value_and_secrets_settings_stop_the_node_saying_why() {
    for (args, key, expected) in [
        (
            &["--keyvalue-url", "redis://cache:6379"][..],
            None,
            "--keyvalue-url \"redis://cache:6379\" is given but the key-value store is SQLite",
        ),
        (
            &["--keyvalue", "redis", "--keyvalue-url", "not a url"][..],
            None,
            "invalid Redis URL \"not a url\"",
        ),
        (
            &[][..],
            Some("c2hvcnQ="),
            "the secrets key in $STRATUS_SECRETS_KEY is not valid: 5 bytes instead of 32",
        ),
    ] {
        let env = [("STRATUS_KEYVALUE_URL", None), ("STRATUS_SECRETS_KEY", key)];
        let err = server_refuses(args, &env);
        assert!(err.contains(expected), "{err}");
    }
}
