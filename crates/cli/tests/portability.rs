//! No lock-in (issue 19): components written for other platforms deploy
//! unchanged. The other names toolchains give Stratus's capabilities
//! (`wasi:config` at wasmtime's and Spin 3's versions, `wasi:keyvalue` at
//! Spin 3's, Spin 2's own key-value and variables), and a Spin application deployed from its
//! `spin.toml`, built by Spin's SDK for `wasm32-wasip1`.

use std::time::Duration;

use crate::common::*;

async fn neighbour_answers(server: &Server, app: &str, after: &str) {
    let response = server
        .http
        .get(server.url(&format!("/{app}/echo")))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap_or_else(|e| panic!("after {after}: the neighbour did not answer: {e}"));
    assert_eq!(response.status(), 200, "after {after}");
}

#[tokio::test]
async fn other_versions_and_spin_names_reach_the_same_grants_and_stores() {
    let server = Server::start();
    let app = &unique("compat");
    let manifest = format!(
        "[app]\nname = \"{app}\"\n\n\
         [[function]]\nname = \"c\"\ncomponent = \"{compat}\"\nroutes = [\"/{app}/c/...\"]\n\
         config = {{ greeting = \"hi\", currency = \"EUR\" }}\nsecrets = [\"api_token\"]\nkeyvalue = [\"default\", \"cart\"]\n\n\
         [[function]]\nname = \"w\"\ncomponent = \"{caps}\"\nroutes = [\"/{app}/w/...\"]\n\
         config = {{ role = \"wasi\" }}\nkeyvalue = [\"cart\"]\n",
        compat = test_guest("compat").display(),
        caps = test_guest("capabilities").display(),
    );
    let dir = AppDir::new(&manifest);
    server.deploy(dir.path());
    let neighbour = &unique("next");
    server.deploy(testbed_app(neighbour, "echo", &[&format!("/{neighbour}/...")], "").path());
    let c = |route: &str| format!("/{app}/c/{route}");

    // wasi:config at wasmtime 48's version and at Spin 3's.
    assert_eq!(
        server.send("GET", &c("rc1?key=greeting"), b"").await,
        (200, "hi".into())
    );
    assert_eq!(
        server.send("GET", &c("rc1?key=nope"), b"").await,
        (404, "missing".into())
    );
    assert_eq!(
        server.send("GET", &c("spin3?key=currency"), b"").await,
        (200, "EUR".into())
    );
    let (status, body) = server.send("GET", &c("rc1all"), b"").await;
    assert_eq!(
        status, 500,
        "a granted secret not set yet fails get-all: {body}"
    );
    assert!(body.contains("stratus secrets set"), "{body}");

    // Spin's variables read the same values and secrets.
    assert_eq!(
        server.send("GET", &c("variable?name=greeting"), b"").await,
        (200, "hi".into())
    );
    let (status, body) = server.send("GET", &c("variable?name=api_token"), b"").await;
    assert_eq!(status, 500);
    assert!(
        body.contains("Provider") && body.contains("stratus secrets set"),
        "{body}"
    );
    let out = set_secret(&server, app, "api_token", "tok-123");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        server.send("GET", &c("variable?name=api_token"), b"").await,
        (200, "tok-123".into())
    );
    assert_eq!(
        server.send("GET", &c("rc1all"), b"").await,
        (200, "api_token=tok-123\ncurrency=EUR\ngreeting=hi".into())
    );
    let (status, body) = server.send("GET", &c("variable?name=role"), b"").await;
    assert_eq!(status, 500, "another function's value is not this one's");
    assert!(body.contains("Undefined"), "{body}");
    let (status, body) = server
        .send("GET", &c("variable?name=Not-A-Name"), b"")
        .await;
    assert_eq!(status, 500);
    assert!(body.contains("InvalidName"), "{body}");

    // Spin's key-value store is the app's bucket, as wasi:keyvalue sees it.
    assert_eq!(
        server
            .send("PUT", &c("kvset?store=cart&key=apple"), b"3")
            .await,
        (200, "set".into())
    );
    assert_eq!(
        server
            .send("GET", &format!("/{app}/w/get?bucket=cart&key=apple"), b"")
            .await,
        (200, "3".into()),
        "a value Spin's interface wrote is read through wasi:keyvalue"
    );
    assert_eq!(
        server
            .send("PUT", &format!("/{app}/w/set?bucket=cart&key=pear"), b"5")
            .await,
        (200, "set".into())
    );
    assert_eq!(
        server
            .send("GET", &c("kvget?store=cart&key=pear"), b"")
            .await,
        (200, "5".into())
    );
    assert_eq!(
        server.send("GET", &c("kvkeys?store=cart"), b"").await,
        (200, "apple\npear".into())
    );
    assert_eq!(
        server
            .send("GET", &c("kvexists?store=cart&key=apple"), b"")
            .await,
        (200, "true".into())
    );
    assert_eq!(
        server
            .send("GET", &c("kvdelete?store=cart&key=apple"), b"")
            .await,
        (200, "deleted".into())
    );
    assert_eq!(
        server
            .send("GET", &c("kvexists?store=cart&key=apple"), b"")
            .await,
        (200, "false".into())
    );
    assert_eq!(
        server
            .send("GET", &c("kvget?store=default&key=pear"), b"")
            .await,
        (404, "missing".into())
    );
    // A store the function was not granted, by any name.
    for store in ["other", "../cart", ""] {
        let (status, body) = server
            .send("GET", &c(&format!("kvget?store={store}&key=k")), b"")
            .await;
        if store.is_empty() {
            // The empty name is the default bucket, which is granted.
            assert_eq!((status, body.as_str()), (404, "missing"), "{store:?}");
        } else {
            assert_eq!(
                (status, body.as_str()),
                (500, "Error::AccessDenied"),
                "{store:?}"
            );
        }
    }
    neighbour_answers(&server, neighbour, "the compatibility interfaces").await;
}

