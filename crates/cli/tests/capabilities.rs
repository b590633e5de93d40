//! Granted capabilities end to end: key-value (on SQLite and on Redis),
//! config and secrets, and the deploy-time grant check, with the
//! `capabilities` test guest (see tests/guests/capabilities).

use crate::common::*;

/// An app of one `capabilities` function under `/<app>/...` with `grants`
/// (manifest lines) added. The guest imports config too, so unless the
/// grants say otherwise it gets a config value.
fn caps_app(app: &str, function: &str, grants: &str) -> AppDir {
    let grants = if grants.is_empty() || grants.contains("config") {
        grants.to_string()
    } else {
        format!("{grants}\nconfig = {{ role = \"test\" }}")
    };
    AppDir::new(&format!(
        "[app]\nname = \"{app}\"\n\n[[function]]\nname = \"{function}\"\ncomponent = \"{}\"\nroutes = [\"/{app}/...\"]\n{grants}\n",
        test_guest("capabilities").display(),
    ))
}

/// Calls the guest at `/<app>/<route>` and returns status and body.
async fn call(server: &Server, app: &str, method: &str, route: &str, body: &[u8]) -> (u16, String) {
    server.send(method, &format!("/{app}/{route}"), body).await
}

/// The same key-value behaviour whichever backend the node runs.
async fn keyvalue_behaves(server: &Server) {
    let app = &unique("kv");
    server.deploy(caps_app(app, "store", "keyvalue = [\"default\", \"other\"]").path());
    let get = |key: &str| format!("get?bucket=default&key={key}");

    assert_eq!(
        call(server, app, "GET", &get("a"), b"").await,
        (404, "missing".into())
    );
    assert_eq!(
        call(server, app, "PUT", "set?bucket=default&key=a", b"apple").await,
        (200, "set".into())
    );
    assert_eq!(
        call(server, app, "GET", &get("a"), b"").await,
        (200, "apple".into())
    );
    assert_eq!(
        call(server, app, "GET", "exists?bucket=default&key=a", b"").await,
        (200, "true".into())
    );
    // Buckets of one app are separate.
    assert_eq!(
        call(server, app, "GET", "get?bucket=other&key=a", b"").await,
        (404, "missing".into())
    );
    assert_eq!(
        call(server, app, "GET", "incr?bucket=default&key=n&by=40", b"").await,
        (200, "40".into())
    );
    assert_eq!(
        call(server, app, "GET", "incr?bucket=default&key=n&by=2", b"").await,
        (200, "42".into())
    );
    let (status, body) = call(server, app, "GET", "incr?bucket=default&key=a", b"").await;
    assert_eq!(status, 500);
    assert!(body.contains("is not a decimal number"), "{body}");

    let (status, body) = call(
        server,
        app,
        "POST",
        "setmany?bucket=default",
        b"b=banana\nc=cherry",
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "set 2"));
    assert_eq!(
        call(
            server,
            app,
            "GET",
            "getmany?bucket=default&keys=b,zz,c",
            b""
        )
        .await,
        (200, "b=banana\nzz absent\nc=cherry".into())
    );
    assert_eq!(
        call(server, app, "GET", "keys?bucket=default", b"").await,
        (200, "a\nb\nc\nn".into())
    );
    assert_eq!(
        call(server, app, "DELETE", "delete?bucket=default&key=a", b"").await,
        (200, "deleted".into())
    );
    assert_eq!(
        call(server, app, "GET", &get("a"), b"").await,
        (404, "missing".into())
    );

    // Limits: a value over 1 MiB and a key over 256 bytes are refused with
    // a message the guest can show; nothing is stored.
    let big = vec![b'x'; (1 << 20) + 1];
    let (status, body) = call(server, app, "PUT", "set?bucket=default&key=big", &big).await;
    assert_eq!(status, 500);
    assert!(body.contains("over the limit of 1048576 bytes"), "{body}");
    assert_eq!(call(server, app, "GET", &get("big"), b"").await.0, 404);
    let long_key = "k".repeat(257);
    let (status, body) = call(
        server,
        app,
        "PUT",
        &format!("set?bucket=default&key={long_key}"),
        b"v",
    )
    .await;
    assert_eq!(status, 500);
    assert!(body.contains("over the limit of 256 bytes"), "{body}");

    // A bucket the manifest does not name cannot be opened.
    let (status, body) = call(server, app, "GET", "get?bucket=secret-stuff&key=a", b"").await;
    assert_eq!((status, body.as_str()), (500, "open: Error::AccessDenied"));
    assert!(
        server.logs("does not name it").await,
        "the denial is logged"
    );
}

