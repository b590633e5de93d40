//! The attacks the node already contained before issue 11, run as one
//! suite: for each, the attack is contained (the answer says what
//! happened) AND a neighbour function in another app keeps answering.

use std::time::Duration;

use crate::common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn neighbour_answers(server: &Server, after: &str) {
    let response = server
        .http
        .get(server.url("/n/echo"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap_or_else(|e| panic!("after {after}: the neighbour did not answer: {e}"));
    assert_eq!(response.status(), 200, "after {after}");
}

/// Sends raw bytes on a new connection and reads the first answer's
/// status line (empty if the node closed the connection without one).
async fn raw_status_line(server: &Server, request: &[u8]) -> String {
    let addr = server.gateway.trim_start_matches("http://").to_string();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut seen = Vec::new();
    let mut buf = [0; 4096];
    while !seen.windows(2).any(|w| w == b"\r\n") {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Err(_) => panic!("no answer to {:?}", String::from_utf8_lossy(request)),
        }
    }
    String::from_utf8_lossy(&seen)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

/// Sends raw bytes on a new connection and reads everything the node
/// answers until it closes the connection (or 5 s pass in silence).
async fn raw_answers(server: &Server, request: &[u8]) -> String {
    let addr = server.gateway.trim_start_matches("http://").to_string();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut seen = Vec::new();
    let mut buf = [0; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&seen).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_guests_are_contained_and_the_neighbour_keeps_answering() {
    let server = Server::start();
    let hostile = hostile_app("hostile", "/h/...", "timeout = \"1s\"\nmemory = \"16MiB\"");
    server.deploy(hostile.path());
    let neighbour = testbed_app("neighbour", "neighbour", &["/n/..."], "");
    server.deploy(neighbour.path());
    neighbour_answers(&server, "the deploys").await;

    // (path, status, words the answer must contain)
    let attacks = [
        ("/h/fanout?to=nobody&n=1", 200, "0 of 1"),
        ("/h/recurse", 502, "function_trapped"),
        ("/h/fields?count=100000&size=1", 502, "host resources"),
        ("/h/stream?chunks=2&size=16", 200, "xxxxxxxxxxxxxxxx"),
        ("/h/hang-after-body", 200, ""),
    ];
    for (path, status, words) in attacks {
        let response = server.get(path).await;
        assert_eq!(response.status(), status, "{path}");
        let text = response.text().await.unwrap_or_default();
        assert!(text.contains(words), "{path}: {text}");
        neighbour_answers(&server, path).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_testbed_attacks_are_contained_too() {
    let server = Server::start();
    let spinner = testbed_app(
        "spinner",
        "spinner",
        &["/s/..."],
        "timeout = \"1s\"\nmemory = \"16MiB\"",
    );
    server.deploy(spinner.path());
    let neighbour = testbed_app("neighbour", "neighbour", &["/n/..."], "");
    server.deploy(neighbour.path());

    for (path, status, code) in [
        ("/s/spin", 504, "timeout"),
        ("/s/alloc?mb=64", 502, "memory"),
        ("/s/panic", 502, "function_trapped"),
        ("/s/noresponse", 502, "bad_response"),
    ] {
        let response = server.get(path).await;
        assert_eq!(response.status(), status, "{path}");
        let text = response.text().await.unwrap();
        assert!(text.contains(code), "{path}: {text}");
        neighbour_answers(&server, path).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_clients_are_refused_and_the_neighbour_keeps_answering() {
    let server = Server::start();
    let neighbour = testbed_app("neighbour", "neighbour", &["/n/..."], "");
    server.deploy(neighbour.path());

    // A header flood: a thousand headers.
    let mut flood = b"GET /n/echo HTTP/1.1\r\nhost: t\r\n".to_vec();
    for i in 0..1000 {
        flood.extend_from_slice(format!("x-flood-{i}: {}\r\n", "v".repeat(64)).as_bytes());
    }
    flood.extend_from_slice(b"\r\n");
    let status = raw_status_line(&server, &flood).await;
    assert!(status.contains("431") || status.is_empty(), "{status}");
    neighbour_answers(&server, "a header flood").await;

    // Request smuggling: both a length and chunked framing, and two
    // different lengths. Either is refused, never read two ways.
    // RFC 9112 6.3: the connection must close after such a request, so
    // the request hidden in its body is never answered.
    let both = b"POST /n/echo HTTP/1.1\r\nhost: t\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nGET /n/smuggled HTTP/1.1\r\nhost: t\r\n\r\n";
    let answers = raw_answers(&server, both).await;
    assert!(
        !answers.contains("x-echo-path: /n/smuggled"),
        "the smuggled request was served: {answers}"
    );
    assert!(answers.matches("HTTP/1.1 ").count() <= 1, "{answers}");
    let two =
        b"POST /n/echo HTTP/1.1\r\nhost: t\r\ncontent-length: 4\r\ncontent-length: 9\r\n\r\nabcd";
    let status = raw_status_line(&server, two).await;
    assert!(status.contains("400") || status.is_empty(), "{status}");
    neighbour_answers(&server, "smuggling attempts").await;

    // Garbage that is not HTTP at all.
    let status = raw_status_line(&server, b"\x16\x03\x01\x02\x00garbage\r\n\r\n").await;
    assert!(status.contains("400") || status.is_empty(), "{status}");
    neighbour_answers(&server, "garbage bytes").await;

    // Uploads that are no function: garbage, a core module, an ungranted
    // import. Each is refused with a reason and changes nothing.
    for (name, bytes, words) in [
        (
            "garbage",
            b"definitely not wasm".to_vec(),
            "not WebAssembly",
        ),
        (
            "core",
            wat::parse_str("(module)").unwrap(),
            "core WebAssembly module",
        ),
        (
            "ungranted",
            std::fs::read(test_guest("capabilities")).unwrap(),
            "was not granted",
        ),
    ] {
        let app = AppDir::new(&format!(
            "[app]\nname = \"{name}\"\n\n[[function]]\nname = \"{name}\"\ncomponent = \"f.wasm\"\nroutes = [\"/{name}\"]\n"
        ));
        app.write("f.wasm", &bytes);
        let err = server.deploy_err(app.path());
        assert!(err.contains(words), "{name}: {err}");
        neighbour_answers(&server, name).await;
    }
    let apps = server.cli(&["apps", "--format", "json"]);
    let apps = stdout(&apps);
    assert!(
        !apps.contains("garbage") && !apps.contains("ungranted"),
        "{apps}"
    );
}
