//! Containment at the connection level (issue 11, items 1, 2 and 4):
//! clients that do not read, bodies that trickle, connection floods and
//! failures after the headers. Each attack runs against the real binary,
//! with a neighbour function in another app that must keep answering.

use std::time::{Duration, Instant};

use crate::common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Deploys the neighbour (testbed at `/n/...`, app `neighbour`).
fn deploy_neighbour(server: &Server) -> AppDir {
    let neighbour = testbed_app("neighbour", "neighbour", &["/n/..."], "");
    server.deploy(neighbour.path());
    neighbour
}

fn gateway_addr(server: &Server) -> String {
    server
        .gateway
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

/// Opens a connection and sends `request` (headers and whatever follows).
async fn send_raw(addr: &str, request: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    stream
}

/// Reads until the server closes the connection (or resets it), at most
/// `limit`; returns what was read and whether it was closed in time.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let mut seen = Vec::new();
    let mut buf = vec![0; 256 * 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (seen, true),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Err(_) => return (seen, false),
        }
    }
}

/// The admin API's `/healthz` answers 200 within 2 s.
async fn assert_admin_answers(server: &Server) {
    let health = server
        .http
        .get(server.admin_url("/healthz"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(
        health.is_ok_and(|r| r.status() == 200),
        "/healthz did not answer"
    );
}

/// The neighbour's status right now, waiting at most `limit` for it.
async fn neighbour_status(server: &Server, limit: Duration) -> Option<u16> {
    let request = server.http.get(server.url("/n/echo")).timeout(limit).send();
    request.await.ok().map(|r| r.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_do_not_read_hold_no_capacity_past_the_timeout() {
    let server = Server::start_with(&[
        "--max-instances",
        "8",
        "--queue-timeout",
        "200ms",
        "--write-timeout",
        "20s",
    ]);
    let streamer = hostile_app("streamer", "/h/...", "timeout = \"3s\"");
    server.deploy(streamer.path());
    let _neighbour = deploy_neighbour(&server);
    assert_eq!(
        neighbour_status(&server, Duration::from_secs(5)).await,
        Some(200)
    );

    // Nine clients ask for an endless answer and never read it: the node's
    // eight instance slots are taken by guests blocked on full sockets.
    let addr = gateway_addr(&server);
    let attacked = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..9 {
        clients.push(send_raw(&addr, b"GET /h/stream HTTP/1.1\r\nhost: t\r\n\r\n").await);
    }
    // The attack works: while the guests run, the neighbour is shed.
    let mut shed = false;
    while attacked.elapsed() < Duration::from_millis(2500) {
        if neighbour_status(&server, Duration::from_secs(1)).await == Some(429) {
            shed = true;
            break;
        }
    }
    assert!(shed, "the streams never took the node's capacity");

    // Their timeout (3 s) ends the guests and releases their capacity
    // although the clients still read nothing.
    let answered = loop {
        if neighbour_status(&server, Duration::from_secs(1)).await == Some(200) {
            break attacked.elapsed();
        }
        assert!(
            attacked.elapsed() < Duration::from_secs(5),
            "the neighbour got no 200 within the streams' timeout + 2 s"
        );
    };
    eprintln!("the neighbour answered 200 after {answered:?}");

    // The cut-off answers are not passed off as whole ones: each ends
    // without the final chunk.
    for mut client in clients {
        let (seen, closed) = read_until_closed(&mut client, Duration::from_secs(30)).await;
        assert!(closed, "a stream's connection stayed open");
        assert!(
            !seen.ends_with(b"0\r\n\r\n"),
            "a cut-off stream ended cleanly"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_makes_no_write_progress_is_closed() {
    let server = Server::start_with(&["--write-timeout", "2s"]);
    let streamer = hostile_app("streamer", "/h/...", "timeout = \"60s\"");
    server.deploy(streamer.path());
    let _neighbour = deploy_neighbour(&server);

    // 64 MiB, far more than the sockets and the body's buffer hold: the
    // guest blocks, the client reads only the headers.
    let addr = gateway_addr(&server);
    let started = Instant::now();
    let mut client = send_raw(
        &addr,
        b"GET /h/stream?chunks=1024&size=65536 HTTP/1.1\r\nhost: t\r\n\r\n",
    )
    .await;
    let mut head = vec![0; 512];
    let n = client.read(&mut head).await.unwrap();
    let head = String::from_utf8_lossy(&head[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let id = head
        .lines()
        .find_map(|l| l.strip_prefix("x-stratus-invocation-id: "))
        .unwrap()
        .trim()
        .to_string();

    // No write progress for 2 s closes the connection, which ends the
    // invocation long before its 60 s timeout: its record appears.
    let record = server.invocation(&id).await;
    assert_eq!(record["error"], "client_disconnected", "{record}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the connection was closed only after {:?}",
        started.elapsed()
    );
    let (seen, closed) = read_until_closed(&mut client, Duration::from_secs(10)).await;
    assert!(closed, "the stalled connection is still open");
    assert!(seen.len() < 64 << 20, "the whole answer arrived");
    assert_eq!(
        neighbour_status(&server, Duration::from_secs(5)).await,
        Some(200)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_after_the_headers_aborts_the_body_and_the_event() {
    let server = Server::start_with(&["--max-attempts", "2", "--retry-base", "50ms"]);
    let hostile = hostile_app("hostile", "/h/...", "timeout = \"1s\"");
    server.deploy(hostile.path());
    let _neighbour = deploy_neighbour(&server);

    for (path, code) in [
        ("/h/trap-after-body", "function_trapped"),
        ("/h/hang-after-body", "timeout"),
    ] {
        let response = server.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let id = invocation_id(&response);
        // The client sees a broken body, not a complete 200.
        let body = response.bytes().await;
        assert!(body.is_err(), "{path}: the cut-off body read as whole");
        let record = server.invocation(&id).await;
        assert_eq!(record["error"], code, "{path}: {record}");
        assert_eq!(
            neighbour_status(&server, Duration::from_secs(5)).await,
            Some(200)
        );
    }

    // An event whose invocation failed mid-body is a failure: retried,
    // then dead, never `succeeded`.
    let accepted = submit(&server, "hostile", "/h/trap-after-body", "x").await;
    let event = settled(&server, accepted["id"].as_str().unwrap()).await;
    assert_eq!(event["state"], "dead", "{event}");
    assert_eq!(event["attempts"], 2, "{event}");
    assert!(
        event["last_error"]
            .as_str()
            .unwrap()
            .contains("after its response began"),
        "{event}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickling_bodies_are_cut_off_and_the_admin_api_keeps_answering() {
    let server = Server::start_with(&["--read-timeout", "2s", "--body-timeout", "4s"]);
    let _neighbour = deploy_neighbour(&server);
    let addr = gateway_addr(&server);

    // 200 chunked uploads, each trickling one byte a second: never idle
    // for the read timeout, but never done either.
    let started = Instant::now();
    let mut uploads = Vec::new();
    for _ in 0..200 {
        let addr = addr.clone();
        uploads.push(tokio::spawn(async move {
            let mut stream = send_raw(
                &addr,
                b"POST /n/echo HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n",
            )
            .await;
            let mut answer = Vec::new();
            let mut buf = [0; 1024];
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if stream.write_all(b"1\r\na\r\n").await.is_err() {
                            break;
                        }
                    }
                    read = stream.read(&mut buf) => match read {
                        Ok(0) | Err(_) => break,
                        Ok(n) => answer.extend_from_slice(&buf[..n]),
                    },
                }
                if started.elapsed() > Duration::from_secs(30) {
                    break;
                }
            }
            (
                String::from_utf8_lossy(&answer).to_string(),
                started.elapsed(),
            )
        }));
    }

    // Meanwhile the admin API and the neighbour answer promptly.
    let watching = Instant::now();
    while !uploads.iter().all(|u| u.is_finished()) && watching.elapsed() < Duration::from_secs(30) {
        assert_admin_answers(&server).await;
        assert_eq!(
            neighbour_status(&server, Duration::from_secs(2)).await,
            Some(200)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for upload in uploads {
        let (answer, after) = upload.await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("--body-timeout"), "{answer}");
        assert!(
            after < Duration::from_secs(15),
            "closed only after {after:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_leaves_room_for_the_admin_api() {
    // 400 descriptors: the gateway may hold 200 connections; 600 clients
    // that send nothing try to take them all.
    let server = Server::start_with_descriptors(400, &["--read-timeout", "2s"]);
    let _neighbour = deploy_neighbour(&server);
    let addr = gateway_addr(&server);
    let mut idle = Vec::new();
    for _ in 0..600 {
        if let Ok(stream) = TcpStream::connect(&addr).await {
            idle.push(stream);
        }
    }
    // The admin API answers throughout, and once the read timeout has
    // closed the silent connections, the gateway serves again.
    let flooded = Instant::now();
    loop {
        assert_admin_answers(&server).await;
        if neighbour_status(&server, Duration::from_secs(2)).await == Some(200) {
            break;
        }
        assert!(
            flooded.elapsed() < Duration::from_secs(20),
            "the gateway never served again"
        );
    }
    drop(idle);
    assert!(
        !server.node_log().contains("Too many open files"),
        "the node ran out of descriptors"
    );
}
