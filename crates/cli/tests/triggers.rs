//! Cron, NATS, JetStream and MQTT triggers against the real brokers on
//! their standard loopback ports (NATS with JetStream on 4222, Mosquitto on
//! 1883).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::*;

/// A JetStream API client with a stream taking the subjects `<name>.>`.
async fn create_stream(name: &str) -> JetStream {
    let js = JetStream::connect().await;
    js.create_stream(name).await;
    js
}

fn tick_of(event: &serde_json::Value) -> u64 {
    let id = event["id"].as_str().unwrap();
    id.rsplit('-').next().unwrap().parse().unwrap()
}

async fn cron_events(server: &Server, function: &str, at_least: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events: Vec<_> = function_events(server, function)
            .await
            .into_iter()
            .filter(|e| e["id"].as_str().unwrap().starts_with("cron-") && e["state"] == "succeeded")
            .collect();
        if events.len() >= at_least {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "only {} cron events",
            events.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn cron_fires_on_every_tick_even_when_scaled_to_zero() {
    // Idle for 200 ms, the function's code is dropped; ticks come every
    // 2 s, so each one finds it scaled to zero.
    let server = Server::start_with(&["--idle-ttl", "200ms"]);
    let app = testbed_app(
        "cron",
        "tick",
        &[],
        "triggers = [{ cron = \"*/2 * * * * *\" }]",
    );
    server.deploy(app.path());
    let events = cron_events(&server, "tick", 3).await;
    let cold = server.metric("stratus_cold_starts_total").await;
    assert!(
        cold >= 2,
        "ticks after scale to zero are cold starts: {cold}"
    );
    let mut ticks: Vec<u64> = events.iter().map(tick_of).collect();
    ticks.sort_unstable();
    ticks.dedup();
    assert!(ticks.len() >= 3, "one event per tick: {ticks:?}");
}

#[tokio::test]
async fn a_tick_missed_while_down_fires_once_on_start() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut server = Server::start_in(&data, &[]);
    let app = testbed_app(
        "catchup",
        "tick",
        &[],
        "triggers = [{ cron = \"*/2 * * * * *\" }]",
    );
    server.deploy(app.path());
    cron_events(&server, "tick", 1).await;
    server.kill_9();
    let down = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // Two or three ticks go by while the node is down.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let up = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let server = Server::start_in(&data, &[]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let missed: Vec<u64> = function_events(&server, "tick")
            .await
            .iter()
            .map(tick_of)
            .filter(|t| *t > down && *t <= up)
            .collect();
        match missed.len() {
            0 => {
                assert!(Instant::now() < deadline, "the missed tick never fired");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            1 => break,
            _ => panic!("missed ticks fired more than once: {missed:?}"),
        }
    }
}

#[tokio::test]
async fn nats_messages_are_queued_then_delivered_and_malformed_ones_kept_dead() {
    let server = Server::start_with(&["--retry-base", "10ms"]);
    let subject = unique("stratus.test.");
    let app = testbed_app(
        "natsapp",
        "consumer",
        &[],
        &format!("triggers = [{{ nats = \"{subject}.>\", max_attempts = 2 }}]"),
    );
    server.deploy(app.path());
    a_trigger_running(&server).await;
    let client = async_nats::connect(NATS).await.unwrap();

    // Binary mode: the CloudEvent's id is kept.
    let mut headers = async_nats::HeaderMap::new();
    for (name, value) in [
        ("ce-specversion", "1.0"),
        ("ce-id", "order-1"),
        ("ce-source", "/shop"),
        ("ce-type", "com.example.order"),
    ] {
        headers.insert(name, value);
    }
    client
        .publish_with_headers(format!("{subject}.created"), headers, "{}".into())
        .await
        .unwrap();
    client.flush().await.unwrap();
    let event = arrived(&server, "order-1").await;
    assert_eq!(event["state"], "succeeded", "{event}");

    // A request learns the id of its event once it is stored.
    let reply = client
        .request(format!("{subject}.plain"), "fail please".into())
        .await
        .unwrap();
    let id = String::from_utf8(reply.payload.to_vec()).unwrap();
    let event = arrived(&server, &id).await;
    assert_eq!(
        (event["state"].as_str(), event["attempts"].as_u64()),
        (Some("dead"), Some(2))
    );

    // A CloudEvent without an id is no event, but it is not lost.
    let mut broken = async_nats::HeaderMap::new();
    broken.insert("ce-specversion", "1.0");
    broken.insert("ce-source", "/shop");
    let reply = client
        .request_with_headers(format!("{subject}.broken"), broken, "data".into())
        .await
        .unwrap();
    let id = String::from_utf8(reply.payload.to_vec()).unwrap();
    let dead = dead_letter(&server, "consumer", &id).await;
    let error = dead["last_error"].as_str().unwrap();
    assert!(
        error.contains("malformed CloudEvent from NATS subject")
            && error.contains("the ce-id header is missing"),
        "{error}"
    );
}

#[tokio::test]
async fn jetstream_acknowledges_after_a_2xx_and_dead_letters_after_the_last_attempt() {
    let stream = unique("STRATUS_T");
    let js = create_stream(&stream).await;

    let server = Server::start_with(&["--retry-base", "10ms"]);
    let app = testbed_app(
        "jsapp",
        "worker",
        &[],
        &format!(
            "triggers = [{{ jetstream = {{ stream = \"{stream}\", consumer = \"worker\" }}, max_attempts = 3 }}]"
        ),
    );
    server.deploy(app.path());
    for body in ["ok 1", "fail 2", "ok 3"] {
        js.publish(format!("{stream}.orders"), body).await;
    }
    // The failing message (sequence 2) is tried three times, then kept.
    let dead = dead_letter(&server, "worker", &format!("{stream}-2")).await;
    assert_eq!(dead["attempts"], 3, "{dead}");
    assert!(
        dead["last_error"].as_str().unwrap().contains("500"),
        "{dead}"
    );
    // Every message is settled with the stream: nothing pending or unacked.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let info = js.consumer(&stream, "worker").await;
        if info
            .as_ref()
            .is_some_and(|i| i.ack_floor == 3 && i.ack_pending == 0)
        {
            break;
        }
        assert!(Instant::now() < deadline, "not all acknowledged: {info:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The function's event series count what the stream settled, as for
    // the node's own queue.
    for (outcome, n) in [("handled", 2), ("retried", 2), ("dead", 1)] {
        let series = format!(
            "stratus_function_events_total{{namespace=\"default\",app=\"jsapp\",function=\"worker\",outcome=\"{outcome}\"}}"
        );
        assert_eq!(server.metric(&series).await, n, "{outcome}");
    }
    js.delete_stream(&stream).await;
}

#[tokio::test]
async fn mqtt_messages_are_delivered_and_malformed_ones_kept_dead() {
    let server = Server::start();
    let base = unique("stratus-test/");
    let app = testbed_app(
        "mqttapp",
        "sensor",
        &[],
        &format!("triggers = [{{ mqtt = \"{base}/+/telemetry\" }}]"),
    );
    server.deploy(app.path());
    a_trigger_running(&server).await;
    mqtt_publish(
        &format!("{base}/dev-7/telemetry"),
        &[
            r#"{"specversion":"1.0","id":"reading-1","source":"/sensors/7","type":"reading","data":{"t":21.5}}"#,
            r#"{"specversion":"1.0","source":"/sensors/7","type":"reading"}"#,
            r#"{"t": 22}"#,
        ],
    )
    .await;
    let event = arrived(&server, "reading-1").await;
    assert_eq!(event["state"], "succeeded", "{event}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let (dead, plain) = loop {
        let events = function_events(&server, "sensor").await;
        let dead = events.iter().find(|e| e["state"] == "dead").cloned();
        let plain = events
            .iter()
            .find(|e| e["id"] != "reading-1" && e["state"] == "succeeded")
            .cloned();
        if let (Some(dead), Some(plain)) = (dead, plain) {
            break (dead, plain);
        }
        assert!(Instant::now() < deadline, "{events:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        dead["last_error"]
            .as_str()
            .unwrap()
            .contains("malformed CloudEvent from MQTT topic"),
        "{dead}"
    );
    assert_eq!(plain["attempts"], 1, "{plain}");
}

#[tokio::test]
async fn unreachable_brokers_are_reported_and_http_keeps_serving() {
    let server = Server::start_with(&[
        "--nats-url",
        "nats://127.0.0.1:9",
        "--mqtt-url",
        "mqtt://127.0.0.1:9",
    ]);
    let app = testbed_app(
        "nobroker",
        "web",
        &["/web"],
        "triggers = [{ nats = \"a.b\" }, { mqtt = \"a/b\" }, { cron = \"0 0 0 1 1 *\" }]",
    );
    server.deploy(app.path());
    assert_eq!(server.get("/web").await.status(), 200);
    let readyz = readyz_until(&server, |b| {
        let problems = b["problems"].to_string();
        problems.contains("nats broker nats://127.0.0.1:9 is not connected")
            && problems.contains("trigger mqtt \\\"a/b\\\" of nobroker/web is retrying")
            // MQTT is listed with the brokers too (one connection per trigger).
            && problems.contains("mqtt broker mqtt://127.0.0.1:9 is not connected")
            && b["brokers"].as_array().is_some_and(|brokers| {
                brokers.iter().any(|b| {
                    b["broker"] == "mqtt"
                        && b["url"] == "mqtt://127.0.0.1:9"
                        && b["connected"] == false
                        && b["connections"] == 1
                        && b["error"].as_str().is_some_and(|e| !e.is_empty())
                })
            })
            // The cron trigger needs no broker: it runs all the same.
            && b["triggers"].as_array().is_some_and(|t| {
                t.iter().any(|t| {
                    t["trigger"].as_str().unwrap_or("").starts_with("cron") && t["state"] == "running"
                })
            })
    })
    .await;
    let response = server
        .http
        .get(server.admin_url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "a broker is detail, not unreadiness: {readyz}"
    );
    assert_eq!(readyz["brokers"][0]["connected"], false, "{readyz}");
}

#[tokio::test]
async fn a_trigger_stops_when_its_function_is_redeployed_without_it() {
    let server = Server::start();
    let subject = unique("stratus.stop.");
    let with = testbed_app(
        "stopping",
        "f",
        &[],
        &format!("triggers = [{{ nats = \"{subject}\" }}]"),
    );
    server.deploy(with.path());
    readyz_until(&server, |b| {
        b["triggers"].as_array().is_some_and(|t| t.len() == 1)
    })
    .await;
    let without = testbed_app("stopping", "f", &["/f"], "");
    server.deploy(without.path());
    readyz_until(&server, |b| b.get("triggers").is_none()).await;
    let client = async_nats::connect(NATS).await.unwrap();
    // No one consumes the subject any more: a request finds no responder.
    let answer = client.request(subject, "x".into()).await;
    assert!(answer.is_err(), "still subscribed: {answer:?}");
}

#[tokio::test]
async fn a_jetstream_trigger_on_a_missing_stream_waits_for_it_and_says_why() {
    let stream = unique("STRATUS_LATE");
    let server = Server::start();
    let app = testbed_app(
        "late",
        "late",
        &[],
        &format!("triggers = [{{ jetstream = {{ stream = \"{stream}\", consumer = \"late\" }} }}]"),
    );
    server.deploy(app.path());
    let readyz = readyz_until(&server, |b| {
        b["problems"]
            .to_string()
            .contains(&format!("stream {stream}"))
    })
    .await;
    assert!(readyz["triggers"][0]["state"] == "retrying", "{readyz}");
    // Once the stream exists the trigger finds it and delivers.
    let js = create_stream(&stream).await;
    js.publish(format!("{stream}.x"), "hello").await;
    // The trigger creates its consumer once it finds the stream.
    let deadline = Instant::now() + Duration::from_secs(40);
    while js
        .consumer(&stream, "late")
        .await
        .is_none_or(|c| c.ack_floor < 1)
    {
        assert!(Instant::now() < deadline, "the message was never handled");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    js.delete_stream(&stream).await;
}

#[tokio::test]
async fn mqtt_messages_published_while_the_node_is_down_arrive_after_it_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut server = Server::start_in(&data, &[]);
    let base = unique("stratus-down/");
    let app = testbed_app(
        "mqttdown",
        "sensor",
        &[],
        &format!("triggers = [{{ mqtt = \"{base}/#\" }}]"),
    );
    server.deploy(app.path());
    a_trigger_running(&server).await;
    server.kill_9();
    // The node's persistent session keeps these at the broker.
    mqtt_publish(
        &format!("{base}/a"),
        &[
            r#"{"specversion":"1.0","id":"while-down-1","source":"/t","type":"t"}"#,
            r#"{"specversion":"1.0","id":"while-down-2","source":"/t","type":"t"}"#,
        ],
    )
    .await;
    let server = Server::start_in(&data, &[]);
    for id in ["while-down-1", "while-down-2"] {
        let event = arrived(&server, id).await;
        assert_eq!(event["state"], "succeeded", "{event}");
    }
}

#[tokio::test]
async fn a_jetstream_message_shed_by_a_busy_function_keeps_its_attempts() {
    let stream = unique("STRATUS_BUSY");
    let js = create_stream(&stream).await;
    // One slot, no waiting for it: while one message runs (300 ms) the
    // others are shed and come back later.
    let server = Server::start_with(&["--queue-timeout", "10ms", "--retry-base", "10ms"]);
    let app = testbed_app(
        "busyjs",
        "slow",
        &[],
        &format!(
            "max_concurrency = 1\ntriggers = [{{ jetstream = {{ stream = \"{stream}\", consumer = \"slow\" }}, max_attempts = 2 }}]"
        ),
    );
    server.deploy(app.path());
    for _ in 0..3 {
        js.publish(format!("{stream}.x"), "slowfail").await;
    }
    for sequence in 1..=3 {
        let dead = dead_letter(&server, "slow", &format!("{stream}-{sequence}")).await;
        assert_eq!(dead["attempts"], 2, "{dead}");
    }
    // Each message ran exactly twice: shedding used none of its attempts.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, logs) = server.admin_get("/v1/functions/slow/logs?limit=100").await;
        let runs = logs["lines"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["text"] == "slowfail ran")
            .count();
        if runs == 6 {
            break;
        }
        assert!(runs < 6 && Instant::now() < deadline, "{runs} runs: {logs}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    js.delete_stream(&stream).await;
}
