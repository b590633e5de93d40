//! Writing functions: `stratus new` in Rust, Python and JavaScript, each
//! template built by its own toolchain (cargo, componentize-py, jco with
//! componentize-js), deployed and answering; and the python-notes and
//! js-counter examples using key-value and config through the node.
//!
//! The Python and JavaScript tests need the toolchains that
//! `scripts/guest-toolchains.sh` installs (scripts/test.sh runs it first).
//! Without them they are skipped with a note, except under CI, where a
//! missing toolchain is a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use crate::common::*;

/// The componentize-py version the script installs and the templates name.
const COMPONENTIZE_PY: &str = "componentize-py 0.25.1";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Toolchain {
    Python,
    Js,
}

/// Whether a toolchain is installed; when it is not, says so, and fails
/// under CI, where scripts/guest-toolchains.sh has installed it.
fn available(toolchain: Toolchain) -> bool {
    let found = match toolchain {
        Toolchain::Python => Command::new("componentize-py")
            .arg("--version")
            .output()
            .is_ok_and(|out| stdout(&out).trim() == COMPONENTIZE_PY),
        Toolchain::Js => {
            repo_root().join("examples/node_modules/.bin/jco").exists()
                && Command::new("npm").arg("--version").output().is_ok()
        }
    };
    if !found {
        let what = match toolchain {
            Toolchain::Python => COMPONENTIZE_PY,
            Toolchain::Js => "npm and examples/node_modules (jco, componentize-js)",
        };
        assert!(
            std::env::var_os("CI").is_none(),
            "{what} is missing; scripts/guest-toolchains.sh installs it"
        );
        eprintln!("skipped: {what} is not installed (bash scripts/guest-toolchains.sh)");
    }
    found
}

/// Builds the python-notes and js-counter examples when out of date (once
/// per test binary), with the tools that are installed.
fn guest_examples() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = Command::new("bash")
            .arg(repo_root().join("scripts/guest-toolchains.sh"))
            .arg("--no-install")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "scripts/guest-toolchains.sh --no-install failed: {}{}",
            stdout(&out),
            stderr(&out)
        );
    });
}

/// Runs `stratus new` in `dir`.
fn stratus_new(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stratus"))
        .arg("new")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// Creates a function with `stratus new` in a temporary directory.
fn new_function(language: &str, name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let out = stratus_new(tmp.path(), &[language, name]);
    assert!(out.status.success(), "stratus new failed: {}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("function \"{name}\" in {name}")),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("stratus up"), "{}", stdout(&out));
    let dir = tmp.path().join(name);
    assert!(dir.join("stratus.toml").is_file());
    (tmp, dir)
}

/// Runs a command in `dir` as `sh -c`, as `stratus up` runs a `build`, and
/// asserts that it succeeds. The guest build is independent of how the test
/// itself was built.
fn sh(dir: &Path, command: &str) {
    let started = std::time::Instant::now();
    let out = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "`{command}` failed in {}: {}{}",
        dir.display(),
        stdout(&out),
        stderr(&out)
    );
    eprintln!("`{command}` took {:?}", started.elapsed());
}

/// Runs the `build` command of the function's manifest.
fn build(dir: &Path) {
    let loaded = stratus_manifest::Manifest::load(&dir.join("stratus.toml")).unwrap();
    let command = loaded.manifest.functions[0].build.clone().unwrap();
    sh(dir, &command);
}

/// Deploys `dir` and checks that `path` answers the template's greeting.
async fn deploys_and_greets(dir: &Path, name: &str, path: &str) {
    let server = Server::start();
    let out = server.deploy(dir);
    assert!(out.contains(&format!("Deployed {name} version 1")), "{out}");
    let response = server.get(path).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let body = response.text().await.unwrap();
    assert_eq!(body, format!("Hello from {name}!\nGET {path}\n"));
}

