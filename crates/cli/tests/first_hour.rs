//! What a new user meets in their first hour (issue 16): a `stratus up`
//! node that the CLI in another shell reaches with no token copied, and the
//! at-a-glance views `stratus functions` and `stratus status`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// The CLI as a second shell of the same user runs it: no token given, its
/// own working directory, and the runtime dir `runtime` (where `up` leaves
/// its token).
fn second_shell(runtime: &Path, server: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stratus"))
        .args(args)
        .current_dir(runtime)
        .env("STRATUS_SERVER", server)
        .env("XDG_RUNTIME_DIR", runtime)
        .env_remove("STRATUS_TOKEN")
        .output()
        .unwrap()
}

#[test]
fn the_cli_in_another_shell_reaches_an_up_node_without_a_token() {
    example_guest("hello");
    let runtime = tempfile::tempdir().unwrap();
    let mut up = Command::new(env!("CARGO_BIN_EXE_stratus"))
        .args(["up", "examples/hello", "--no-build"])
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .current_dir(repo_root())
        .env("XDG_RUNTIME_DIR", runtime.path())
        .env_remove("STRATUS_ADMIN_TOKEN")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut admin = None;
    let mut export = None;
    for line in BufReader::new(up.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(url) = line.trim().strip_prefix("admin:") {
            admin = Some(url.trim().to_string());
        }
        if line.trim().starts_with("export STRATUS_SERVER=") {
            export = Some(line.trim().to_string());
        }
        if line.starts_with("Press Ctrl-C") {
            break;
        }
    }
    let admin = admin.expect("up printed its admin URL");
    let export = export.expect("up printed an export line");
    assert!(
        export.contains(&format!("STRATUS_SERVER={admin} STRATUS_TOKEN=")),
        "{export}"
    );
    let token_file = runtime
        .path()
        .join("stratus")
        .join(format!("up-{}.json", admin.rsplit(':').next().unwrap()));
    assert!(token_file.exists(), "{} missing", token_file.display());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the token file is private: {mode:o}");
    }

    // Another shell: the same user, no token, another directory.
    let out = second_shell(runtime.path(), &admin, &["functions"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listing = stdout(&out);
    assert!(
        listing.contains("hello/hello") && listing.contains("/hello"),
        "{listing}"
    );

    // A shell that does not share the runtime dir (another user, another
    // machine) is told where tokens are, naming both kinds of node.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = second_shell(elsewhere.path(), &admin, &["apps"]);
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(
        message.contains("needs an admin token")
            && message.contains("`stratus server`")
            && message.contains("`stratus up`"),
        "{message}"
    );

    std::process::Command::new("kill")
        .args(["-INT", &up.id().to_string()])
        .status()
        .unwrap();
    assert!(up.wait().unwrap().success());
    assert!(
        !token_file.exists(),
        "the token file is removed when up stops"
    );
}

#[test]
fn a_token_file_left_by_a_killed_up_is_ignored() {
    // `kill -9` leaves the file behind; its process is gone, so the CLI
    // sends no stale token and gives the hint instead.
    let runtime = tempfile::tempdir().unwrap();
    let dir = runtime.path().join("stratus");
    std::fs::create_dir_all(&dir).unwrap();
    let server = Server::start();
    let port = server.admin.rsplit(':').next().unwrap().to_string();
    std::fs::write(
        dir.join(format!("up-{port}.json")),
        format!(r#"{{"pid":{},"admin":"x","token":"{TOKEN}"}}"#, u32::MAX),
    )
    .unwrap();
    let out = second_shell(runtime.path(), &server.admin, &["apps"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("needs an admin token"),
        "{}",
        stderr(&out)
    );
    // So is one that is not what `up` writes.
    std::fs::write(dir.join(format!("up-{port}.json")), "\u{0}garbage{").unwrap();
    let out = second_shell(runtime.path(), &server.admin, &["apps"]);
    assert!(
        stderr(&out).contains("needs an admin token"),
        "{}",
        stderr(&out)
    );
    // The same file with a live process is used.
    std::fs::write(
        dir.join(format!("up-{port}.json")),
        format!(
            r#"{{"pid":{},"admin":"x","token":"{TOKEN}"}}"#,
            std::process::id()
        ),
    )
    .unwrap();
    let out = second_shell(runtime.path(), &server.admin, &["apps"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[tokio::test]
async fn functions_and_status_show_routes_triggers_state_and_the_last_error() {
    let server = Server::start();
    let topic = unique("glance");
    let app = testbed_app(
        "glance",
        "web",
        &["/glance/..."],
        &format!("triggers = [{{ queue = \"jobs\" }}, {{ mqtt = \"{topic}/+\" }}]"),
    );
    server.deploy(app.path());
    server.deploy(testbed_app("idle", "idle", &["/idle"], "").path());
    let failed = server.get("/glance/panic").await;
    assert_eq!(failed.status(), 502);
    let failed_id = invocation_id(&failed);

    // The record (and so the last error) is noted once the invocation
    // ends, a moment after its answer; the MQTT trigger subscribes too.
    let deadline = Instant::now() + Duration::from_secs(20);
    let functions = loop {
        let (status, functions) = server.admin_get("/v1/functions").await;
        assert_eq!(status, 200, "{functions}");
        let web = &functions[0];
        if web["last_error"].is_object() && web["triggers"][1]["state"] == "running" {
            break functions;
        }
        assert!(Instant::now() < deadline, "never settled: {functions}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let names: Vec<&str> = functions
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web", "idle"], "sorted by app: {functions}");
    let web = &functions[0];
    assert_eq!(web["app"], "glance");
    assert_eq!(web["version"], 1);
    assert_eq!(web["routes"], serde_json::json!(["/glance/..."]));
    assert_eq!(web["triggers"][0]["trigger"], "queue \"jobs\"");
    assert!(web["triggers"][0].get("state").is_none(), "{web}");
    assert_eq!(web["triggers"][1]["trigger"], format!("mqtt \"{topic}/+\""));
    assert_eq!(web["state"], "resident");
    assert_eq!(web["in_flight"], 0);
    assert_eq!(web["max_concurrency"], 100);
    assert_eq!(web["last_error"]["code"], "function_trapped");
    assert_eq!(web["last_error"]["status"], 502);
    assert_eq!(web["last_error"]["invocation_id"], failed_id.as_str());
    let idle = &functions[1];
    assert!(idle.get("last_error").is_none(), "{idle}");

    let (status, only) = server.admin_get("/v1/functions?app=idle").await;
    assert_eq!(status, 200);
    assert_eq!(only.as_array().unwrap().len(), 1, "{only}");
    // A hostile filter — long, control characters, bad percent-encoding,
    // repeated, a path in the name — lists nothing or is refused as a client error, and the
    // functions keep answering.
    let long = "%00%ff%zz".repeat(900);
    for query in [
        format!("app={long}"),
        "app=%0a%1b[2J&app=glance".to_string(),
        "app=../glance".to_string(),
        "app=glance%2F..%2Fidle".to_string(),
    ] {
        let response = server
            .http
            .get(server.admin_url(&format!("/v1/functions?{query}")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert!(
            status == 400 || (status == 200 && body == "[]"),
            "{query}: {status} {body}"
        );
    }
    assert_eq!(server.get("/idle").await.status(), 200);

    let out = server.cli(&["functions"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    for needle in [
        "glance/web",
        "/glance/...",
        "function_trapped",
        &failed_id,
        "idle/idle",
    ] {
        assert!(table.contains(needle), "{needle} missing from:\n{table}");
    }
    let out = server.cli(&["functions", "--app", "nope"]);
    assert!(out.status.success());
    assert!(
        stderr(&out).contains("no live functions in app \"nope\""),
        "{}",
        stderr(&out)
    );

    // MQTT is one of the brokers `/readyz` and `stratus status` list.
    let readyz = readyz_until(&server, |b| {
        b["brokers"].as_array().is_some_and(|brokers| {
            brokers
                .iter()
                .any(|b| b["broker"] == "mqtt" && b["connected"] == true)
        })
    })
    .await;
    assert_eq!(readyz["brokers"][0]["connections"], 1, "{readyz}");
    let out = server.cli(&["status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let status = stdout(&out);
    for needle in [
        "ready",
        "2 functions live in 2 apps",
        "1 with an error",
        "mqtt mqtt://127.0.0.1:1883 connected",
        &format!("glance/web mqtt \"{topic}/+\" running"),
        "key-value",
        "problems   none",
    ] {
        assert!(status.contains(needle), "{needle} missing from:\n{status}");
    }
    let out = server.cli(&["status", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["health"]["status"], "ready");
    assert_eq!(json["functions"].as_array().unwrap().len(), 2);
}