#[tokio::test]
async fn keyvalue_on_sqlite() {
    let server = Server::start();
    keyvalue_behaves(&server).await;
    assert!(server.data_dir.join("keyvalue.sqlite").exists());
    let (_, ready) = server.admin_get("/readyz").await;
    assert_eq!(ready["keyvalue"]["backend"], "sqlite", "{ready}");
    assert_eq!(ready["keyvalue"]["reachable"], true, "{ready}");
    // 16 operations on open buckets (the two refused for their size
    // included), one of them a failed increment of a non-number; one
    // denied open.
    assert_eq!(server.metric("stratus_keyvalue_operations_total").await, 16);
    assert_eq!(server.metric("stratus_keyvalue_errors_total").await, 1);
    assert_eq!(server.metric("stratus_keyvalue_denied_total").await, 1);
}

#[tokio::test]
async fn keyvalue_on_redis() {
    let server = Server::start_with(&[
        "--keyvalue",
        "redis",
        "--keyvalue-url",
        "redis://127.0.0.1:6379",
    ]);
    keyvalue_behaves(&server).await;
    assert!(!server.data_dir.join("keyvalue.sqlite").exists());
    let (_, ready) = server.admin_get("/readyz").await;
    assert_eq!(ready["keyvalue"]["reachable"], true, "{ready}");
}

#[tokio::test]
async fn two_apps_never_see_each_others_buckets() {
    let server = Server::start();
    let (a, b) = (unique("tenant-a"), unique("tenant-b"));
    server.deploy(caps_app(&a, "store", "keyvalue = [\"default\"]").path());
    server.deploy(caps_app(&b, "store", "keyvalue = [\"default\"]").path());
    call(&server, &a, "PUT", "set?bucket=default&key=k", b"from a").await;
    assert_eq!(
        call(&server, &b, "GET", "get?bucket=default&key=k", b"").await,
        (404, "missing".into())
    );
    call(&server, &b, "PUT", "set?bucket=default&key=k", b"from b").await;
    assert_eq!(
        call(&server, &a, "GET", "get?bucket=default&key=k", b"").await,
        (200, "from a".into())
    );
}

#[tokio::test]
async fn an_unreachable_redis_is_an_error_in_the_guest_not_a_crash() {
    let server = Server::start_with(&[
        "--keyvalue",
        "redis",
        "--keyvalue-url",
        "redis://127.0.0.1:1",
    ]);
    let app = &unique("down");
    server.deploy(caps_app(app, "store", "keyvalue = [\"default\"]").path());
    let (status, body) = call(&server, app, "GET", "get?bucket=default&key=k", b"").await;
    assert_eq!(status, 500);
    assert!(
        body.contains("cannot connect to Redis at redis://127.0.0.1:1"),
        "{body}"
    );
    // The node still serves, and says what is wrong.
    assert_eq!(
        call(&server, app, "GET", "hello", b"").await,
        (200, "capabilities".into())
    );
    let (status, ready) = server.admin_get("/readyz").await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["keyvalue"]["backend"], "redis", "{ready}");
    assert_eq!(ready["keyvalue"]["reachable"], false, "{ready}");
    let problems = ready["problems"].to_string();
    assert!(
        problems.contains("key-value store redis://127.0.0.1:1"),
        "{ready}"
    );
}

