//! Deploy input cannot stall the node (issue 11, item 7): manifests are
//! parsed on the blocking pool in linear time and capped in size and
//! routes, so deploys of the largest manifests a node accepts, even two at
//! once, leave a neighbour in another app answering promptly, and what is
//! over a cap is refused naming the limit, storing nothing. Compiles are
//! bounded too: a component of 50,000 functions compiles beside serving
//! without slowing the neighbour, its refusal leaves no compiled code, and
//! one over `--compile-max-functions` is refused before compiling.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::*;

/// The most a neighbour request may take while deploys are in flight; an
/// unloaded one takes a millisecond or two.
const PROMPT: Duration = Duration::from_secs(2);

/// A manifest of `app` with 256 routes (the most an app may have) over four
/// functions of the testbed component, padded with `env` variables (many
/// small values: the most parsing work per byte) to `size` bytes.
fn heavy_manifest(app: &str, size: usize) -> String {
    let component = test_guest("testbed").display().to_string();
    let mut text = format!("[app]\nname = \"{app}\"\n");
    for f in 0..4 {
        let routes: Vec<String> = (0..64).map(|r| format!("\"/{app}/f{f}/r{r}\"")).collect();
        text.push_str(&format!(
            "\n[[function]]\nname = \"f{f}\"\ncomponent = \"{component}\"\nroutes = [{}]\n",
            routes.join(", ")
        ));
    }
    text.push_str("env = { ");
    let last = "V = \"x\" }\n";
    for n in 0.. {
        let variable = format!("V{n} = \"x\", ");
        // Stops where the next variable would leave no room for the last
        // one: the padding fits whatever the component's path length.
        if text.len() + variable.len() + last.len() > size {
            break;
        }
        text.push_str(&variable);
    }
    text.push_str(last);
    assert!(text.len() <= size, "{}", text.len());
    text
}

/// POSTs a deploy the way a client that skips local checks would: the
/// manifest and the testbed component.
async fn post_deploy(server: &Server, manifest: String) -> (u16, serde_json::Value) {
    let path = test_guest("testbed");
    let bytes = std::fs::read(&path).unwrap();
    server
        .post_deploy(&manifest, &path.display().to_string(), bytes)
        .await
}

async fn apps(server: &Server) -> serde_json::Value {
    let (status, apps) = server.admin_get("/v1/apps").await;
    assert_eq!(status, 200, "{apps}");
    apps
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deploys_of_the_largest_manifests_leave_a_neighbour_answering() {
    let _cores = timed().await;
    let server = Arc::new(Server::start());
    server.deploy(testbed_app("neighbour", "neighbour", &["/n/..."], "").path());
    assert_eq!(server.get("/n/echo").await.status(), 200);

    let limit = stratus_manifest::MAX_MANIFEST_SIZE.bytes() as usize;
    // Two deployers, each sending a manifest just under the cap, one five
    // times the cap (1.3 MB), and the first again (a new version).
    let deployers: Vec<_> = ["big-a", "big-b"]
        .into_iter()
        .map(|app| {
            let server = server.clone();
            tokio::spawn(async move {
                let heavy = heavy_manifest(app, limit - 100);
                let over = heavy_manifest(app, 5 * limit + 100_000);
                assert!(over.len() > 1_300_000, "{}", over.len());
                let mut outcomes = Vec::new();
                for manifest in [heavy.clone(), over, heavy] {
                    let started = Instant::now();
                    let outcome = post_deploy(&server, manifest).await;
                    eprintln!("info: {app}: {} in {:?}", outcome.0, started.elapsed());
                    outcomes.push(outcome);
                }
                outcomes
            })
        })
        .collect();

    // The neighbour is asked again and again until both deployers are done.
    let done = Arc::new(AtomicBool::new(false));
    let neighbour = {
        let (server, done) = (server.clone(), done.clone());
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let started = Instant::now();
                let response = server.get("/n/echo").await;
                assert_eq!(response.status(), 200);
                latencies.push(started.elapsed());
            }
            latencies
        })
    };
    let mut outcomes = Vec::new();
    for deployer in deployers {
        outcomes.push(deployer.await.unwrap());
    }
    done.store(true, Ordering::Relaxed);
    let latencies = neighbour.await.unwrap();

    let slowest = latencies.iter().max().copied().unwrap_or_default();
    eprintln!(
        "info: {} neighbour requests during the deploys, the slowest in {slowest:?}",
        latencies.len()
    );
    assert!(!latencies.is_empty(), "the neighbour was never asked");
    assert!(slowest < PROMPT, "a neighbour request took {slowest:?}");

    for (app, outcome) in ["big-a", "big-b"].into_iter().zip(outcomes) {
        let [(first, deployed), (refused, error), (again, redeployed)] = &outcome[..] else {
            panic!("{outcome:?}");
        };
        assert_eq!((*first, *again), (201, 201), "{deployed} {redeployed}");
        assert_eq!(deployed["app"], app);
        assert_eq!(redeployed["version"], 2, "{redeployed}");
        assert_eq!(*refused, 413, "{error}");
        assert_eq!(error["error"]["code"], "manifest_too_large");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("more than the 256KiB (262144 bytes) a manifest may have"),
            "{message}"
        );
    }
    // Each app kept the versions that were accepted, no more.
    let apps = apps(&server).await;
    for app in ["big-a", "big-b"] {
        let found = apps
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == app)
            .unwrap();
        assert_eq!(found["versions"], 2, "{found}");
    }
    assert_eq!(server.get("/big-a/f3/r63").await.status(), 200);
}

