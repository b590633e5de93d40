//! Containment of outbound HTTP (issue 11, item 9): `allowed_outbound`
//! names hosts, but the node checks where a name resolves. A name that
//! resolves to loopback (here the node's own admin API) is refused unless
//! the node runs with `--outbound-allow-private` or the pattern is that IP
//! address itself; redirects are the guest's to follow, each hop checked
//! again. Each case runs against the real binary, with a neighbour
//! function in another app that must keep answering.

use crate::common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An app serving the hostile guest at `/o/...` with `allowed_outbound`.
fn prober(allowed: &[String]) -> AppDir {
    let allowed: Vec<String> = allowed.iter().map(|p| format!("\"{p}\"")).collect();
    AppDir::new(&format!(
        "[app]\nname = \"probe\"\n\n[[function]]\nname = \"probe\"\ncomponent = \"{}\"\nroutes = [\"/o/...\"]\nallowed_outbound = [{}]\n",
        test_guest("hostile").display(),
        allowed.join(", ")
    ))
}

/// Deploys the neighbour (testbed at `/n/...`, app `neighbour`).
fn deploy_neighbour(server: &Server) -> AppDir {
    let neighbour = testbed_app("neighbour", "neighbour", &["/n/..."], "");
    server.deploy(neighbour.path());
    neighbour
}

async fn assert_neighbour_answers(server: &Server) {
    let response = server.get("/n/echo").await;
    assert_eq!(response.status(), 200, "the neighbour must keep answering");
}

/// The port of the node's admin API (on 127.0.0.1).
fn admin_port(server: &Server) -> u16 {
    server
        .admin
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// What the prober says when asked to GET `url`: `reached: STATUS` or
/// `denied: CODE`.
async fn fetch(server: &Server, url: &str) -> String {
    let encoded = url.replace(':', "%3A").replace('/', "%2F");
    let response = server.get(&format!("/o/fetch?url={encoded}")).await;
    assert_eq!(response.status(), 200, "{url}");
    response.text().await.unwrap()
}

/// A plain HTTP server on 127.0.0.1: `/hop` redirects to `location`,
/// everything else answers 200. Returns its port.
async fn loopback_server(location: String) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let location = location.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = if head.starts_with(b"GET /hop ") {
                    format!(
                        "HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    )
                } else {
                    "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                        .to_string()
                };
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    port
}

#[tokio::test]
async fn a_name_that_resolves_to_loopback_cannot_reach_the_admin_port() {
    let server = Server::start();
    let _neighbour = deploy_neighbour(&server);
    let app = prober(&["http://localhost:*".to_string()]);
    server.deploy(app.path());
    assert_neighbour_answers(&server).await;

    let healthz = format!("http://localhost:{}/healthz", admin_port(&server));
    assert_eq!(
        fetch(&server, &healthz).await,
        "denied: ErrorCode::HttpRequestDenied"
    );
    assert_eq!(server.metric("stratus_outbound_denied_total").await, 1);
    // The node says which address and how to allow it.
    assert!(server.logs("--outbound-allow-private").await);
    let log = server.node_log();
    let line = log
        .lines()
        .find(|line| line.contains("outbound HTTP request refused"))
        .unwrap();
    assert!(line.contains("host=\"localhost\""), "{line}");
    assert!(
        line.contains("address=127.0.0.1") || line.contains("address=::1"),
        "{line}"
    );
    assert!(line.contains("range=loopback"), "{line}");
    assert_neighbour_answers(&server).await;
}

#[tokio::test]
async fn with_outbound_allow_private_the_name_reaches_it() {
    let server = Server::start_with(&["--outbound-allow-private"]);
    let _neighbour = deploy_neighbour(&server);
    let app = prober(&["http://localhost:*".to_string()]);
    server.deploy(app.path());

    let healthz = format!("http://localhost:{}/healthz", admin_port(&server));
    assert_eq!(fetch(&server, &healthz).await, "reached: 200");
    assert_eq!(server.metric("stratus_outbound_denied_total").await, 0);
    assert_neighbour_answers(&server).await;
}

#[tokio::test]
async fn an_ip_literal_pattern_reaches_a_loopback_server_and_redirects_are_checked_per_hop() {
    let server = Server::start();
    let _neighbour = deploy_neighbour(&server);
    // The loopback server redirects `/hop` to the node's admin API, by a
    // name that resolves to loopback.
    let healthz = format!("http://localhost:{}/healthz", admin_port(&server));
    let port = loopback_server(healthz.clone()).await;
    let app = prober(&[
        format!("http://127.0.0.1:{port}"),
        "http://localhost:*".to_string(),
    ]);
    server.deploy(app.path());
    assert_neighbour_answers(&server).await;

    // The pattern is the address itself: the operator meant it.
    let root = format!("http://127.0.0.1:{port}/");
    assert_eq!(fetch(&server, &root).await, "reached: 200");
    // The node does not follow the redirect: the guest gets the 302 ...
    let hop = format!("http://127.0.0.1:{port}/hop");
    assert_eq!(fetch(&server, &hop).await, "reached: 302");
    // ... and following it is a new request, checked again.
    assert_eq!(
        fetch(&server, &healthz).await,
        "denied: ErrorCode::HttpRequestDenied"
    );
    assert_eq!(server.metric("stratus_outbound_denied_total").await, 1);
    assert_neighbour_answers(&server).await;
}
