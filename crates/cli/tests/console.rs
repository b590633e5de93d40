//! The web console end to end, as a user meets it: the real binary serves
//! `/ui`, and a real browser (Debian's Chromium, driven by playwright-core:
//! `console/tests/e2e.mjs`) signs in, sees an app deployed through the API,
//! watches a chart move under load, opens a failed invocation's log,
//! redrives a dead letter, rolls back, checks every page with axe-core, at
//! phone size and by keyboard, and fails on any browser console error. Its
//! screenshots are left in `<target>/tmp/console/` for CI to keep.

use std::process::Command;

use crate::common::*;

/// Debian's Chromium, or `None` where it is not installed and this is not
/// CI.
fn chromium() -> Option<String> {
    if let Ok(path) = std::env::var("STRATUS_TEST_CHROMIUM")
        && !path.is_empty()
    {
        return Some(path);
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    assert!(
        !ci,
        "the console test needs a browser in CI: \
         export STRATUS_TEST_CHROMIUM=\"$(bash scripts/browser.sh)\""
    );
    eprintln!(
        "skipping the console test: STRATUS_TEST_CHROMIUM is not set (scripts/test.sh sets it)"
    );
    None
}

#[tokio::test]
async fn the_console_works_in_a_real_browser() {
    let Some(chromium) = chromium() else { return };
    let server = Server::start();
    // A neighbour in another app, which must answer throughout.
    let neighbour = testbed_app("neighbour", "bed", &["/neighbour", "/neighbour/..."], "");
    server.deploy(neighbour.path());

    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("console");
    let _ = std::fs::remove_dir_all(&out);
    let script = repo_root().join("console/tests/e2e.mjs");
    let run = tokio::task::spawn_blocking({
        let (admin, gateway, out) = (server.admin.clone(), server.gateway.clone(), out.clone());
        move || {
            Command::new("node")
                .arg(script)
                .env("STRATUS_ADMIN_URL", admin)
                .env("STRATUS_GATEWAY_URL", gateway)
                .env("STRATUS_TOKEN", TOKEN)
                .env("STRATUS_TESTBED_WASM", test_guest("testbed"))
                .env("STRATUS_OUT", out)
                .env("STRATUS_CHROMIUM", chromium)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let report = format!("{}\n{}", stdout(&run), stderr(&run));
    assert!(run.status.success(), "the browser run failed:\n{report}");
    for page in [
        "apps",
        "function",
        "invocation",
        "events",
        "health",
        "phone-apps",
    ] {
        let shot = out.join(format!("{page}.png"));
        assert!(
            shot.is_file(),
            "no screenshot {}:\n{report}",
            shot.display()
        );
    }

    // The console's files come with their policy from the real listener
    // too, and the neighbour answered all along.
    let page = server
        .http
        .get(server.admin_url("/ui/"))
        .send()
        .await
        .unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let (status, _) = server.send("GET", "/neighbour/echo", b"").await;
    assert_eq!(status, 200);
}
