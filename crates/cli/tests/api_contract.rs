//! The admin API against its own OpenAPI document: schemathesis, a
//! property-based API fuzzer (PyPI, pinned: `scripts/schemathesis.sh`),
//! runs every one of its checks against a live node — every status and
//! body conforms to the document, invalid input is refused with a 4xx,
//! valid input is not, no 5xx, a missing token is refused, links between
//! operations hold — with a bounded number of examples and a fixed seed.
//! Its settings, and why each one, are in `tests/api-contract/`.

use std::process::Command;
use std::time::Instant;

use crate::common::*;

/// Examples per operation and phase: enough to walk every parameter's
/// grammar, few enough for a run of under a minute.
const EXAMPLES: &str = "30";

/// The fuzzer, or `None` where it is not installed and this is not CI.
fn schemathesis() -> Option<String> {
    if let Ok(path) = std::env::var("STRATUS_TEST_SCHEMATHESIS")
        && !path.is_empty()
    {
        return Some(path);
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    assert!(
        !ci,
        "the API contract test needs schemathesis in CI: \
         export STRATUS_TEST_SCHEMATHESIS=\"$(bash scripts/schemathesis.sh)\""
    );
    eprintln!(
        "skipping the API contract test: STRATUS_TEST_SCHEMATHESIS is not set \
         (scripts/test.sh sets it)"
    );
    None
}

/// An app of one function answering every request and event 200 (the
/// `hello` example), at `<route>/…` and from the queue `<function>`:
/// what an invocation answers is the function's, and this one has no
/// failure for the fuzzer to find.
fn hello(app: &str, function: &str, route: &str) -> AppDir {
    AppDir::new(&format!(
        "[app]\nname = \"{app}\"\n\n[[function]]\nname = \"{function}\"\ncomponent = \"{}\"\n\
         routes = [\"{route}/...\"]\ntriggers = [{{ queue = \"{function}\" }}]\n",
        example_guest("hello").display()
    ))
}

#[tokio::test]
async fn the_admin_api_keeps_its_openapi_contract() {
    let Some(st) = schemathesis() else { return };
    let server = Server::start();
    // Something to find, in `default` and in `team-a`: the app the
    // document's examples name (`shop`, whose function `orders` consumes
    // the queue `orders`). And a neighbour in another namespace, which
    // must come through unhurt.
    let apps = [
        ("default", hello("shop", "orders", "/orders")),
        ("team-a", hello("shop", "orders", "/team-a/orders")),
        ("team-b", hello("billing", "invoices", "/invoices")),
    ];
    for (namespace, app) in &apps {
        let out = server.cli(&["deploy", app.path().to_str().unwrap(), "-n", namespace]);
        assert!(out.status.success(), "{namespace}: {}", stderr(&out));
    }

    let config = repo_root().join("tests/api-contract/schemathesis.toml");
    let reports = tempfile::tempdir().unwrap();
    let seed = std::env::var("STRATUS_TEST_SCHEMATHESIS_SEED").unwrap_or_else(|_| "1".into());
    let started = Instant::now();
    let out = Command::new(&st)
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(server.admin_url("/v1/openapi.json"))
        .args([
            "--checks",
            "all",
            "--max-examples",
            EXAMPLES,
            "--seed",
            &seed,
        ])
        // One worker: hypothesis, under schemathesis's threads, sometimes
        // fails inside Python's own parser (a tool error, not a finding).
        .args(["--workers", "1", "--no-color", "--output-truncate", "false"])
        .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
        .arg("--report-dir")
        .arg(reports.path())
        // Its cache (`.schemathesis/`) goes where it runs: not the repo.
        .current_dir(reports.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let report = format!("{}\n{}", stdout(&out), stderr(&out));
    eprintln!(
        "schemathesis ran {:.0} s:\n{report}",
        started.elapsed().as_secs_f64()
    );
    assert!(
        out.status.success(),
        "schemathesis found the API breaking its document (seed {seed}):\n{report}"
    );
    let tested = report
        .lines()
        .find_map(|line| line.trim().strip_prefix("Tested: "))
        .and_then(|n| n.trim().parse::<u32>().ok());
    assert!(
        tested.is_some_and(|n| n > 50),
        "schemathesis tested too little ({tested:?} operations):\n{report}"
    );

    // Whatever the fuzzer sent, the node serves and the neighbour answers.
    let health = server
        .http
        .get(server.admin_url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let (status, body) = server.send("GET", "/invoices/hello", b"").await;
    assert_eq!(
        status, 200,
        "the neighbour in team-b stopped answering: {body}"
    );
}