#[tokio::test]
async fn new_rust_function_builds_deploys_and_answers() {
    let _cores = busy().await;
    let (_tmp, dir) = new_function("rust", "hello-rs");
    assert!(dir.join("Cargo.toml").is_file() && dir.join("src/lib.rs").is_file());
    build(&dir);
    assert!(
        dir.join("target/wasm32-wasip2/release/hello_rs.wasm")
            .is_file()
    );
    deploys_and_greets(&dir, "hello-rs", "/hello-rs/x?y=1").await;
}

#[tokio::test]
async fn new_python_function_builds_deploys_and_answers() {
    let _cores = busy().await;
    if !available(Toolchain::Python) {
        return;
    }
    let (_tmp, dir) = new_function("python", "hello-py");
    assert!(dir.join("wit/deps/http.wit").is_file());
    build(&dir);
    deploys_and_greets(&dir, "hello-py", "/hello-py/x?y=1").await;
}

#[tokio::test]
async fn new_js_function_builds_deploys_and_answers() {
    let _cores = busy().await;
    if !available(Toolchain::Js) {
        return;
    }
    let (_tmp, dir) = new_function("js", "hello-js");
    // The user's `npm install`. The template's lock file pins exactly what
    // examples/package-lock.json pins (a unit test of `stratus new` checks
    // it), and scripts/guest-toolchains.sh has installed that with `npm ci`
    // into examples/node_modules: the same tree, linked here instead of
    // installed again (twelve seconds of the suite's two cores).
    std::os::unix::fs::symlink(
        repo_root().join("examples/node_modules"),
        dir.join("node_modules"),
    )
    .unwrap();
    build(&dir);
    deploys_and_greets(&dir, "hello-js", "/hello-js/x?y=1").await;
}

