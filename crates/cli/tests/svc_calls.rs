//! Functions calling functions: `http://<function>.svc/…` in process,
//! granted by `allowed_outbound`, metered and limited like any request,
//! bounded in depth; and the per-invocation outbound limits.

use crate::common::*;

/// An app `app` whose functions are `(name, component, extra manifest
/// lines)`, each routed at `/<app>/<name>/...`. The `capabilities` guest
/// imports key-value and config, so its functions are granted both.
fn app_of(app: &str, functions: &[(&str, &str, &str)]) -> AppDir {
    let mut manifest = format!("[app]\nname = \"{app}\"\n");
    for (name, component, extra) in functions {
        let mut grants = String::new();
        if *component == "capabilities" {
            grants.push_str("keyvalue = [\"default\"]\n");
            if !extra.contains("config") {
                grants.push_str("config = { role = \"test\" }\n");
            }
        }
        manifest.push_str(&format!(
            "\n[[function]]\nname = \"{name}\"\ncomponent = \"{}\"\nroutes = [\"/{app}/{name}/...\"]\n{grants}{extra}\n",
            test_guest(component).display()
        ));
    }
    AppDir::new(&manifest)
}

async fn get(server: &Server, path: &str) -> (u16, String, String) {
    let response = server.get(path).await;
    let status = response.status().as_u16();
    let id = invocation_id(&response);
    (status, response.text().await.unwrap(), id)
}

#[tokio::test]
async fn a_function_calls_another_in_process_and_the_call_is_recorded() {
    let server = Server::start();
    let app = "calls";
    server.deploy(
        app_of(
            app,
            &[
                (
                    "front",
                    "capabilities",
                    "allowed_outbound = [\"http://back.svc\"]",
                ),
                ("back", "capabilities", "config = { who = \"back here\" }"),
                ("lonely", "capabilities", ""),
            ],
        )
        .path(),
    );

    let (status, body, front_id) = get(
        &server,
        "/calls/front/call?url=http://back.svc/config?key=who",
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "200 back here"));

    // The callee's invocation names its caller; the caller's counts the call.
    let front = server.invocation(&front_id).await;
    assert_eq!(front["outbound_requests"], 1, "{front}");
    assert!(
        front["outbound_bytes"].as_u64().unwrap() >= "back here".len() as u64,
        "{front}"
    );

    // A function without the grant is denied, inside the guest.
    let (status, body, _) = get(
        &server,
        "/calls/lonely/call?url=http://back.svc/config?key=who",
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (502, "denied: ErrorCode::HttpRequestDenied")
    );
    assert!(
        server.logs("allowed_outbound").await,
        "the denial names the key"
    );
    assert_eq!(server.metric("stratus_outbound_denied_total").await, 1);
    assert_eq!(server.metric("stratus_service_calls_total").await, 1);

    // Granted, but no such function: the platform's JSON error.
    server.deploy(
        app_of(
            app,
            &[
                (
                    "front",
                    "capabilities",
                    "allowed_outbound = [\"http://*.svc\"]",
                ),
                ("tiny", "testbed", "max_body = \"1KiB\""),
            ],
        )
        .path(),
    );
    let (status, body, _) = get(&server, "/calls/front/call?url=http://ghost.svc/").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("404 "), "{body}");
    assert!(body.contains("\"no_function\""), "{body}");

    // The callee's `max_body` holds for calls as for the gateway.
    let (_, body, _) = get(&server, "/calls/front/post?url=http://tiny.svc/echo&kb=1").await;
    assert_eq!(body.len(), "200 ".len() + 1024, "{body}");
    let (_, body, _) = get(&server, "/calls/front/post?url=http://tiny.svc/echo&kb=2").await;
    assert!(body.starts_with("413 "), "{body}");
    assert!(body.contains("body_too_large"), "{body}");
}

