//! The durable queue's promise under `kill -9`: every event acknowledged to
//! its sender is delivered at least once, even when the node dies in the
//! middle of delivering.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::common::*;
use futures_util::StreamExt;

const EVENTS: usize = 3000;

#[tokio::test]
async fn every_acknowledged_event_is_delivered_after_a_kill_mid_delivery() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut server = Server::start_in(&data, &["--max-instances", "64"]);
    let app = testbed_app("crash", "slow", &[], "max_concurrency = 32");
    server.deploy(app.path());

    // Each delivery takes 20 ms and at most 32 run at once, so the whole
    // batch needs about two seconds: the kill lands mid-delivery.
    let submit_url =
        server.admin_url("/v1/functions/slow/invocations?mode=async&path=/sleep?ms=20");
    let http = server.http.clone();
    let acknowledged: Vec<String> = futures_util::stream::iter(0..EVENTS)
        .map(|i| {
            let (http, url) = (http.clone(), submit_url.clone());
            async move {
                let response = http
                    .post(url)
                    .bearer_auth(TOKEN)
                    .body(format!("event {i}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 202);
                json(response).await["id"].as_str().unwrap().to_string()
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let handled_before: usize = function_events(&server, "slow")
        .await
        .iter()
        .filter(|e| e["state"] == "succeeded")
        .count();
    server.kill_9();
    assert!(
        handled_before < EVENTS,
        "the kill should land mid-delivery, but all {EVENTS} were already handled"
    );

    let server = Server::start_in(&data, &["--max-instances", "64"]);
    let wanted: HashSet<String> = acknowledged.into_iter().collect();
    assert_eq!(wanted.len(), EVENTS, "ids are distinct");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let events = function_events(&server, "slow").await;
        // A succeeded event is one whose handler answered 2xx for its ce-id.
        let handled: HashSet<String> = events
            .iter()
            .filter(|e| e["state"] == "succeeded" && e["result"] == "slept 20")
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect();
        let missing = wanted.difference(&handled).count();
        if missing == 0 {
            eprintln!("{handled_before} handled before the kill, all {EVENTS} after the restart");
            break;
        }
        assert!(
            events.iter().all(|e| e["state"] != "dead"),
            "no event may die: {:?}",
            events.iter().find(|e| e["state"] == "dead")
        );
        assert!(
            Instant::now() < deadline,
            "{missing} acknowledged events never handled"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
