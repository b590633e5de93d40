//! Help and hints for a new user's first hour (issue 16, item 8): each
//! command's help shows only what it takes, said once; a failed build, a
//! wrong file or an empty list says what to do next; a slow deploy says what
//! it is doing.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// The CLI with no node settings from the test's environment.
fn stratus() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stratus"));
    command
        .env_remove("STRATUS_SERVER")
        .env_remove("STRATUS_TOKEN")
        .stdin(Stdio::null());
    command
}

/// Runs `command`, killing it if it has not ended within a minute (a
/// `stratus up` whose build unexpectedly worked would serve forever).
fn output_within_a_minute(mut command: Command) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn help(args: &[&str]) -> String {
    let out = stratus().args(args).arg("--help").output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

#[test]
fn each_command_shows_only_its_options_each_said_once() {
    for local in ["server", "up", "new"] {
        let text = help(&[local]);
        for client_only in ["--server", "--token "] {
            assert!(!text.contains(client_only), "`{local} --help`:\n{text}");
        }
    }
    assert!(help(&["up"]).matches("Admin API token").count() <= 1);
    for client in [
        &["apps"][..],
        &["deploy"],
        &["dlq", "ls"],
        &["secrets", "set"],
    ] {
        let text = help(client);
        assert!(text.contains("--server <URL>"), "{client:?}:\n{text}");
        assert!(
            text.contains("[env: STRATUS_SERVER]"),
            "{client:?}:\n{text}"
        );
        assert!(text.contains("--token <TOKEN>"), "{client:?}:\n{text}");
    }
    for command in [&["apps"][..], &["up"], &["server"], &["usage"]] {
        let text = help(command);
        assert!(
            !text.contains("=]"),
            "{command:?} shows an empty env value:\n{text}"
        );
    }
    let invoke = help(&["invoke"]);
    assert_eq!(invoke.matches("POST").count(), 1, "{invoke}");
    let described = |text: &str, arg: &str, words: &str| {
        text.lines()
            .any(|line| line.contains(arg) && line.contains(words))
    };
    let versions = help(&["versions"]);
    assert!(
        described(&versions, "<APP>", "The app's name"),
        "{versions}"
    );
    let apps = help(&["apps"]);
    assert!(
        described(&apps, "--format <FORMAT>", "How to print"),
        "{apps}"
    );
}

#[test]
fn client_options_work_before_and_after_the_command_name() {
    // Nothing listens on port 9: the message shows which server was used.
    for args in [
        &["apps", "--server", "http://127.0.0.1:9", "--token", "t"][..],
        &["dlq", "--server", "http://127.0.0.1:9", "ls", "f"],
        &["secrets", "ls", "app", "--server", "http://127.0.0.1:9"],
        // The product contract's global options, before the name.
        &["--server", "http://127.0.0.1:9", "--token", "t", "apps"],
        &["--server", "http://127.0.0.1:9", "dlq", "ls", "f"],
    ] {
        let out = stratus().args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        assert!(
            stderr(&out).contains("http://127.0.0.1:9"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    // Before the name, but to a command that talks to no node.
    let out = stratus()
        .args(["--server", "http://127.0.0.1:9", "new", "rust", "x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--server and --token are for the commands that talk to a node"),
        "{}",
        stderr(&out)
    );
    let out = stratus()
        .args(["usage"])
        .env("STRATUS_SERVER", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert!(
        stderr(&out).contains("http://127.0.0.1:9"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_new_js_function_built_before_npm_install_says_to_run_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("greeter");
    let out = stratus()
        .args(["new", "js", "greeter", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mut up = stratus();
    up.arg("up")
        .arg(&dir)
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"]);
    let out = output_within_a_minute(up);
    assert!(!out.status.success());
    let err = stderr(&out);
    let expected = format!("run `npm install` in {} first", dir.display());
    assert!(err.contains(&expected), "{err}");
}

#[test]
fn a_build_program_that_is_not_installed_is_named() {
    let app = AppDir::new(
        "[app]\nname = \"tool\"\n\n[[function]]\nname = \"f\"\ncomponent = \"f.wasm\"\nbuild = \"no-such-tool-16 --out f.wasm\"\nroutes = [\"/f\"]\n",
    );
    let mut up = stratus();
    up.arg("up")
        .arg(app.path())
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"]);
    let out = output_within_a_minute(up);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("`no-such-tool-16` was not found: install it, or put it on the PATH"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_that_is_not_wasm_is_named_by_the_cli_and_the_api() {
    let server = Server::start();
    let manifest = "[app]\nname = \"notes\"\n\n[[function]]\nname = \"f\"\ncomponent = \"notes.txt\"\nroutes = [\"/notes\"]\n";
    let app = AppDir::new(manifest);
    app.write("notes.txt", b"buy milk\n");
    let err = server.deploy_err(app.path());
    assert!(
        err.contains("function \"f\" (component \"notes.txt\"): the file is not WebAssembly"),
        "{err}"
    );
    let (status, body) = server
        .post_deploy(manifest, "notes.txt", b"buy milk\n".to_vec())
        .await;
    assert_eq!(status, 422, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("(component \"notes.txt\")"), "{message}");
}

/// Runs a client command against `server`: its stdout and stderr.
fn client(server: &Server, args: &[&str]) -> (String, String) {
    let out = server.cli(args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    (stdout(&out), stderr(&out))
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_lists_say_what_to_do_and_json_stays_a_list() {
    let server = Server::start();
    let (out, err) = client(&server, &["apps"]);
    assert_eq!(out, "", "stdout stays empty for scripts");
    assert_eq!(
        err.trim(),
        "no apps yet; deploy one with `stratus deploy DIR`"
    );
    let (out, err) = client(&server, &["apps", "--format", "json"]);
    assert_eq!(out.trim(), "[]");
    assert_eq!(err, "");
    let (out, err) = client(&server, &["usage"]);
    assert_eq!(out, "");
    assert!(err.starts_with("no invocations since"), "{err}");

    server.deploy(testbed_app("quiet", "quiet", &["/quiet/..."], "").path());
    for (args, said) in [
        (
            &["secrets", "ls", "quiet"][..],
            "app quiet has no secrets; set one with",
        ),
        (
            &["dlq", "ls", "quiet"],
            "function quiet has no dead letters",
        ),
        (&["logs", "quiet"], "no log lines for function quiet"),
    ] {
        let (out, err) = client(&server, args);
        assert_eq!(out, "", "{args:?}");
        assert!(err.starts_with(said), "{args:?}: {err}");
    }
    let (out, _) = client(&server, &["secrets", "ls", "quiet", "--format", "json"]);
    assert_eq!(out.trim(), "[]");
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_show_utc_dates_and_csv_costs_fixed_decimals() {
    let server = Server::start();
    server.deploy(testbed_app("priced", "priced", &["/priced/..."], "").path());
    let mut set = Command::new(env!("CARGO_BIN_EXE_stratus"))
        .args(["secrets", "set", "priced", "api-key"])
        .env("STRATUS_SERVER", &server.admin)
        .env("STRATUS_TOKEN", TOKEN)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut set.stdin.take().unwrap(), b"s3cret").unwrap();
    assert!(set.wait().unwrap().success());
    let (out, _) = client(&server, &["secrets", "ls", "priced"]);
    let mut lines = out.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["NAME", "UPDATED", "(UTC)"]
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(row[0], "api-key");
    assert!(is_utc_time(&row[1..].join(" ")), "{out}");

    for _ in 0..3 {
        let response = server.get("/priced/echo").await;
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
    }
    server.usage_reaching("", 3).await;
    let (csv, _) = client(&server, &["usage", "--format", "csv"]);
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    let field = |name: &str| row[header.iter().position(|h| *h == name).unwrap()];
    let decimals = |value: &str| value.split_once('.').map_or(0, |(_, d)| d.len());
    assert_eq!(decimals(field("cost")), 9, "{csv}");
    assert!(field("cost").parse::<f64>().unwrap() > 0.0, "{csv}");
    for seconds in ["gb_seconds", "cpu_seconds", "duration_seconds"] {
        assert_eq!(decimals(field(seconds)), 6, "{seconds}: {csv}");
    }
}

/// `YYYY-MM-DD HH:MM:SS`.
fn is_utc_time(text: &str) -> bool {
    text.len() == 19
        && text.char_indices().all(|(i, c)| match i {
            4 | 7 => c == '-',
            10 => c == ' ',
            13 | 16 => c == ':',
            _ => c.is_ascii_digit(),
        })
}

#[test]
fn a_deploy_says_what_it_is_doing_on_a_terminal_only() {
    let server = Server::start();
    let app = testbed_app("slow", "slow", &["/slow"], "");
    // On a terminal (util-linux's `script` runs it on a pseudo-terminal).
    let (ok, shown) = on_a_terminal(&server, app.path());
    assert!(ok, "{shown}");
    assert!(shown.contains(&format!("to {}", server.admin)), "{shown}");
    assert!(shown.contains("uploading"), "{shown}");
    assert!(shown.contains(" [░░░"), "a bar: {shown}");
    assert!(shown.contains("✓ uploaded"), "{shown}");
    assert!(shown.contains("Deployed slow version 1"), "{shown}");
    // Into a pipe: the report alone, stderr empty.
    let out = server.cli(&["deploy", app.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    assert!(stdout(&out).starts_with("Deployed slow version 2"));
}

#[test]
fn a_deploy_on_a_terminal_shows_a_spinner_on_the_function_compiling() {
    let server = Server::start();
    // One core module of 80,000 small functions (under the default limit
    // of 100,000): most of a second to compile on two cores, several
    // spinner frames and looks at the node, then refused for not being an
    // HTTP handler.
    let body = "(func (param i32) (result i32) local.get 0 i32.const 7 i32.mul)";
    let component =
        wat::parse_str(format!("(component (core module {}))", body.repeat(80_000))).unwrap();
    let app = AppDir::new(
        "[app]\nname = \"big\"\n\n[[function]]\nname = \"crunch\"\ncomponent = \"c.wasm\"\nroutes = [\"/big\"]\n",
    );
    app.write("c.wasm", &component);
    let (ok, shown) = on_a_terminal(&server, app.path());
    assert!(!ok, "the component is refused: {shown}");
    assert!(shown.contains("crunch  compiling"), "{shown}");
    assert!(shown.contains("does not export"), "{shown}");
}

/// Runs `stratus deploy` on a pseudo-terminal: whether it succeeded, and
/// all it printed.
fn on_a_terminal(server: &Server, app: &Path) -> (bool, String) {
    let command = format!("{} deploy {}", env!("CARGO_BIN_EXE_stratus"), app.display());
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("STRATUS_SERVER", &server.admin)
        .env("STRATUS_TOKEN", TOKEN)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        format!("{}{}", stdout(&out), stderr(&out)),
    )
}