/// Spin 3's `wasi:keyvalue@0.2.0-draft2` on the same buckets as the
/// draft: its string cursors, its `get-many`, its signed increment and its
/// compare-and-swap.
#[tokio::test]
async fn keyvalue_at_spin_3s_version_shares_the_buckets_and_swaps_atomically() {
    let server = Server::start();
    let app = &unique("kv2");
    let manifest = format!(
        "[app]\nname = \"{app}\"\n\n\
         [[function]]\nname = \"c\"\ncomponent = \"{compat}\"\nroutes = [\"/{app}/c/...\"]\n\
         config = {{ unused = \"yes\" }}\nkeyvalue = [\"default\", \"cart\"]\n\n\
         [[function]]\nname = \"w\"\ncomponent = \"{caps}\"\nroutes = [\"/{app}/w/...\"]\n\
         config = {{ unused = \"yes\" }}\nkeyvalue = [\"cart\"]\n",
        compat = test_guest("compat").display(),
        caps = test_guest("capabilities").display(),
    );
    let dir = AppDir::new(&manifest);
    server.deploy(dir.path());
    let neighbour = &unique("next");
    server.deploy(testbed_app(neighbour, "echo", &[&format!("/{neighbour}/...")], "").path());
    let c = |route: &str| format!("/{app}/c/{route}");
    let w = |route: &str| format!("/{app}/w/{route}");

    // One bucket, whichever version writes it.
    assert_eq!(
        server
            .send("PUT", &c("d2set?bucket=cart&key=apple"), b"3")
            .await,
        (200, "set".into())
    );
    assert_eq!(
        server
            .send("GET", &w("get?bucket=cart&key=apple"), b"")
            .await,
        (200, "3".into())
    );
    assert_eq!(
        server
            .send("PUT", &w("set?bucket=cart&key=pear"), b"5")
            .await,
        (200, "set".into())
    );
    assert_eq!(
        server
            .send("GET", &c("d2get?bucket=cart&key=pear"), b"")
            .await,
        (200, "5".into())
    );
    // get-many answers every key, a missing one as none.
    assert_eq!(
        server
            .send("GET", &c("d2many?bucket=cart&keys=apple,nope,pear"), b"")
            .await,
        (200, "apple=3\nnope=none\npear=5".into())
    );

    // This version subtracts; the draft's unsigned increment says why it
    // cannot answer a number below zero.
    assert_eq!(
        server
            .send("GET", &c("d2incr?bucket=cart&key=n&by=5"), b"")
            .await,
        (200, "5".into())
    );
    assert_eq!(
        server
            .send("GET", &c("d2incr?bucket=cart&key=n&by=-8"), b"")
            .await,
        (200, "-3".into())
    );
    let (status, body) = server
        .send("GET", &w("incr?bucket=cart&key=n&by=1"), b"")
        .await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("below zero") && body.contains("0.2.0-draft"),
        "{body}"
    );
    assert_eq!(
        server
            .send("GET", &w("incr?bucket=cart&key=n&by=10"), b"")
            .await,
        (200, "8".into())
    );

    // A swap over a value that changed since the handle was made fails,
    // handing back a handle on what the key holds now, which swaps.
    assert_eq!(
        server
            .send("GET", &c("d2stale?bucket=cart&key=s"), b"")
            .await,
        (200, "fresh handle held theirs; swapped".into())
    );
    assert_eq!(
        server.send("GET", &c("d2get?bucket=cart&key=s"), b"").await,
        (200, "mine".into())
    );
    // Concurrent adders by compare-and-swap lose nothing.
    let adder = c("d2cas?bucket=cart&key=hits");
    let adders: Vec<_> = (0..16).map(|_| server.send("GET", &adder, b"")).collect();
    for (status, body) in futures_util::future::join_all(adders).await {
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(
        server
            .send("GET", &c("d2get?bucket=cart&key=hits"), b"")
            .await,
        (200, "16".into())
    );

    // Handles hold a copy of the value on the host: an instance may hold
    // 4 MiB of them (each 256 bytes more than its key and value), so six
    // of a 600 KiB value, and dropping them frees the room.
    let big = vec![b'x'; 600 << 10];
    assert_eq!(
        server
            .send("PUT", &c("d2set?bucket=cart&key=big"), &big)
            .await,
        (200, "set".into())
    );
    let (status, body) = server
        .send("GET", &c("d2hoard?bucket=cart&key=big&n=100"), b"")
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.starts_with("made 6; then Error::Other(")
            && body.contains("limit of 4194304 bytes")
            && body.ends_with("after dropping: ok"),
        "{body}"
    );

    // list-keys pages with string cursors; a cursor it did not answer is
    // refused.
    for from in [0, 1000, 2000] {
        let n = if from == 2000 { 500 } else { 1000 };
        let route = format!("d2setmany?bucket=default&from={from}&n={n}");
        assert_eq!(
            server.send("GET", &c(&route), b"").await,
            (200, "set".into())
        );
    }
    assert_eq!(
        server.send("GET", &c("d2keys?bucket=default"), b"").await,
        (200, "2500 keys in 3 pages".into())
    );
    for cursor in ["garbage", "-1", "99999999999999999999999", ""] {
        let (status, body) = server
            .send(
                "GET",
                &c(&format!("d2page?bucket=default&cursor={cursor}")),
                b"",
            )
            .await;
        assert_eq!(status, 500, "{cursor:?}: {body}");
        assert!(body.contains("not one that list-keys answered"), "{body}");
    }
    // A bucket the function was not granted; the empty name is `default`.
    let (status, body) = server
        .send("GET", &c("d2get?bucket=other&key=k"), b"")
        .await;
    assert_eq!((status, body.as_str()), (500, "Error::AccessDenied"));
    assert_eq!(
        server.send("GET", &c("d2get?bucket=&key=k0001"), b"").await,
        (200, "v".into())
    );
    neighbour_answers(&server, neighbour, "wasi:keyvalue@0.2.0-draft2").await;
}

