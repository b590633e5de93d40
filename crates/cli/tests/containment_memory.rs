//! Containment of host memory (issue 11, item 3): what a guest makes the
//! host hold for it — here `wasi:http` fields, the attack that grew a node by
//! 920 MB from a 64 MiB function — stays within a budget derived from the
//! function's `memory` cap, and a neighbour in another app keeps answering.

use crate::common::*;

/// A line of `/proc/<pid>/status` in bytes (`VmRSS`, `VmHWM`).
fn proc_status_bytes(server: &Server, field: &str) -> u64 {
    let pid = server.child.as_ref().unwrap().id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fields_flood_stays_within_the_functions_budget() {
    let server = Server::start();
    let hostile = hostile_app("flood", "/h/...", "memory = \"64MiB\"");
    server.deploy(hostile.path());
    let neighbour = testbed_app("neighbour", "neighbour", &["/n/..."], "");
    server.deploy(neighbour.path());
    assert_eq!(server.get("/n/echo").await.status(), 200);

    // One header of 120 KB is more than a `fields` may hold: the host ends
    // the guest at once, saying why.
    let response = server.get("/h/fields?count=8000&size=120000").await;
    assert_eq!(response.status(), 502);
    let text = response.text().await.unwrap();
    assert!(text.contains("larger than the 64 KiB"), "{text}");

    // Fields just under that limit, 8,000 of them (≈ 480 MB if the host
    // kept them all): the guest runs out of handles at its budget.
    let before = proc_status_bytes(&server, "VmRSS");
    let response = server.get("/h/fields?count=8000&size=60000").await;
    let id = invocation_id(&response);
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 502, "{text}");
    assert!(text.contains("host resources"), "{text}");
    let peak = proc_status_bytes(&server, "VmHWM");
    let grown = peak.saturating_sub(before);
    eprintln!("the node grew by at most {} MiB", grown >> 20);
    assert!(
        grown < 2 * (64 << 20),
        "the node grew by {} MiB for a 64 MiB function",
        grown >> 20
    );
    // The record shows the peak the guest made the host hold: its budget,
    // nearly all of it headers.
    let record = server.invocation(&id).await;
    let host = record["peak_host_memory_bytes"].as_u64().unwrap();
    assert!(
        (32 << 20..=64 << 20).contains(&host),
        "peak host memory {host} bytes: {record}"
    );
    assert_eq!(server.get("/n/echo").await.status(), 200);
}