#[tokio::test]
async fn the_callee_records_its_caller() {
    let server = Server::start();
    server.deploy(
        app_of(
            "chain",
            &[
                ("a", "capabilities", "allowed_outbound = [\"http://b.svc\"]"),
                ("b", "testbed", ""),
            ],
        )
        .path(),
    );
    let (status, b_id, a_id) = get(&server, "/chain/a/callid?url=http://b.svc/echo").await;
    assert_eq!(status, 200, "{b_id}");
    assert_eq!(
        b_id.len(),
        32,
        "the callee's answer carries its invocation id: {b_id}"
    );
    let b = server.invocation(&b_id).await;
    assert_eq!(b["trigger"], "service", "{b}");
    assert_eq!(b["caller"], a_id.as_str(), "{b}");
    assert_eq!(b["function"], "b", "{b}");
    let a = server.invocation(&a_id).await;
    assert_eq!(a["trigger"], "http", "{a}");
    assert_eq!(a["caller"], serde_json::Value::Null, "{a}");
}

#[tokio::test]
async fn a_cycle_of_calls_ends_with_a_clear_error() {
    let server = Server::start();
    server.deploy(
        app_of(
            "cycle",
            &[(
                "loop",
                "capabilities",
                "allowed_outbound = [\"http://loop.svc\"]\nmax_concurrency = 20",
            )],
        )
        .path(),
    );
    // Each level prefixes its n; level 9 (depth 9) is refused.
    let (status, body, _) = get(&server, "/cycle/loop/chain?n=20&self=loop").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("20>200 19>200 18>"), "{body}");
    assert!(body.contains("508 "), "{body}");
    assert!(body.contains("call_depth_exceeded"), "{body}");
    assert!(body.contains("at most 8"), "{body}");
    // A chain within the bound completes.
    let (status, body, _) = get(&server, "/cycle/loop/chain?n=3&self=loop").await;
    assert_eq!((status, body.as_str()), (200, "3>200 2>200 1>200 bottom"));
}

#[tokio::test]
async fn outbound_requests_bytes_and_time_are_limited_per_invocation() {
    let server = Server::start();
    server.deploy(
        app_of(
            "limits",
            &[
                (
                    "caller",
                    "capabilities",
                    "allowed_outbound = [\"http://*.svc\"]\nmax_outbound_requests = 3\nmax_outbound_bytes = \"1KiB\"\noutbound_timeout = \"300ms\"",
                ),
                ("target", "testbed", ""),
                ("bulk", "capabilities", ""),
            ],
        )
        .path(),
    );
    // The fourth request of one invocation is refused; the next
    // invocation starts a new count.
    let (status, body, id) = get(
        &server,
        "/limits/caller/callmany?n=4&url=http://target.svc/ok",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(&lines[..3], ["200 200 testbed"; 3], "{body}");
    assert!(lines[3].contains("max_outbound_requests"), "{body}");
    let detail = server.invocation(&id).await;
    assert_eq!(detail["outbound_requests"], 4, "{detail}");
    let (_, body, _) = get(
        &server,
        "/limits/caller/callmany?n=1&url=http://target.svc/ok",
    )
    .await;
    assert_eq!(body, "200 200 testbed");

    // An answer bigger than the invocation's byte budget (1 KiB) fails
    // in the guest; one within it arrives.
    let (_, body, _) = get(&server, "/limits/caller/call?url=http://bulk.svc/big?kb=2").await;
    assert_eq!(body, "denied: ErrorCode::HttpResponseBodySize(None)");
    let (_, body, _) = get(&server, "/limits/caller/call?url=http://bulk.svc/big?kb=0").await;
    assert_eq!(body, "200 ");

    // A callee slower than `outbound_timeout` times out in the guest.
    let (_, body, _) = get(
        &server,
        "/limits/caller/call?url=http://target.svc/sleep?ms=2000",
    )
    .await;
    assert_eq!(body, "denied: ErrorCode::ConnectionReadTimeout");
}