#[tokio::test]
async fn too_many_routes_are_refused_naming_the_limit_and_nothing_is_stored() {
    let server = Server::start();
    server.deploy(testbed_app("neighbour", "neighbour", &["/n/..."], "").path());
    let before = apps(&server).await;

    let routes: Vec<String> = (0..257).map(|r| format!("/many/r{r}")).collect();
    let routes: Vec<&str> = routes.iter().map(String::as_str).collect();
    let app = testbed_app("many", "many", &routes, "");
    let manifest = std::fs::read_to_string(app.path().join("stratus.toml")).unwrap();
    let (status, error) = post_deploy(&server, manifest).await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["error"]["code"], "invalid_manifest");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("stratus.toml:7:"), "{message}");
    assert!(
        message.contains(
            "function \"many\": this route makes app \"many\" exceed 256 routes, the most an app may have (counting the `routes` of all its functions)"
        ),
        "{message}"
    );

    // The CLI refuses it too, before sending anything.
    let err = server.deploy_err(app.path());
    assert!(err.contains("exceed 256 routes"), "{err}");

    assert_eq!(apps(&server).await, before, "the refused app left no trace");
    assert_eq!(server.get("/many/r0").await.status(), 404);
}

/// A token of `role` in `namespace`, made with the CLI.
fn namespace_token(server: &Server, namespace: &str, role: &str) -> String {
    let out = server.cli(&[
        "tokens",
        "create",
        "-n",
        namespace,
        "--role",
        role,
        "--name",
        "probe",
        "--expires",
        "1d",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).trim().to_owned()
}

/// A component of one core module with `n` small functions. It compiles
/// (the work grows with `n`), then is refused for not being an HTTP handler.
fn many_functions(n: usize) -> Vec<u8> {
    let body = "(func (param i32) (result i32) local.get 0 i32.const 7 i32.mul)";
    wat::parse_str(format!("(component (core module {}))", body.repeat(n))).unwrap()
}

/// POSTs a deploy of app `big` whose function `f` is `component`.
async fn post_component(server: &Server, component: Vec<u8>) -> (u16, serde_json::Value) {
    let manifest = "[app]\nname = \"big\"\n\n[[function]]\nname = \"f\"\ncomponent = \"f.wasm\"\nroutes = [\"/big\"]\n";
    server.post_deploy(manifest, "f.wasm", component).await
}

/// Every file under `dir`, recursively (none when it does not exist).
fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files(&path));
        } else {
            found.push(path);
        }
    }
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_compile_leaves_a_neighbour_answering_and_a_refusal_leaves_no_compiled_code() {
    let _cores = timed().await;
    let server = Arc::new(Server::start());
    server.deploy(testbed_app("neighbour", "neighbour", &["/n/..."], "").path());
    assert_eq!(server.get("/n/echo").await.status(), 200);
    let compiled = server.data_dir.join("compiled");
    let before = files(&compiled);
    assert!(
        before
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "cwasm")),
        "the neighbour's compiled code is cached: {before:?}"
    );
    let component = many_functions(50_000);

    // The neighbour is asked again and again until the deploy is answered;
    // the deploy is sent once the first answer came.
    let done = Arc::new(AtomicBool::new(false));
    let (asked, asked_rx) = tokio::sync::oneshot::channel();
    let neighbour = {
        let (server, done) = (server.clone(), done.clone());
        tokio::spawn(async move {
            let mut asked = Some(asked);
            let mut latencies = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let started = Instant::now();
                // Bounded, so a stalled node fails the test instead of hanging it.
                let response = tokio::time::timeout(Duration::from_secs(30), server.get("/n/echo"))
                    .await
                    .expect("the neighbour did not answer within 30 s");
                assert_eq!(response.status(), 200);
                latencies.push(started.elapsed());
                if let Some(asked) = asked.take() {
                    let _ = asked.send(());
                }
            }
            latencies
        })
    };
    // Meanwhile the deploy is shown in progress, function by function, to
    // its namespace only: another team's viewer sees nothing of it.
    let other_team = namespace_token(&server, "team-a", "viewer");
    let watcher = {
        let (server, done) = (server.clone(), done.clone());
        tokio::spawn(async move {
            let (mut seen, mut leaked) = (None, Vec::new());
            while !done.load(Ordering::Relaxed) {
                let (_, deploys) = server.admin_get("/v1/deploys").await;
                let compiling = deploys
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|d| d["app"] == "big" && d["functions"][0]["state"] == "compiling");
                if let Some(deploy) = compiling {
                    seen.get_or_insert(deploy.clone());
                }
                let theirs = server
                    .http
                    .get(server.admin_url("/v1/namespaces/team-a/deploys"))
                    .bearer_auth(&other_team)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(theirs.status(), 200);
                leaked.extend(json(theirs).await.as_array().cloned().unwrap_or_default());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (seen, leaked)
        })
    };
    asked_rx.await.unwrap();
    let started = Instant::now();
    let (status, error) = post_component(&server, component).await;
    let took = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let latencies = neighbour.await.unwrap();
    let (seen, leaked) = watcher.await.unwrap();
    let seen = seen.expect("the deploy was never shown compiling in /v1/deploys");
    assert_eq!(seen["functions"][0]["name"], "f", "{seen}");
    assert!(seen["functions"][0]["size"].as_u64().unwrap() > 0, "{seen}");
    assert!(leaked.is_empty(), "another namespace saw {leaked:?}");
    let (_, after) = server.admin_get("/v1/deploys").await;
    assert_eq!(
        after,
        serde_json::json!([]),
        "an answered deploy is no longer shown"
    );

    let slowest = latencies.iter().max().copied().unwrap_or_default();
    eprintln!(
        "info: the deploy of 50,000 functions was answered {status} in {took:?}; {} neighbour requests meanwhile, the slowest in {slowest:?}",
        latencies.len()
    );
    assert!(
        latencies.len() >= 10,
        "the neighbour was asked only {} times during the compile",
        latencies.len()
    );
    assert!(slowest < PROMPT, "a neighbour request took {slowest:?}");

    // Compiled, then refused: the reason names the function and the export
    // it lacks, which only the compiled component shows.
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["error"]["code"], "invalid_component", "{error}");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("\"f\""), "{message}");
    assert!(
        message.contains("does not export `wasi:http/incoming-handler"),
        "{message}"
    );
    // No artifact of it (nor a temp file) is left: every file left is the
    // neighbour's (named after its component, whichever tier or its
    // spool, which may come and go meanwhile).
    let names = |files: Vec<std::path::PathBuf>| {
        let mut names: Vec<_> = files
            .iter()
            .filter_map(|f| f.file_stem())
            .map(|n| n.to_owned())
            .collect();
        names.sort();
        names.dedup();
        names
    };
    assert_eq!(names(files(&compiled)), names(before));
    let apps = apps(&server).await;
    assert!(
        apps.as_array().unwrap().iter().all(|a| a["name"] != "big"),
        "{apps}"
    );
    assert_eq!(server.get("/n/echo").await.status(), 200);
}

#[tokio::test]
async fn a_component_over_compile_max_functions_is_refused_at_once_naming_the_flag() {
    let _cores = timed().await;
    let server = Server::start_with(&["--compile-max-functions", "1000"]);
    let compiled = server.data_dir.join("compiled");
    let before = files(&compiled);
    let started = Instant::now();
    let (status, error) = post_component(&server, many_functions(50_000)).await;
    let took = started.elapsed();
    eprintln!("info: refused in {took:?}");
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["error"]["code"], "invalid_component", "{error}");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(
            "the component declares 50000 functions; this node allows at most 1000 (--compile-max-functions)"
        ),
        "{message}"
    );
    // Refused before compiling (which takes seconds for these), so nothing
    // was cached.
    assert!(took < PROMPT, "the refusal took {took:?}");
    assert_eq!(files(&compiled), before);
}