#[test]
fn new_refuses_bad_names_and_existing_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let out = stratus_new(tmp.path(), &["rust", "Hello_World"]);
    assert!(!out.status.success());
    let error = stderr(&out);
    assert!(
        error.contains("\"Hello_World\" is not a valid function name")
            && error.contains("lowercase ASCII letters, digits and '-'"),
        "{error}"
    );
    let out = stratus_new(tmp.path(), &["rust", "fn"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot name a Rust crate"),
        "{}",
        stderr(&out)
    );
    let out = stratus_new(tmp.path(), &["cobol", "hello"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("possible values: rust, python, js"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);

    // An existing directory is left alone, even when it is empty.
    let existing = tmp.path().join("mine");
    std::fs::create_dir(&existing).unwrap();
    std::fs::write(existing.join("keep.txt"), "mine").unwrap();
    for args in [
        &["python", "mine"][..],
        &["js", "other", "--dir", "mine"][..],
    ] {
        let out = stratus_new(tmp.path(), args);
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains("mine already exists"),
            "{}",
            stderr(&out)
        );
    }
    let entries: Vec<_> = std::fs::read_dir(&existing).unwrap().collect();
    assert_eq!(entries.len(), 1);

    // --dir names the directory, creating its parents.
    let out = stratus_new(tmp.path(), &["py", "other", "--dir", "fns/other-dir"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let manifest = std::fs::read_to_string(tmp.path().join("fns/other-dir/stratus.toml")).unwrap();
    assert!(manifest.contains("name = \"other\""), "{manifest}");
}

/// A complete answer is metered as one: status 200 and no error. (A
/// JavaScript component's body ends with its `content-length`, after which
/// hyper drops it unpolled; that once read as a client that hung up.)
async fn assert_clean_record(server: &Server, response: &reqwest::Response) {
    let record = server.invocation(&invocation_id(response)).await;
    assert_eq!(record["status"], 200, "{record}");
    assert!(record["error"].is_null(), "{record}");
}

fn parse(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[tokio::test]
async fn python_notes_round_trip_through_key_value_and_read_config() {
    let _cores = busy().await;
    if !available(Toolchain::Python) {
        return;
    }
    guest_examples();
    let server = Server::start();
    let out = server.deploy(&repo_root().join("examples/python-notes"));
    assert!(out.contains("Deployed python-notes version 1"), "{out}");

    let hello = server.get("/py/hello").await;
    assert_eq!(hello.status(), 200);
    assert_clean_record(&server, &hello).await;
    // CPython fits its 32 MiB cap with room to spare.
    let billed = hello.headers()["x-stratus-billed"]
        .to_str()
        .unwrap()
        .to_string();
    let mib: u64 = billed
        .split("memory-mib=")
        .nth(1)
        .and_then(|m| m.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("no memory-mib in {billed}"));
    assert!((1..=24).contains(&mib), "peak memory {mib} MiB");
    assert_eq!(hello.text().await.unwrap(), "Hello from Python\n");

    let (status, body) = server.send("GET", "/py/notes/missing", b"").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(parse(&body)["error"]["code"], "note_not_found");

    let (status, body) = server
        .send("PUT", "/py/notes/first", "one ✓".as_bytes())
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        parse(&body),
        serde_json::json!({"key": "first", "bytes": "one ✓".len()})
    );
    // Each request is a fresh instance: the note lives in the node's store.
    assert_eq!(
        server.send("GET", "/py/notes/first", b"").await,
        (200, "one ✓".to_string())
    );
    server.send("PUT", "/py/notes/second", b"two").await;
    server.send("PUT", "/py/notes/first", b"uno").await;
    assert_eq!(
        server.send("GET", "/py/notes/first", b"").await,
        (200, "uno".to_string())
    );
    let (status, body) = server.send("GET", "/py/notes", b"").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        parse(&body),
        serde_json::json!({"keys": ["first", "second"]})
    );

    let (status, _) = server.send("DELETE", "/py/notes/first", b"").await;
    assert_eq!(status, 204);
    assert_eq!(server.send("GET", "/py/notes/first", b"").await.0, 404);
    let (_, body) = server.send("GET", "/py/notes", b"").await;
    assert_eq!(parse(&body), serde_json::json!({"keys": ["second"]}));

    let (status, body) = server.send("POST", "/py/notes/first", b"x").await;
    assert_eq!(status, 405, "{body}");
    assert_eq!(parse(&body)["error"]["code"], "method_not_allowed");
}

#[tokio::test]
async fn js_counter_increments_atomically_and_reads_config() {
    let _cores = busy().await;
    if !available(Toolchain::Js) {
        return;
    }
    guest_examples();
    let server = Server::start();
    let out = server.deploy(&repo_root().join("examples/js-counter"));
    assert!(out.contains("Deployed js-counter version 1"), "{out}");

    let hello = server.get("/js/hello").await;
    assert_clean_record(&server, &hello).await;
    assert_eq!(hello.status(), 200);
    assert_eq!(hello.text().await.unwrap(), "Hello from JavaScript\n");
    for expected in 1..=3 {
        let (status, body) = server.send("POST", "/js/count/alice", b"").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            parse(&body),
            serde_json::json!({"name": "alice", "count": expected})
        );
    }
    // A read (an increment by 0) changes nothing; counters are separate.
    let (_, body) = server.send("GET", "/js/count/alice", b"").await;
    assert_eq!(parse(&body)["count"], 3);
    let (_, body) = server.send("GET", "/js/count/bob", b"").await;
    assert_eq!(parse(&body)["count"], 0);

    // Concurrent increments are not lost.
    let posts = (0..20).map(|_| server.send("POST", "/js/count/bob", b""));
    for (status, body) in futures_util::future::join_all(posts).await {
        assert_eq!(status, 200, "{body}");
    }
    let (_, body) = server.send("GET", "/js/count/bob", b"").await;
    assert_eq!(parse(&body)["count"], 20);

    let (status, body) = server.send("POST", "/js/count/no%20spaces", b"").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(parse(&body)["error"]["code"], "invalid_name");
    let (status, body) = server.send("DELETE", "/js/count/alice", b"").await;
    assert_eq!(status, 405, "{body}");
}

/// A componentize-js guest cannot serve a second request on one instance
/// (StarlingMonkey returns from its second `handle` without answering).
/// With `reuse`, that request must fail at once, not wait for the
/// function's timeout, and the function then gets a fresh instance per
/// request: every later request is answered.
#[tokio::test]
async fn js_under_reuse_never_holds_a_request() {
    let _cores = busy().await;
    if !available(Toolchain::Js) {
        return;
    }
    guest_examples();
    let dir = tempfile::tempdir().unwrap();
    let example = repo_root().join("examples/js-counter");
    std::fs::copy(
        example.join("js_counter.wasm"),
        dir.path().join("js_counter.wasm"),
    )
    .unwrap();
    let manifest = std::fs::read_to_string(example.join("stratus.toml")).unwrap();
    let manifest: String = manifest
        .lines()
        .filter(|l| !l.starts_with("build") && !l.starts_with("timeout"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(
        dir.path().join("stratus.toml"),
        format!("{manifest}reuse = 8\ntimeout = \"60s\"\n"),
    )
    .unwrap();
    let server = Server::start();
    server.deploy(dir.path());

    let mut failures = Vec::new();
    for i in 0..12 {
        let started = std::time::Instant::now();
        let (status, body) = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            server.send("GET", "/js/hello", b""),
        )
        .await
        .unwrap_or_else(|_| panic!("request {i} was held (the function's timeout is 60 s)"));
        if status != 200 {
            assert_eq!(status, 502, "{body}");
            assert!(body.contains("reused instance"), "{body}");
            failures.push((i, started.elapsed()));
        }
    }
    // One at most: the first reuse fails, and reuse is given up.
    assert!(
        failures.len() <= 1,
        "more than one request failed: {failures:?}"
    );
    eprintln!("info: failed requests (index, time): {failures:?}");
}

/// `stratus up --watch` on a new Rust function: an edit of its source is
/// rebuilt and served without a restart; a broken edit fails to build,
/// says so, and the last good version keeps answering.
#[tokio::test]
async fn up_watch_rebuilds_an_edit_and_keeps_serving_through_a_broken_one() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    let _cores = busy().await;
    let (tmp, dir) = new_function("rust", "greet");
    let mut up = Command::new(env!("CARGO_BIN_EXE_stratus"))
        .args(["up", "--watch", "greet"])
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .current_dir(tmp.path())
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTFLAGS")
        .env("XDG_RUNTIME_DIR", tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let said = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = BufReader::new(up.stdout.take().unwrap());
    std::thread::spawn({
        let said = said.clone();
        move || {
            for line in reader.lines().map_while(Result::ok) {
                said.lock().unwrap().push(line);
            }
        }
    });
    let waited = |what: &str, done: &dyn Fn(&[String]) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            if done(&said.lock().unwrap()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: {:#?}",
                said.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    waited("up starts", &|lines| {
        lines.iter().any(|l| l.starts_with("Press Ctrl-C"))
    });
    let url = said
        .lock()
        .unwrap()
        .iter()
        .find_map(|l| {
            l.split_whitespace()
                .find(|w| w.starts_with("http://") && w.ends_with("/greet"))
                .map(str::to_owned)
        })
        .expect("up printed the route's URL");
    let http = http_client();
    let answer = || async { http.get(&url).send().await.unwrap().text().await.unwrap() };
    assert!(answer().await.starts_with("Hello from greet!"));

    // An edit is rebuilt and served.
    let source = dir.join("src/lib.rs");
    let text = std::fs::read_to_string(&source).unwrap();
    std::fs::write(&source, text.replace("Hello from", "Howdy from")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while !answer().await.starts_with("Howdy from greet!") {
        assert!(Instant::now() < deadline, "{:#?}", said.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    waited("version 2 reported", &|lines| {
        lines
            .iter()
            .any(|l| l.contains("[watch] app greet version 2 is live"))
    });

    // A broken edit: the build fails, is reported, and version 2 serves on.
    std::fs::write(&source, "this is not Rust").unwrap();
    waited("the failed build reported", &|lines| {
        lines.iter().any(|l| l.contains("[watch] build failed"))
    });
    assert!(answer().await.starts_with("Howdy from greet!"));

    Command::new("kill")
        .args(["-INT", &up.id().to_string()])
        .status()
        .unwrap();
    assert!(up.wait().unwrap().success());
}