#[tokio::test]
async fn the_other_names_are_refused_without_their_grant_naming_them() {
    let server = Server::start();
    let app = &unique("nogrant");
    let dir = AppDir::new(&format!(
        "[app]\nname = \"{app}\"\n\n[[function]]\nname = \"c\"\ncomponent = \"{}\"\nroutes = [\"/{app}/...\"]\n",
        test_guest("compat").display()
    ));
    let err = server.deploy_err(dir.path());
    for words in [
        "`wasi:config/store@0.2.0-rc.1`",
        "`wasi:config/store@0.2.0-draft-2024-09-27`",
        "`wasi:keyvalue/store@0.2.0-draft2`",
        "`wasi:keyvalue/atomics@0.2.0-draft2`",
        "`fermyon:spin/key-value@2.0.0`",
        "`fermyon:spin/variables@2.0.0`",
        "key_value_stores",
    ] {
        assert!(err.contains(words), "{words}: {err}");
    }
}

#[tokio::test]
async fn a_spin_app_deploys_from_its_spin_toml_without_a_rebuild() {
    let server = Server::start();
    let neighbour = &unique("next");
    server.deploy(testbed_app(neighbour, "echo", &[&format!("/{neighbour}/...")], "").path());
    let spin = spin_app();
    // The module Spin's SDK built is a core module, as Spin takes it.
    let module = std::fs::read(spin.join("target/wasm32-wasip1/release/spin_app.wasm")).unwrap();
    assert_eq!(&module[4..8], &[1, 0, 0, 0], "a core module (version 1)");

    let out = server.deploy(&spin);
    assert!(
        out.contains("spin-greeter") && out.contains("greeter"),
        "{out}"
    );

    // The SDK's router matches on spin-path-info: each route answers.
    assert_eq!(
        server.send("GET", "/spin/greet/hello/Ada", b"").await,
        (200, "Hello from Spin, Ada!".into())
    );
    assert_eq!(
        server.send("POST", "/spin/greet/count", b"").await,
        (200, "1".into())
    );
    assert_eq!(
        server.send("POST", "/spin/greet/count", b"").await,
        (200, "2".into())
    );
    // The SDK's own wasi:keyvalue@0.2.0-draft2 bindings, on the same
    // store as its key-value API: a signed increment.
    assert_eq!(
        server.send("POST", "/spin/greet/stock/5", b"").await,
        (200, "5".into())
    );
    assert_eq!(
        server.send("POST", "/spin/greet/stock/-7", b"").await,
        (200, "-2".into())
    );
    assert_eq!(
        server.send("GET", "/spin/greet/keys", b"").await,
        (200, "count\nstock".into())
    );
    // A variable without a default is the app's secret, set with the CLI.
    let (status, body) = server.send("GET", "/spin/greet/token", b"").await;
    assert_eq!(status, 500);
    assert!(
        body.contains("stratus secrets set spin-greeter api_token"),
        "{body}"
    );
    let out = set_secret(&server, "spin-greeter", "api_token", "s3cr3t");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        server.send("GET", "/spin/greet/token", b"").await,
        (200, "token: s3cr3t".into())
    );

    // The client's address is the connection's peer, whatever it claims.
    let response = server
        .http
        .get(server.url("/spin/greet/headers?x=1"))
        .header("spin-client-addr", "203.0.113.9:1")
        .send()
        .await
        .unwrap();
    let status = response.status();
    let headers = response.text().await.unwrap();
    assert_eq!(status, 200, "{headers}");
    let client = headers
        .lines()
        .find_map(|l| l.strip_prefix("spin-client-addr: "))
        .unwrap_or_else(|| panic!("no spin-client-addr:\n{headers}"));
    let client: std::net::SocketAddr = client.parse().unwrap();
    assert!(client.ip().is_loopback(), "{client}");
    let port = server.gateway.rsplit(':').next().unwrap();
    for line in [
        format!("spin-full-url: http://127.0.0.1:{port}/spin/greet/headers?x=1"),
        "spin-path-info: /headers".to_string(),
        "spin-matched-route: /spin/greet/...".to_string(),
        "spin-component-route: /greet".to_string(),
        "spin-raw-component-route: /greet/...".to_string(),
        "spin-base-path: /spin".to_string(),
        "GREETER_MODE: moved".to_string(),
    ] {
        assert!(headers.lines().any(|l| l == line), "{line}:\n{headers}");
    }
    // A client cannot tell the guest which route matched.
    let response = server
        .http
        .get(server.url("/spin/greet/hello/Bo"))
        .header("spin-path-info", "/token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "Hello from Spin, Bo!");
    // Paths outside the Spin routes are not the app's.
    assert_eq!(server.send("GET", "/greet/hello/Ada", b"").await.0, 404);
    neighbour_answers(&server, neighbour, "the Spin app").await;
}

