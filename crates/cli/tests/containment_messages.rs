//! Messages an operator can trust, and files only the node's owner can
//! read (issue 11, items 10 and 11): a hostile function's failure is named
//! by its cause in the answer and in its record, what it prints cannot
//! drive the operator's terminal through `stratus logs`, a component too
//! big for the node is refused naming the limit, and the data directory is
//! private. A neighbour app keeps answering throughout.

use crate::common::*;

/// A server with the hostile app and a neighbour app (the testbed).
fn server_with_neighbour() -> Server {
    let server = Server::start();
    server.deploy(hostile_app("hostile", "/hostile/...", "timeout = \"10s\"").path());
    server.deploy(testbed_app("neighbour", "neighbour", &["/neighbour/..."], "").path());
    server
}

async fn neighbour_answers(server: &Server) {
    let response = server.get("/neighbour/echo").await;
    assert_eq!(response.status(), 200, "the neighbour app stopped serving");
}

/// Every text in the invocation's log, one string.
fn log_text(record: &serde_json::Value) -> String {
    record["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line["text"].as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn a_trap_and_an_exit_are_named_by_their_cause() {
    let server = server_with_neighbour();
    neighbour_answers(&server).await;
    for (attack, cause) in [
        ("recurse", "stack overflow"),
        ("exit?code=3", "exited with code 3"),
    ] {
        let response = server.get(&format!("/hostile/{attack}")).await;
        assert_eq!(response.status(), 502, "{attack}");
        let id = invocation_id(&response);
        let body = json(response).await;
        assert_eq!(
            body["error"]["code"], "function_trapped",
            "{attack}: {body}"
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(cause),
            "{attack}: the answer says {message:?}"
        );

        let record = server.invocation(&id).await;
        assert_eq!(record["status"], 502, "{attack}: {record}");
        assert_eq!(record["error"], "function_trapped", "{attack}: {record}");
        let logs = log_text(&record);
        assert!(
            logs.contains(cause),
            "{attack}: the record's log does not name the cause: {logs:?}"
        );
        neighbour_answers(&server).await;
    }
}

#[tokio::test]
async fn logs_show_a_functions_escape_sequences_escaped() {
    let server = server_with_neighbour();
    let response = server.get("/hostile/escape").await;
    assert_eq!(response.status(), 200);
    let id = invocation_id(&response);
    let record = server.invocation(&id).await;
    let raw = log_text(&record);
    assert!(
        raw.contains('\u{1b}') && raw.contains('\u{9b}'),
        "the API keeps the function's bytes as they were: {raw:?}"
    );

    let out = server.cli(&["logs", "hostile", "--invocation", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    for forbidden in [0x1b_u8, 0x9b, 0x07, b'\r'] {
        assert!(
            !out.stdout.contains(&forbidden),
            "byte {forbidden:#04x} reached the terminal: {:?}",
            stdout(&out)
        );
    }
    let text = stdout(&out);
    assert!(
        text.contains(r"before\x1b[2J\x1b]0;owned\x07\x1b[31mred\rafter\u{9b}31m"),
        "{text}"
    );

    // JSON carries the same text, with every control character escaped.
    let out = server.cli(&["logs", "hostile", "--invocation", &id, "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for forbidden in [0x1b_u8, 0x9b, 0x07, b'\r'] {
        assert!(!out.stdout.contains(&forbidden), "{:?}", stdout(&out));
    }
    let line: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(line["text"].as_str().unwrap(), raw);
    neighbour_answers(&server).await;
}

#[tokio::test]
async fn a_component_over_the_nodes_table_limit_is_refused_naming_it() {
    let server = server_with_neighbour();
    let component = wat::parse_str("(component (core module (table 5000000 funcref)))").unwrap();
    let manifest = "[app]\nname = \"big\"\n\n[[function]]\nname = \"f\"\ncomponent = \"f.wasm\"\nroutes = [\"/big\"]\n";
    let (status, body) = server
        .post_deploy(manifest, "f.wasm", component.clone())
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_component", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert_eq!(
        message,
        "function \"f\" (component \"f.wasm\"): the component declares a table of 5000000 elements; this node allows at most 20000 (table_elements)"
    );

    // The CLI shows the same sentence.
    let app = AppDir::new(manifest);
    app.write("f.wasm", &component);
    let err = server.deploy_err(app.path());
    assert!(err.contains("(table_elements)"), "{err}");
    let (_, apps) = server.admin_get("/v1/apps").await;
    assert!(
        !apps.to_string().contains("\"big\""),
        "the refused app left no trace: {apps}"
    );
    neighbour_answers(&server).await;
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_and_its_databases_are_private() {
    use std::os::unix::fs::PermissionsExt;

    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    // A node that chooses its own token, as `stratus server` does without
    // --admin-token (the harness always passes one).
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_stratus"))
        .arg("server")
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(["--max-instances", "8"])
        .env_remove("STRATUS_ADMIN_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let ready = std::io::BufRead::lines(std::io::BufReader::new(stdout))
        .map_while(Result::ok)
        .any(|line| line.contains("admin:"));
    assert!(ready, "the node did not start");
    let token_mode = mode(&data_dir.join("admin-token"));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(token_mode, 0o600, "admin-token");
    assert_eq!(mode(&data_dir), 0o700, "the data directory");

    // The same through the harness, with apps deployed and invoked so that
    // every database has been written (and has its -wal and -shm).
    let server = server_with_neighbour();
    assert_eq!(server.get("/neighbour/echo").await.status(), 200);
    server
        .invocation(&invocation_id(&server.get("/hostile/hi").await))
        .await;
    assert_eq!(mode(&server.data_dir), 0o700, "the data directory");
    let mut databases = Vec::new();
    for entry in std::fs::read_dir(&server.data_dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.contains(".sqlite") || name.starts_with("stratus.db") || name == "secrets.key" {
            assert_eq!(mode(&path), 0o600, "{name}");
            databases.push(name);
        }
    }
    for expected in [
        "stratus.db",
        "ledger.sqlite",
        "queue.sqlite",
        "keyvalue.sqlite",
        "secrets.sqlite",
        "ledger.sqlite-wal",
    ] {
        assert!(
            databases.iter().any(|name| name == expected),
            "{expected} missing among {databases:?}"
        );
    }
}
