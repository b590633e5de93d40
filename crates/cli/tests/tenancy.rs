//! Namespaces through the CLI: `--namespace`/`-n` and `STRATUS_NAMESPACE`
//! address one team's apps; the same app name in two namespaces is two
//! apps, and a bad namespace name is refused before anything is sent.

use crate::common::*;

fn shop(route: &str, who: &str) -> AppDir {
    testbed_app(
        "shop",
        "cart",
        &[&format!("{route}/...")],
        &format!("env = {{ WHO = \"{who}\" }}"),
    )
}

fn app_names(out: &std::process::Output) -> Vec<String> {
    assert!(out.status.success(), "{}", stderr(out));
    let apps: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    apps.as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_namespace_flag_addresses_one_teams_apps() {
    let server = Server::start();
    server.deploy(shop("/cart", "default").path());
    for who in ["a1", "a2"] {
        let app = shop("/team-cart", who);
        let out = server.cli(&["deploy", app.path().to_str().unwrap(), "-n", "team-a"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("team-a/shop"), "{}", stdout(&out));
    }
    let who = |route: &'static str| {
        let server = &server;
        async move {
            let response = server.get(&format!("{route}/env?name=WHO")).await;
            response.text().await.unwrap()
        }
    };
    assert_eq!(who("/team-cart").await, "a2");

    assert_eq!(
        app_names(&server.cli(&["apps", "--format", "json"])),
        ["shop"]
    );
    assert_eq!(
        app_names(&server.cli(&["apps", "--format", "json", "--namespace", "team-a"])),
        ["team-a/shop"]
    );
    let by_env = std::process::Command::new(env!("CARGO_BIN_EXE_stratus"))
        .args(["apps", "--format", "json"])
        .env("STRATUS_SERVER", server.admin_url(""))
        .env("STRATUS_TOKEN", TOKEN)
        .env("STRATUS_NAMESPACE", "team-a")
        .output()
        .unwrap();
    assert_eq!(app_names(&by_env), ["team-a/shop"]);

    // A rollback in team-a leaves default's shop alone.
    let out = server.cli(&["rollback", "shop", "-n", "team-a"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(who("/team-cart").await, "a1");
    assert_eq!(who("/cart").await, "default");
    let out = server.cli(&["rollback", "shop"]);
    assert!(!out.status.success(), "default's shop has one version");
    assert!(
        stderr(&out).contains("no earlier version"),
        "{}",
        stderr(&out)
    );

    // Another namespace does not find it, and a bad name is refused here.
    let out = server.cli(&["versions", "shop", "-n", "team-b"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    let out = server.cli(&["apps", "-n", "Team-A"]);
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(
        message.contains("--namespace") && message.contains("\"Team-A\" is not a namespace name"),
        "{message}"
    );
}

/// Runs the CLI with `token` instead of the node's.
fn cli_as(server: &Server, token: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_stratus"))
        .args(args)
        .env("STRATUS_SERVER", server.admin_url(""))
        .env("STRATUS_TOKEN", token)
        .output()
        .unwrap()
}

#[tokio::test]
async fn tokens_made_with_the_cli_act_in_their_namespace_and_role() {
    let server = Server::start();
    let make = |role: &str, name: &str| {
        let out = server.cli(&[
            "tokens",
            "create",
            "-n",
            "team-a",
            "--role",
            role,
            "--name",
            name,
            "--expires",
            "30d",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stderr(&out).contains("shown only now"), "{}", stderr(&out));
        let token = stdout(&out).trim().to_owned();
        assert!(token.starts_with("stratus_"), "{token}");
        token
    };
    let deployer = make("deployer", "ci");
    let viewer = make("viewer", "dashboards");
    let app = shop("/team-cart", "a1");
    let dir = app.path().to_str().unwrap();

    let out = cli_as(&server, &viewer, &["deploy", dir, "-n", "team-a"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("deployer"), "{}", stderr(&out));
    let out = cli_as(&server, &deployer, &["deploy", dir, "-n", "team-b"]);
    assert!(!out.status.success(), "another namespace");
    assert!(
        stderr(&out).contains("there is no namespace \"team-b\" this token may see"),
        "{}",
        stderr(&out)
    );
    let out = cli_as(&server, &deployer, &["deploy", dir, "-n", "team-a"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        server
            .get("/team-cart/env?name=WHO")
            .await
            .text()
            .await
            .unwrap(),
        "a1"
    );
    assert_eq!(
        app_names(&cli_as(
            &server,
            &viewer,
            &["apps", "-n", "team-a", "--format", "json"]
        )),
        ["team-a/shop"]
    );

    let out = server.cli(&["tokens", "ls", "-n", "team-a", "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ci = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ci")
        .unwrap();
    assert_eq!(ci["role"], "deployer");
    let out = server.cli(&[
        "tokens",
        "revoke",
        ci["id"].as_str().unwrap(),
        "-n",
        "team-a",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = cli_as(&server, &deployer, &["apps", "-n", "team-a"]);
    assert!(!out.status.success(), "a revoked token opens nothing");
    assert!(
        stderr(&out).contains("rejected the admin token"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn quotas_set_with_the_cli_hold_the_namespace() {
    let server = Server::start();
    let out = server.cli(&[
        "quotas",
        "set",
        "-n",
        "team-a",
        "--max-apps",
        "1",
        "--requests-per-second",
        "1000",
        "--budget",
        "5",
        "--budget-period",
        "day",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("apps            0 of 1"),
        "{}",
        stdout(&out)
    );
    let first = shop("/team-cart", "a1");
    let out = server.cli(&["deploy", first.path().to_str().unwrap(), "-n", "team-a"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let second = testbed_app("other", "cart", &["/other/..."], "");
    let out = server.cli(&["deploy", second.path().to_str().unwrap(), "-n", "team-a"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("max_apps"), "{}", stderr(&out));
    let out = server.cli(&["quotas", "show", "-n", "team-a"]);
    assert!(
        stdout(&out).contains("apps            1 of 1"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("budget"), "{}", stdout(&out));
    server.get("/team-cart/env?name=WHO").await;
    let out = server.cli(&["usage", "-n", "team-a"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("budget:"), "{}", stdout(&out));
}