#[tokio::test]
async fn what_a_spin_app_needs_that_stratus_lacks_is_refused_and_nothing_changes() {
    let server = Server::start();
    let neighbour = &unique("next");
    server.deploy(testbed_app(neighbour, "echo", &[&format!("/{neighbour}/...")], "").path());
    let base = "spin_manifest_version = 2\n[application]\nname = \"refused\"\n\
                [[trigger.http]]\nroute = \"/refused/...\"\ncomponent = \"f\"\n\
                [component.f]\nsource = \"f.wasm\"\n";
    let cases: Vec<(String, Vec<u8>, &str)> = vec![
        (
            format!("{base}files = [\"static/**\"]\n"),
            std::fs::read(test_guest("testbed")).unwrap(),
            "Stratus functions have no file system",
        ),
        (
            base.replace(
                "source = \"f.wasm\"",
                "source = { url = \"https://example.com/f.wasm\", digest = \"sha256:00\" }",
            ),
            Vec::new(),
            "download it",
        ),
        (
            base.replace(
                "[[trigger.http]]",
                "[[trigger.redis]]\nchannel = \"c\"\ncomponent = \"f\"\n[[trigger.http]]",
            ),
            std::fs::read(test_guest("testbed")).unwrap(),
            "[[trigger.redis]]",
        ),
        // A wasip1 module without a component type: nothing to adapt.
        (
            base.to_string(),
            wat::parse_str("(module (func (export \"_start\")))").unwrap(),
            "core WebAssembly module without a component type",
        ),
        // One whose component type is garbage: the adapter says why.
        (
            base.to_string(),
            wat::parse_str("(module (@custom \"component-type:bogus\" \"not a component type\"))")
                .unwrap(),
            "cannot be made a component with the WASI preview 1 adapter",
        ),
    ];
    for (manifest, wasm, words) in cases {
        let dir = AppDir::new("");
        std::fs::remove_file(dir.path().join("stratus.toml")).ok();
        dir.write("spin.toml", manifest.as_bytes());
        if !wasm.is_empty() {
            dir.write("f.wasm", &wasm);
        }
        let err = server.deploy_err(dir.path());
        assert!(err.contains(words), "{words}: {err}");
        neighbour_answers(&server, neighbour, words).await;
    }
    let apps = stdout(&server.cli(&["apps", "--format", "json"]));
    assert!(!apps.contains("refused"), "{apps}");
}