#[tokio::test]
async fn an_ungranted_import_is_refused_at_deploy_naming_it_and_its_key() {
    let server = Server::start();
    let error = server.deploy_err(caps_app("nogrant", "store", "").path());
    assert!(error.contains("function \"store\""), "{error}");
    assert!(
        error.contains("`wasi:keyvalue/store@0.2.0-draft`"),
        "{error}"
    );
    assert!(
        error.contains("add `keyvalue = [\"<bucket>\", ...]`"),
        "{error}"
    );
    assert!(error.contains("`wasi:config/store@0.2.0-draft`"), "{error}");

    let half = AppDir::new(&format!(
        "[app]\nname = \"halfgrant\"\n\n[[function]]\nname = \"store\"\ncomponent = \"{}\"\nkeyvalue = [\"default\"]\n",
        test_guest("capabilities").display()
    ));
    let error = server.deploy_err(half.path());
    assert!(!error.contains("wasi:keyvalue"), "{error}");
    assert!(error.contains("`wasi:config/store@0.2.0-draft`"), "{error}");
    assert!(error.contains("`config = {"), "{error}");
    // Nothing was deployed.
    let (status, _) = server.admin_get("/v1/apps/halfgrant").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn config_values_and_granted_secrets_reach_only_their_function_and_no_secret_leaks() {
    const SECRET: &str = "sk_live_6f1c0ffee-VERY-SECRET";
    let server = Server::start();
    let app = "vault";
    let manifest = format!(
        "[app]\nname = \"{app}\"\n\n\
         [[function]]\nname = \"reader\"\ncomponent = \"{c}\"\nroutes = [\"/{app}/...\"]\n\
         config = {{ greeting = \"hello\", currency = \"EUR\" }}\nsecrets = [\"api-token\"]\nkeyvalue = [\"default\"]\n\n\
         [[function]]\nname = \"other\"\ncomponent = \"{c}\"\nroutes = [\"/other/...\"]\n\
         config = {{ greeting = \"hi\" }}\nkeyvalue = [\"default\"]\n",
        c = test_guest("capabilities").display()
    );
    let dir = AppDir::new(&manifest);
    let mut outputs = vec![server.deploy(dir.path())];

    assert_eq!(
        call(&server, app, "GET", "config?key=greeting", b"").await,
        (200, "hello".into())
    );
    assert_eq!(
        call(&server, app, "GET", "config?key=nope", b"").await,
        (404, "missing".into())
    );
    // Granted but not set yet: the guest is told how to set it.
    let (status, body) = call(&server, app, "GET", "config?key=api-token", b"").await;
    assert_eq!(status, 500);
    assert!(
        body.contains("stratus secrets set vault api-token"),
        "{body}"
    );

    let out = set_secret(&server, app, "api-token", SECRET);
    assert!(out.status.success(), "{}", stderr(&out));
    outputs.push(stdout(&out));
    outputs.push(stderr(&out));

    assert_eq!(
        call(&server, app, "GET", "config?key=api-token", b"").await,
        (200, SECRET.into())
    );
    assert_eq!(
        call(&server, app, "GET", "configall", b"").await,
        (
            200,
            format!("api-token={SECRET}\ncurrency=EUR\ngreeting=hello")
        )
    );
    // The other function of the same app was not granted the secret.
    assert_eq!(
        call(&server, "other", "GET", "config?key=api-token", b"").await,
        (404, "missing".into())
    );
    assert_eq!(
        call(&server, "other", "GET", "configall", b"").await,
        (200, "greeting=hi".into())
    );

    // Listing shows the name only.
    let out = server.cli(&["secrets", "ls", app]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("api-token"), "{}", stdout(&out));
    outputs.push(stdout(&out));
    let out = server.cli(&["secrets", "ls", app, "--format", "json"]);
    outputs.push(stdout(&out));
    // Everything else the API and CLI say about the app and its invocations.
    for path in [
        format!("/v1/apps/{app}/secrets"),
        format!("/v1/apps/{app}"),
        format!("/v1/apps/{app}/versions"),
        "/v1/functions/vault%2Freader/logs".to_string(),
        "/v1/usage".to_string(),
        "/metrics".to_string(),
        "/readyz".to_string(),
    ] {
        let response = server
            .http
            .get(server.admin_url(&path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        outputs.push(response.text().await.unwrap());
    }
    for args in [&["apps"][..], &["logs", "vault/reader"], &["usage"]] {
        let out = server.cli(args);
        outputs.push(stdout(&out));
        outputs.push(stderr(&out));
    }
    // A bad name and an unknown secret are errors that do not echo values.
    let out = set_secret(&server, app, "bad name", SECRET);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not a valid secret name"),
        "{}",
        stderr(&out)
    );
    outputs.push(stderr(&out));
    let out = server.cli(&["secrets", "rm", app, "nope"]);
    assert!(!out.status.success());
    outputs.push(stderr(&out));

    for (i, text) in outputs.iter().enumerate() {
        assert!(
            !text.contains(SECRET),
            "output {i} leaks the secret: {text}"
        );
    }
    assert!(
        !server.node_log().contains(SECRET),
        "the node log leaks the secret"
    );
    // At rest the value is encrypted, and the key file is private.
    let stored = std::fs::read(server.data_dir.join("secrets.sqlite")).unwrap();
    assert!(!stored.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = std::fs::metadata(server.data_dir.join("secrets.key")).unwrap();
        assert_eq!(key.permissions().mode() & 0o777, 0o600);
    }

    // Removed, it is gone for the function too.
    let out = server.cli(&["secrets", "rm", app, "api-token"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (status, body) = call(&server, app, "GET", "config?key=api-token", b"").await;
    assert_eq!(status, 500, "{body}");
}

#[tokio::test]
async fn acknowledged_writes_and_secrets_survive_kill_9() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("data");
    let mut server = Server::start_in(&data_dir, &[]);
    let app = "durable";
    server.deploy(
        caps_app(
            app,
            "store",
            "keyvalue = [\"default\"]\nsecrets = [\"token\"]",
        )
        .path(),
    );
    for i in 0..50 {
        let (status, _) = call(
            &server,
            app,
            "PUT",
            &format!("set?bucket=default&key=k{i}"),
            b"v",
        )
        .await;
        assert_eq!(status, 200);
    }
    let (status, _) = call(&server, app, "GET", "incr?bucket=default&key=n&by=7", b"").await;
    assert_eq!(status, 200);
    assert!(set_secret(&server, app, "token", "t-1").status.success());
    server.kill_9();

    let server = Server::start_in(&data_dir, &[]);
    assert_eq!(
        call(&server, app, "GET", "get?bucket=default&key=k49", b"").await,
        (200, "v".into())
    );
    assert_eq!(
        call(&server, app, "GET", "incr?bucket=default&key=n&by=1", b"").await,
        (200, "8".into())
    );
    let (_, keys) = call(&server, app, "GET", "keys?bucket=default", b"").await;
    assert_eq!(keys.lines().count(), 51, "{keys}");
    // The same key file opens the secret after the restart.
    assert_eq!(
        call(&server, app, "GET", "config?key=token", b"").await,
        (200, "t-1".into())
    );
}

/// A guest written for `wasmtime serve -Skeyvalue` opens the bucket `""`:
/// it is the function's `default` bucket, when granted, and denied like
/// any other bucket when not; a neighbour app's `default` stays its own.
#[tokio::test]
async fn the_empty_bucket_name_is_the_default_bucket() {
    let server = Server::start();
    let (granted, denied, neighbour) = (&unique("empty"), &unique("nokv"), &unique("next"));
    server.deploy(caps_app(granted, "store", "keyvalue = [\"default\"]").path());
    server.deploy(caps_app(denied, "store", "keyvalue = [\"other\"]").path());
    server.deploy(caps_app(neighbour, "store", "keyvalue = [\"default\"]").path());
    assert_eq!(
        call(&server, granted, "PUT", "set?bucket=&key=k", b"from empty").await,
        (200, "set".into())
    );
    assert_eq!(
        call(&server, granted, "GET", "get?bucket=default&key=k", b"").await,
        (200, "from empty".into())
    );
    let (status, body) = call(&server, denied, "GET", "get?bucket=&key=k", b"").await;
    assert_eq!((status, body.as_str()), (500, "open: Error::AccessDenied"));
    assert_eq!(
        call(&server, neighbour, "GET", "get?bucket=&key=k", b"").await,
        (404, "missing".into())
    );
}
